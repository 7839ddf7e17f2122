"""LoFTR fine stage: 5x5 window features around each coarse match, fine transformer, expectation.

Port of LoFTR `src/loftr/loftr_module/fine_preprocess.py` and `src/loftr/utils/fine_matching.py`
(inference path). Under jit the coarse matcher returns one candidate per image-0 cell (L rows); the
fine stage runs on a fixed number K of them (`num_fine_rows`: the valid rows first, by confidence,
see `FineConfig.max_matches`) and its results are scattered back into the L rows, so shapes stay
static and the work follows the matches, not the grid.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ifvit_core.loftr.transformer import LocalFeatureTransformer

_xavier = nnx.initializers.xavier_uniform()


def unfold_windows(feat_f: jax.Array, hw_c: tuple[int, int], window: int) -> jax.Array:
    """The WxW window of the fine map centred on each coarse cell (upstream F.unfold, zero pad).

    feat_f: [B, Hf, Wf, C] fine map with Hf = stride*h. Returns [B, h*w, W*W, C], window entries in
    row-major (dy, dx) order as F.unfold flattens them.
    """
    b, hf, wf, c = feat_f.shape
    h, w = hw_c
    stride = hf // h
    pad = window // 2
    padded = jnp.pad(feat_f, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    taps = [
        padded[:, dy : dy + stride * h : stride, dx : dx + stride * w : stride, :]
        for dy in range(window)
        for dx in range(window)
    ]  # each [B, h, w, C]
    return jnp.stack(taps, axis=3).reshape(b, h * w, window * window, c)


def gather_windows(feat_f: jax.Array, cells: jax.Array, w_c: int, window: int) -> jax.Array:
    """The WxW windows of `unfold_windows` for the given coarse cells only (a gather, no full
    unfold).

    feat_f: [B, Hf, Wf, C]; cells: [B, K] int coarse cell indices on a grid `w_c` cells wide.
    Returns [B, K, W*W, C], equal to `unfold_windows(feat_f, ...)[b, cells[b]]`.
    """
    b, hf, wf, c = feat_f.shape
    stride = wf // w_c
    pad = window // 2
    padded = jnp.pad(feat_f, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    wp = wf + 2 * pad
    r, col = cells // w_c, cells % w_c  # [B, K]
    dy, dx = jnp.divmod(jnp.arange(window * window, dtype=cells.dtype),
                        window)  # row-major (dy, dx)
    flat = (stride * r[..., None] + dy) * wp + stride * col[..., None] + dx  # [B, K, WW]
    k = cells.shape[1]
    out = jnp.take_along_axis(padded.reshape(b, -1, c), flat.reshape(b, k * window * window, 1),
                              axis=1)
    return out.reshape(b, k, window * window, c)


class FinePreprocess(nnx.Module):
    """Projects coarse tokens to the fine width and merges them into every window position."""

    def __init__(self, d_coarse: int, d_fine: int, window: int, concat: bool, *, rngs: nnx.Rngs):
        self.window = window
        self.concat = concat
        if concat:
            self.down_proj = nnx.Linear(d_coarse, d_fine, kernel_init=_xavier, rngs=rngs)
            self.merge_feat = nnx.Linear(2 * d_fine, d_fine, kernel_init=_xavier, rngs=rngs)

    def __call__(
        self,
        feat_f0: jax.Array,
        feat_f1: jax.Array,
        feat_c0: jax.Array,
        feat_c1: jax.Array,
        i_ids: jax.Array,
        j_ids: jax.Array,
        hw0_c: tuple[int, int],
        hw1_c: tuple[int, int],
    ) -> tuple[jax.Array, jax.Array]:
        """Window features for the candidate pairs (i_ids[b, k], j_ids[b, k]).

        Args:
          feat_f0, feat_f1: [B, Hf, Wf, Cf] fine maps; feat_c0: [B, L, C], feat_c1: [B, S, C]
            coarse tokens after the coarse transformer; i_ids, j_ids: [B, K] cells of image 0 / 1.
        Returns:
          (win0, win1): [B, K, W*W, Cf] each.
        """
        win0 = gather_windows(feat_f0, i_ids, hw0_c[1], self.window)  # [B, K, WW, Cf]
        win1 = gather_windows(feat_f1, j_ids, hw1_c[1], self.window)
        if not self.concat:
            return win0, win1
        out = []
        for win, c, ids in ((win0, feat_c0, i_ids), (win1, feat_c1, j_ids)):
            c = jnp.take_along_axis(c, ids[..., None], axis=1)  # [B, K, C]
            c_win = jnp.broadcast_to(self.down_proj(c)[:, :, None, :], win.shape)
            out.append(self.merge_feat(jnp.concatenate([win, c_win], axis=-1)))
        return out[0], out[1]


def num_fine_rows(l_len: int, hw0_c: tuple[int, int], border_rm: int,
                  max_matches: int | None) -> int:
    """K, the rows the fine stage refines: the cells that can be valid after border removal, capped
    by `max_matches` (static)."""
    h, w = hw0_c
    can_match = max(h - 2 * border_rm, 0) * max(w - 2 * border_rm, 0) if border_rm > 0 else l_len
    k = can_match if max_matches is None else min(max_matches, can_match)
    return max(k, 1)


def select_fine_rows(valid: jax.Array, mconf: jax.Array, k: int) -> jax.Array:
    """[B, K] row indices: valid rows first, by decreasing confidence (ties: lower index first)."""
    if k == valid.shape[1]:
        return jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), valid.shape)
    _, rows = jax.lax.top_k(jnp.where(valid, mconf, -1.0), k)
    return rows.astype(jnp.int32)


def scatter_rows(base: jax.Array, rows: jax.Array, values: jax.Array) -> jax.Array:
    """base [B, L, ...] with base[b, rows[b, k]] = values[b, k] ([B, K, ...])."""
    if rows.shape[1] == base.shape[1]:  # all rows, in order (select_fine_rows' identity case)
        return values.astype(base.dtype)
    return base.at[jnp.arange(base.shape[0])[:, None], rows].set(values)


def fine_expectation(win0: jax.Array, win1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Soft-argmax of the centre feature of window 0 over window 1.

    win0, win1: [..., W*W, C]. Returns (coords [..., 2] in [-1, 1] (x, y) of the window,
    std [...]: the summed per-axis standard deviation of the heat map), as upstream FineMatching.
    """
    ww, c = win0.shape[-2], win0.shape[-1]
    w = int(round(ww**0.5))
    center = win0[..., ww // 2, :]  # [..., C]
    sim = jnp.einsum("...c,...rc->...r", center, win1) / jnp.sqrt(jnp.float32(c))
    heat = jax.nn.softmax(sim, axis=-1)  # [..., WW]
    lin = jnp.linspace(-1.0, 1.0, w)
    gx = jnp.tile(lin, w)  # column coordinate of window entry r = (dy, dx)
    gy = jnp.repeat(lin, w)
    ex = jnp.sum(heat * gx, axis=-1)
    ey = jnp.sum(heat * gy, axis=-1)
    var_x = jnp.sum(heat * gx**2, axis=-1) - ex**2
    var_y = jnp.sum(heat * gy**2, axis=-1) - ey**2
    std = jnp.sqrt(jnp.maximum(var_x, 1e-10)) + jnp.sqrt(jnp.maximum(var_y, 1e-10))
    return jnp.stack([ex, ey], axis=-1), std


def run_fine_transformer(
    transformer: LocalFeatureTransformer, win0: jax.Array, win1: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Applies the fine transformer to every window pair: [B, L, WW, Cf] -> same (windows as
    batch)."""
    b, l_len, ww, c = win0.shape
    f0, f1 = transformer(win0.reshape(b * l_len, ww, c), win1.reshape(b * l_len, ww, c))
    return f0.reshape(b, l_len, ww, c), f1.reshape(b, l_len, ww, c)


def window_radius_px(window: int, fine_stride: int = 2) -> float:
    """Image pixels from a fine window's centre to its edge entry (normalised offset 1)."""
    return float((window // 2) * fine_stride)


def fine_offset_target(
    pts1: jax.Array, j_ids: jax.Array, w1_c: int, window: int, *, stride: int = 8,
    fine_stride: int = 2
) -> jax.Array:
    """The normalised window offset at which exact image-1 points lie in the window of cell j.

    The inverse of the fine keypoint `p1 = stride * (col_j, row_j) + offset * window_radius_px`
    (`LoFTR.refine`): |offset| < 1 on both axes means the point lies inside the window.
    pts1: [..., 2] (x, y) image-1 pixels; j_ids: [...] int cells of a grid `w1_c` cells wide.
    Returns [..., 2] float32.
    """
    corner = jnp.stack([j_ids % w1_c, j_ids // w1_c], axis=-1).astype(jnp.float32) * stride
    return (pts1.astype(jnp.float32) - corner) / window_radius_px(window, fine_stride)
