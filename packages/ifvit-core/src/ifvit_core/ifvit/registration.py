"""IFViT Module 1 (dense registration) and the alignment that turns its matches into Module 2 inputs.

Module 1 is LoFTR (coarse path; the fine stage is optional, SPEC §2.6): `ifvit_core.loftr.LoFTR`.
This file adds the jit-able glue of SPEC §2.8 / §4.5: RANSAC on the matches, warp image 1 onto
image 0, effective-region masks, overlap, and the global / ROI inputs of Module 2.
FingerNet enhancement is not part of this port (no FingerNet weights in JAX yet); the global branch
sees the aligned original prints restricted to their overlap.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ifvit_core import geometry


class Alignment(NamedTuple):
    """Result of aligning image 1 onto image 0 (all batched, fixed shapes).

    A01: [B, 2, 3] map image-0 pixels -> image-1 pixels (fitted from the matches).
    aligned1: [B, H, W, 1] image 1 resampled in image 0's frame (white outside).
    overlap: [B, H, W] bool overlap of both prints' effective regions in image 0's frame.
    roi_origin: [B, 2] int32 (x0, y0) of the ROI in image 0's frame.
    num_inliers: [B] int32; ok: [B] bool (False -> identity fallback).
    """

    A01: jax.Array
    aligned1: jax.Array
    overlap: jax.Array
    roi_origin: jax.Array
    num_inliers: jax.Array
    ok: jax.Array


def align_pair(
    key: jax.Array,
    image0: jax.Array,
    image1: jax.Array,
    pts0: jax.Array,
    pts1: jax.Array,
    valid: jax.Array,
    weights: jax.Array,
    *,
    roi_size: int,
    num_iters: int = 256,
    threshold: float = 8.0,
    model: str = "similarity",
) -> Alignment:
    """RANSAC on Module 1 matches, then warp image 1 into image 0's frame.

    Args:
      key: PRNG key for RANSAC.
      image0: [B, H, W, 1]; image1: [B, H1, W1, 1] in [0, 1].
      pts0, pts1: [B, M, 2] matched pixels (x, y); valid: [B, M]; weights: [B, M] confidences.
      roi_size: side of the ROI crop; num_iters, threshold, model: RANSAC settings.
    """
    h, w = image0.shape[1:3]
    fit = geometry.ransac_similarity(
        key, pts0, pts1, valid, weights=weights, num_iters=num_iters, threshold=threshold,
        model=model,
    )
    # warp_image maps source p to A p; image 1 -> image 0 is the inverse of A01.
    aligned1, inside = geometry.warp_image(image1, geometry.invert_affine(fit.A), (h, w), fill=1.0)
    m0 = geometry.effective_mask(image0)
    m1 = geometry.effective_mask(aligned1) & inside
    overlap, origin = geometry.overlap_roi(m0, m1, roi_size)
    return Alignment(fit.A, aligned1, overlap, origin, fit.num_inliers, fit.ok)


def module2_inputs(
    image0: jax.Array, alignment: Alignment, *, global_size: int, roi_size: int
) -> dict[str, jax.Array]:
    """Global (overlap-restricted, resized) and local (ROI) inputs for Module 2.

    Returns {'global0', 'global1': [B, G, G, 1], 'global_mask0', 'global_mask1': [B, (G/8)^2] token
    masks of the overlap, 'roi0', 'roi1': [B, R, R, 1]}.
    """
    b, h, w, _ = image0.shape
    ov = alignment.overlap[..., None]
    g0 = jnp.where(ov, image0, 1.0)
    g1 = jnp.where(ov, alignment.aligned1, 1.0)
    if (h, w) != (global_size, global_size):
        g0 = jax.image.resize(g0, (b, global_size, global_size, 1), "linear")
        g1 = jax.image.resize(g1, (b, global_size, global_size, 1), "linear")
    # Token mask: a coarse cell is valid if any of its pixels lies in the overlap.
    cells = jax.image.resize(
        alignment.overlap.astype(jnp.float32), (b, global_size // 8, global_size // 8), "linear"
    )
    tok = (cells > 0.0).reshape(b, -1)
    tok = tok | ~tok.any(axis=1, keepdims=True)  # empty overlap: fall back to all tokens
    roi0 = geometry.crop(image0, alignment.roi_origin, roi_size)
    roi1 = geometry.crop(alignment.aligned1, alignment.roi_origin, roi_size)
    return {"global0": g0, "global1": g1, "global_mask0": tok, "global_mask1": tok,
            "roi0": roi0, "roi1": roi1}
