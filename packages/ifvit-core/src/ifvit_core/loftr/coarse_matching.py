"""Dual-softmax coarse matching with a fixed-size, padded match set.

Port of LoFTR `src/loftr/utils/coarse_matching.py` (dual-softmax branch, inference path). The
upstream returns ragged match lists; under jit we return one candidate per coarse cell of image 0
(`L` rows) with a validity mask instead. Because mutual-nearest-neighbour matches are one-to-one, at
most one match can exist per row, so the padded set holds every upstream match exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class CoarseMatches(NamedTuple):
    """Fixed-size coarse matches; row i of each array is the candidate for image-0 cell i.

    conf_matrix: [B, L, S] dual-softmax probabilities P.
    i_ids, j_ids: [B, L] int32 cell indices in image 0 / image 1.
    valid: [B, L] bool — True where (i, j) passes threshold, border and mutual-NN tests.
    mconf: [B, L] P[i, j] (0 where not valid).
    mkpts0_c, mkpts1_c: [B, L, 2] float32 (x, y) pixel of each cell's top-left corner (stride 8).
    """

    conf_matrix: jax.Array
    i_ids: jax.Array
    j_ids: jax.Array
    valid: jax.Array
    mconf: jax.Array
    mkpts0_c: jax.Array
    mkpts1_c: jax.Array


def dual_softmax(
    feat0: jax.Array,
    feat1: jax.Array,
    temperature: float,
    mask0: jax.Array | None = None,
    mask1: jax.Array | None = None,
) -> jax.Array:
    """P = softmax_rows(S) * softmax_cols(S), S = (f0/√C)(f1/√C)ᵀ / τ.

    feat0: [B, L, C], feat1: [B, S, C], masks [B, L] / [B, S] bool. Returns P [B, L, S] (float32).
    """
    c = feat0.shape[-1]
    f0 = feat0.astype(jnp.float32) / jnp.sqrt(jnp.float32(c))
    f1 = feat1.astype(jnp.float32) / jnp.sqrt(jnp.float32(c))
    sim = jnp.einsum("blc,bsc->bls", f0, f1) / temperature
    if mask0 is not None or mask1 is not None:
        m0 = jnp.ones(sim.shape[:2], bool) if mask0 is None else mask0
        m1 = jnp.ones((sim.shape[0], sim.shape[2]), bool) if mask1 is None else mask1
        pair = m0[:, :, None] & m1[:, None, :]
        # A large finite negative (upstream uses -1e9) keeps fully masked rows NaN-free.
        sim = jnp.where(pair, sim, -1e9)
    return jax.nn.softmax(sim, axis=1) * jax.nn.softmax(sim, axis=2)


def border_mask(h: int, w: int, border: int) -> jax.Array:
    """[h*w] bool, False for cells within `border` cells of the grid edge (upstream mask_border)."""
    if border <= 0:
        return jnp.ones((h * w,), bool)
    rows = jnp.arange(h)[:, None]
    cols = jnp.arange(w)[None, :]
    keep = (rows >= border) & (rows < h - border) & (cols >= border) & (cols < w - border)
    return keep.reshape(-1)


def cell_to_pixel(ids: jax.Array, w: int, stride: int = 8) -> jax.Array:
    """Cell indices [...] of a grid w cells wide -> (x, y) pixel of the top-left corner [..., 2]."""
    return jnp.stack([ids % w, ids // w], axis=-1).astype(jnp.float32) * stride


def match_coarse(
    conf: jax.Array,
    hw0: tuple[int, int],
    hw1: tuple[int, int],
    *,
    threshold: float,
    border_rm: int,
    mask0: jax.Array | None = None,
    mask1: jax.Array | None = None,
    stride: int = 8,
) -> CoarseMatches:
    """Threshold + border removal + mutual nearest neighbour on P, as a fixed-size match set.

    Args:
      conf: [B, L, S] dual-softmax matrix; hw0 = (h0, w0) with L = h0*w0, hw1 likewise for S.
      threshold: θ; border_rm: cells removed at each border (upstream applies it to both grids).
      mask0, mask1: optional [B, L] / [B, S] validity (padding) masks.
      stride: pixels per coarse cell.
    """
    b, l_len, s_len = conf.shape
    h0, w0 = hw0
    h1, w1 = hw1
    j_ids = jnp.argmax(conf, axis=2).astype(jnp.int32)  # [B, L] row maxima
    row_best = jnp.take_along_axis(conf, j_ids[..., None], axis=2)[..., 0]  # [B, L]
    col_max = conf.max(axis=1)  # [B, S]
    mutual = row_best == jnp.take_along_axis(col_max, j_ids, axis=1)
    ok0 = border_mask(h0, w0, border_rm)[None, :]
    ok1 = border_mask(h1, w1, border_rm)[j_ids]
    valid = (row_best > threshold) & mutual & ok0 & ok1
    if mask0 is not None:
        valid &= mask0
    if mask1 is not None:
        valid &= jnp.take_along_axis(mask1, j_ids, axis=1)
    i_ids = jnp.broadcast_to(jnp.arange(l_len, dtype=jnp.int32), (b, l_len))
    return CoarseMatches(
        conf_matrix=conf,
        i_ids=i_ids,
        j_ids=j_ids,
        valid=valid,
        mconf=jnp.where(valid, row_best, 0.0),
        mkpts0_c=cell_to_pixel(i_ids, w0, stride),
        mkpts1_c=cell_to_pixel(j_ids, w1, stride),
    )


def top_k_matches(matches: CoarseMatches, k: int) -> CoarseMatches:
    """Compacts to the k most confident rows (valid first), e.g. for fixed-budget RANSAC.

    All [B, L] / [B, L, 2] fields become [B, k] / [B, k, 2]; conf_matrix is kept as is.
    """
    score = jnp.where(matches.valid, matches.mconf, -1.0)
    _, idx = jax.lax.top_k(score, k)  # [B, k]

    def take(x: jax.Array) -> jax.Array:
        if x.ndim == 3:
            return jnp.take_along_axis(x, idx[..., None], axis=1)
        return jnp.take_along_axis(x, idx, axis=1)

    return CoarseMatches(
        conf_matrix=matches.conf_matrix,
        i_ids=take(matches.i_ids),
        j_ids=take(matches.j_ids),
        valid=take(matches.valid),
        mconf=take(matches.mconf),
        mkpts0_c=take(matches.mkpts0_c),
        mkpts1_c=take(matches.mkpts1_c),
    )
