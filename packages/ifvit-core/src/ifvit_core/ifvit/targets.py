"""Ground truth of a Module 2 branch: raw-frame correspondences carried into the branch's token
grid.

A Module 2 training pair carries its ground truth in the raw frames of the two input images
(docs/contracts.md: `gt_i` cells of image 0 with top-left pixel `8 * (col, row)`, `gt_pts1` their
exact position in image 1). A branch does not see the raw images: it sees image 0 and the *aligned*
image 1 through a branch frame `F` (resize of the overlap, or the ROI crop; see
`registration.Module2Inputs`). For every cell `u` of the branch grid this module

1. maps it back to image 0: `p0 = F⁻¹ u`;
2. finds its position in raw image 1, `p1`, by bilinear interpolation of the raw ground truth on
   image 0's coarse grid (exact for an affine pair; for a smooth non-linear warp, e.g. the plastic
   distortion of synthetic impressions, exact at the grid nodes and interpolated in between);
3. carries it into the branch frame of image 1 through the alignment actually used:
   `q1 = F A01⁻¹ p1` (image 1 was resampled as `aligned1(q) = image1(A01 q)`);
4. keeps `j = round(q1 / 8)` if in bounds, inside the branch token mask on both sides, and the
   nearest of all cells that land on `j` (one-to-one, like LoFTR's cycle check).

Everything is jit-able with fixed shapes: one candidate per branch cell, with a validity mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from ifvit_core import geometry

if TYPE_CHECKING:
    from ifvit_core.ifvit.registration import Module2Inputs


def _flow_grid(
    gt_i: jax.Array, gt_valid: jax.Array, gt_pts1: jax.Array, grid_hw: tuple[int, int]
) -> tuple[jax.Array, jax.Array]:
    """Scatters raw GT onto image 0's coarse grid: ([B, h, w, 2] image-1 points, [B, h, w]
    known)."""
    b = gt_i.shape[0]
    h, w = grid_hw
    n = h * w
    idx = jnp.where(gt_valid, gt_i, n)  # invalid rows scatter out of bounds and are dropped
    flow = jax.vmap(lambda i, p: jnp.zeros((n, 2), jnp.float32).at[i].set(p, mode="drop"))(
        idx, gt_pts1.astype(jnp.float32)
    )
    ok = jax.vmap(lambda i: jnp.zeros((n,), bool).at[i].set(True, mode="drop"))(idx)
    return flow.reshape(b, h, w, 2), ok.reshape(b, h, w)


def _interpolate(
    flow: jax.Array, ok: jax.Array, pts: jax.Array, stride: int
) -> tuple[jax.Array, jax.Array]:
    """Bilinear lookup of the grid at pixel points [B, N, 2] -> ([B, N, 2], [B, N] all 4 known)."""
    b, h, w, _ = flow.shape
    g = pts / stride
    x0 = jnp.floor(g[..., 0])
    y0 = jnp.floor(g[..., 1])
    fx = (g[..., 0] - x0)[..., None]
    fy = (g[..., 1] - y0)[..., None]
    x0 = x0.astype(jnp.int32)
    y0 = y0.astype(jnp.int32)
    out = jnp.zeros(pts.shape, jnp.float32)
    known = jnp.ones(pts.shape[:2], bool)
    take = jax.vmap(lambda f, yy, xx: f[yy, xx])
    for dy, dx, wt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                       (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        xc, yc = jnp.clip(xi, 0, w - 1), jnp.clip(yi, 0, h - 1)
        # A neighbour with zero weight (a point exactly on a grid line) need not be known.
        needed = wt[..., 0] > 0
        known &= ~needed | (inside & take(ok, yc, xc))
        out = out + wt * take(flow, yc, xc)
    return out, known


def branch_points(
    gt_i: jax.Array,
    gt_valid: jax.Array,
    gt_pts1: jax.Array,
    raw_hw: tuple[int, int],
    A01: jax.Array,
    frame: jax.Array,
    branch_hw: tuple[int, int],
    stride: int = 8,
) -> tuple[jax.Array, jax.Array]:
    """Where each branch cell of image 0 lies in image 1's branch input (continuous pixels).

    Args:
      gt_i, gt_valid: [B, M] raw GT cells of image 0 and their validity; gt_pts1: [B, M, 2].
      raw_hw: (H, W) of the raw image 0 (static); A01: [B, 2, 3] the alignment used (image 0 ->
        image 1 pixels); frame: [B, 2, 3] image-0 pixel -> branch pixel; branch_hw: branch input
        (Hb, Wb) (static).

    Returns:
      (q1 [B, Lb, 2] branch-frame points of image 1 for the top-left pixel of every branch cell,
       known [B, Lb] bool where the raw ground truth covers the cell).
    """
    b = gt_i.shape[0]
    hb, wb = branch_hw[0] // stride, branch_hw[1] // stride
    rows, cols = jnp.divmod(jnp.arange(hb * wb), wb)
    u = jnp.stack([cols, rows], axis=-1).astype(jnp.float32) * stride  # [Lb, 2]
    p0 = geometry.apply_affine(geometry.invert_affine(frame), jnp.broadcast_to(u, (b, *u.shape)))
    flow, ok = _flow_grid(gt_i, gt_valid, gt_pts1, (raw_hw[0] // stride, raw_hw[1] // stride))
    p1, known = _interpolate(flow, ok, p0, stride)
    to_branch1 = geometry.compose_affine(frame, geometry.invert_affine(A01))
    return geometry.apply_affine(to_branch1, p1), known


def branch_ground_truth(
    gt_i: jax.Array,
    gt_valid: jax.Array,
    gt_pts1: jax.Array,
    raw_hw: tuple[int, int],
    A01: jax.Array,
    frame: jax.Array,
    branch_hw: tuple[int, int],
    token_mask: jax.Array | None = None,
    stride: int = 8,
) -> dict[str, jax.Array]:
    """Coarse GT of a branch in the `dense_loss` layout (one row per branch cell of image 0).

    Args: as `branch_points`, plus token_mask: optional [B, Lb] bool valid tokens of the branch
      (the global branch's overlap mask; the same grid on both sides).

    Returns:
      {'gt_i' [B, Lb] (= arange), 'gt_j' [B, Lb] (0 where invalid), 'gt_valid' [B, Lb] bool}.
    """
    hb, wb = branch_hw[0] // stride, branch_hw[1] // stride
    lb = hb * wb
    q1, known = branch_points(gt_i, gt_valid, gt_pts1, raw_hw, A01, frame, branch_hw, stride)
    c = jnp.round(q1 / stride)
    inb = known & (c[..., 0] >= 0) & (c[..., 0] < wb) & (c[..., 1] >= 0) & (c[..., 1] < hb)
    j = jnp.where(inb, c[..., 1] * wb + c[..., 0], 0).astype(jnp.int32)
    ok = inb
    if token_mask is not None:
        ok &= token_mask & jnp.take_along_axis(token_mask, j, axis=1)
    # One-to-one: of all cells landing on j keep the one whose point is nearest to j's pixel.
    dist = jnp.linalg.norm(q1 - c * stride, axis=-1)
    dist = jnp.where(ok, dist, jnp.inf)
    slot = jnp.where(ok, j, lb)
    best = jax.vmap(lambda s, d: jnp.full((lb,), jnp.inf).at[s].min(d, mode="drop"))(slot, dist)
    ok &= dist <= jnp.take_along_axis(best, j, axis=1)
    # Exact ties: keep the lowest i.
    first = jax.vmap(lambda s, i: jnp.full((lb,), lb).at[s].min(i, mode="drop"))(
        jnp.where(ok, j, lb), jnp.broadcast_to(jnp.arange(lb), j.shape)
    )
    ok &= jnp.arange(lb)[None] == jnp.take_along_axis(first, j, axis=1)
    b = gt_i.shape[0]
    return {
        "gt_i": jnp.broadcast_to(jnp.arange(lb, dtype=jnp.int32), (b, lb)),
        "gt_j": jnp.where(ok, j, 0),
        "gt_valid": ok,
    }


def module2_targets(
    gt_i: jax.Array,
    gt_valid: jax.Array,
    gt_pts1: jax.Array,
    raw_hw: tuple[int, int],
    A01: jax.Array,
    inputs: Module2Inputs,
) -> dict[str, jax.Array]:
    """GT of both branches for `losses.module2_loss`: `{global,local}_gt_{i,j,valid}` [B, Lb]
    (each branch's input size is that of its input in `inputs`)."""
    out = {}
    for name, frame, image, mask in (
        ("global", inputs.global_frame, inputs.global0, inputs.global_mask),
        ("local", inputs.roi_frame, inputs.roi0, None),
    ):
        gt = branch_ground_truth(gt_i, gt_valid, gt_pts1, raw_hw, A01, frame,
                                 tuple(image.shape[1:3]), mask)
        out.update({f"{name}_{k}": v for k, v in gt.items()})
    return out


def pseudo_ground_truth(
    dense: dict[str, jax.Array],
    inliers: jax.Array,
    min_conf: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Module 1's own matches as raw-frame ground truth (docs/contracts.md layout), for genuine
    pairs that have no exact correspondences (two real impressions of one finger).

    A row counts when RANSAC kept it (`Alignment.inliers`: consistent with the fitted alignment)
    and its coarse confidence is at least `min_conf`. Its image-1 point is the fine stage's when
    Module 1 ran it (`mkpts1_f`, the point RANSAC was given), else the matched cell's corner.

    Args:
      dense: Module 1 outputs (`register_pair`): `i_ids` [B, L] image-0 cells, `valid`, `mconf`
        [B, L], `mkpts1_c` (and optionally `mkpts1_f`) [B, L, 2] image-1 pixels.
      inliers: [B, L] bool RANSAC inliers of those rows.
      min_conf: confidence floor in [0, 1].

    Returns:
      (gt_i [B, L] int32, gt_valid [B, L] bool, gt_pts1 [B, L, 2] float32), the inputs of
      `module2_targets`.
    """
    pts1 = dense["mkpts1_f"] if "mkpts1_f" in dense else dense["mkpts1_c"]
    valid = dense["valid"] & inliers & (dense["mconf"] >= min_conf)
    return dense["i_ids"].astype(jnp.int32), valid, pts1.astype(jnp.float32)
