"""LoFTR fine stage: 5x5 window features around each coarse match, fine transformer, expectation.

Port of LoFTR `src/loftr/loftr_module/fine_preprocess.py` and `src/loftr/utils/fine_matching.py`
(inference path). Runs on every one of the L fixed-size coarse candidates (padded rows included;
callers use the coarse `valid` mask), so shapes stay static under jit.
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
        j_ids: jax.Array,
        hw0_c: tuple[int, int],
        hw1_c: tuple[int, int],
    ) -> tuple[jax.Array, jax.Array]:
        """Window features for the candidates (i, j_ids[i]), i = 0..L-1.

        Args:
          feat_f0, feat_f1: [B, Hf, Wf, Cf] fine maps; feat_c0: [B, L, C], feat_c1: [B, S, C]
            coarse tokens after the coarse transformer; j_ids: [B, L].
        Returns:
          (win0, win1): [B, L, W*W, Cf] each.
        """
        win0 = unfold_windows(feat_f0, hw0_c, self.window)  # [B, L, WW, Cf]
        win1 = unfold_windows(feat_f1, hw1_c, self.window)  # [B, S, WW, Cf]
        win1 = jnp.take_along_axis(win1, j_ids[:, :, None, None], axis=1)  # [B, L, WW, Cf]
        if not self.concat:
            return win0, win1
        c1 = jnp.take_along_axis(feat_c1, j_ids[..., None], axis=1)  # [B, L, C]
        out = []
        for win, c in ((win0, feat_c0), (win1, c1)):
            c_win = jnp.broadcast_to(self.down_proj(c)[:, :, None, :], win.shape)
            out.append(self.merge_feat(jnp.concatenate([win, c_win], axis=-1)))
        return out[0], out[1]


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
    """Applies the fine transformer to every window pair: [B, L, WW, Cf] -> same (windows as batch)."""
    b, l_len, ww, c = win0.shape
    f0, f1 = transformer(win0.reshape(b * l_len, ww, c), win1.reshape(b * l_len, ww, c))
    return f0.reshape(b, l_len, ww, c), f1.reshape(b, l_len, ww, c)
