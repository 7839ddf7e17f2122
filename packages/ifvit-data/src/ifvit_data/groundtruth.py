"""Ground-truth coarse correspondences from point maps (SPEC §4.3, the LoFTR `spvs_coarse` pattern).

Given a forward map `f: image0 -> image1` and a backward map `g: image1 -> image0` (callables on
float64 `[N, 2]` points returning `[N, 2]`, NaN where a point has no correspondence; for an affine
`A` they are `A` and `A^-1`):

1. every coarse cell `c = (col, row)` of image 0 has the pixel `p0 = s * c` (its top-left corner);
2. `p1 = f(p0)`, `c1 = round(p1 / s)`, kept if `0 <= c1 < (w1, h1)`;
3. every cell of image 1 is mapped back, `c0' = round(g(s * c1) / s)`; `(i, j)` is kept only if the
   reverse of `j` is `i` (cycle consistency: at most one `i` per `j`);
4. cells outside the foreground of image 0 (at `p0`) or of image 1 (at `round(p1)`) are dropped.

LoFTR marks invalid cells by setting them to index 0 and then zeroes the `(0, 0)` entry of its
ground-truth matrix, which also discards a genuine match of the top-left cell. Our validity mask is
explicit, so that sentinel is unnecessary; `drop_index0=True` reproduces LoFTR exactly.

Output (docs/contracts.md): fixed-size arrays of length `L = h0 * w0`, valid entries first (stable,
ascending `i`), padded entries zero.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ifvit_data.augment.geometric import apply_affine, invert_affine

PointMap = Callable[[np.ndarray], np.ndarray]


def affine_maps(a: np.ndarray) -> tuple[PointMap, PointMap]:
    """Forward and backward point maps of a 2x3 affine matrix `A` (float64 `[2, 3]`)."""
    a = np.asarray(a, dtype=np.float64)
    inv = invert_affine(a)
    return (lambda p: apply_affine(a, p)), (lambda p: apply_affine(inv, p))


def compose(*maps: PointMap) -> PointMap:
    """`compose(f, g)(p) == g(f(p))`: apply the maps left to right."""

    def run(p: np.ndarray) -> np.ndarray:
        for m in maps:
            p = m(p)
        return p

    return run


@functools.lru_cache(maxsize=64)
def _grid(h: int, w: int, stride: int) -> np.ndarray:
    """Top-left pixels of the coarse cells, float64 `[h * w, 2]` (cached, read-only)."""
    rows, cols = np.divmod(np.arange(h * w), w)
    g = np.stack([cols, rows], axis=1).astype(np.float64) * stride
    g.flags.writeable = False
    return g


def _to_cell(pts: np.ndarray, h: int, w: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Rounded coarse cell indices of points and the in-bounds mask (NaN -> out of bounds)."""
    finite = np.all(np.isfinite(pts), axis=1)
    c = np.round(np.where(finite[:, None], pts, -1.0) / stride)
    ok = finite & (c[:, 0] >= 0) & (c[:, 0] < w) & (c[:, 1] >= 0) & (c[:, 1] < h)
    idx = np.where(ok, c[:, 1] * w + c[:, 0], 0).astype(np.int64)
    return idx, ok


def _sample_mask(mask: np.ndarray | None, pts: np.ndarray) -> np.ndarray:
    """Nearest-pixel lookup of a bool mask at points (False outside the image or at NaN)."""
    if mask is None:
        return np.ones(len(pts), dtype=bool)
    h, w = mask.shape
    finite = np.all(np.isfinite(pts), axis=1)
    q = np.round(np.where(finite[:, None], pts, -1.0)).astype(np.int64)
    ok = finite & (q[:, 0] >= 0) & (q[:, 0] < w) & (q[:, 1] >= 0) & (q[:, 1] < h)
    out = np.zeros(len(pts), dtype=bool)
    out[ok] = mask[q[ok, 1], q[ok, 0]]
    return out


def coarse_ground_truth(
    forward: PointMap,
    backward: PointMap,
    shape0: tuple[int, int],
    shape1: tuple[int, int],
    mask0: np.ndarray | None = None,
    mask1: np.ndarray | None = None,
    stride: int = 8,
    drop_index0: bool = False,
) -> dict[str, np.ndarray]:
    """Coarse ground truth of a pair, padded to the number of coarse cells of image 0.

    Args:
      forward: image0 -> image1 point map, float64 `[N, 2]` -> `[N, 2]` (NaN = none).
      backward: image1 -> image0 point map.
      shape0: `(H0, W0)` of image 0.
      shape1: `(H1, W1)` of image 1.
      mask0: bool `[H0, W0]` foreground of image 0, or None for all foreground.
      mask1: bool `[H1, W1]` foreground of image 1, or None.
      stride: coarse stride in pixels (8 for LoFTR).
      drop_index0: also discard matches whose `i` or `j` is 0 (LoFTR's sentinel).

    Returns:
      `gt_i`, `gt_j` int32 `[L]`, `gt_valid` bool `[L]`, `gt_pts0`, `gt_pts1` float32 `[L, 2]`,
      with `L = (H0 // stride) * (W0 // stride)`.
    """
    h0, w0 = shape0[0] // stride, shape0[1] // stride
    h1, w1 = shape1[0] // stride, shape1[1] // stride
    p0 = _grid(h0, w0, stride)
    p1 = np.asarray(forward(p0), dtype=np.float64)
    j, ok = _to_cell(p1, h1, w1, stride)
    q0 = np.asarray(backward(_grid(h1, w1, stride)), dtype=np.float64)
    rev, rev_ok = _to_cell(q0, h0, w0, stride)
    i = np.arange(h0 * w0)
    valid = ok & rev_ok[j] & (rev[j] == i)
    valid &= _sample_mask(mask0, p0) & _sample_mask(mask1, p1)
    if drop_index0:
        valid &= (i != 0) & (j != 0)
    idx = np.flatnonzero(valid)  # ascending i: a stable compaction of the valid entries
    n = len(idx)
    out = empty_ground_truth(shape0, stride)
    out["gt_valid"][:n] = True
    out["gt_i"][:n] = idx
    out["gt_j"][:n] = j[idx]
    out["gt_pts0"][:n] = p0[idx]
    out["gt_pts1"][:n] = p1[idx]
    return out


def empty_ground_truth(shape0: tuple[int, int], stride: int = 8) -> dict[str, np.ndarray]:
    """All-invalid ground truth (impostor pairs, or genuine pairs without a known
    correspondence)."""
    n = (shape0[0] // stride) * (shape0[1] // stride)
    return {
        "gt_i": np.zeros(n, np.int32),
        "gt_j": np.zeros(n, np.int32),
        "gt_valid": np.zeros(n, bool),
        "gt_pts0": np.zeros((n, 2), np.float32),
        "gt_pts1": np.zeros((n, 2), np.float32),
    }
