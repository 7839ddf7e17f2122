"""IFViT Module 1 alignment: the glue that turns Module 1 matches into Module 2 inputs.

SPEC §2.8 / §4.5, jit-able with fixed shapes: RANSAC on the matches, warp image 1 (and its
foreground mask) into image 0's frame, overlap of the two foregrounds, and the two Module 2 inputs:

* global: both aligned prints restricted to the overlap, resized by `global_size / image_size`
  (`global_shape`): a training window becomes `global_size x global_size`, and a larger window (a
  whole tall print at inference) keeps the same scale and its aspect ratio;
* local: a `roi_size x roi_size` window at the overlap centroid of both aligned prints.

Foreground masks come from the caller (one segmentation for the whole project:
`ifvit_data.foreground.foreground_mask`, computed where the images are read). Each branch input
comes with its *frame*: the affine map from image 0's pixels to the branch input's pixels, so that
ground truth can be carried into a branch (`ifvit_core.ifvit.targets`) and branch correspondences
back to the user's images. FingerNet enhancement is not part of this port; the global branch sees
the aligned prints restricted to their overlap (the windows as given: a bundle trained with the
optional Gabor enhancement, `ifvit_core.enhance`, passes enhanced windows in).
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
    overlap: [B, H, W] bool overlap of both prints' foregrounds in image 0's frame.
    roi_origin: [B, 2] int32 (x0, y0) of the ROI in image 0's frame.
    num_inliers: [B] int32; ok: [B] bool (False -> identity fallback).
    inliers: [B, M] bool, which of the M matches given to `align_pair` RANSAC kept (all False
      where `ok` is False): the evidence that counts.
    """

    A01: jax.Array
    aligned1: jax.Array
    overlap: jax.Array
    roi_origin: jax.Array
    num_inliers: jax.Array
    ok: jax.Array
    inliers: jax.Array


class Module2Inputs(NamedTuple):
    """The inputs of both Module 2 branches and where they sit in image 0's frame.

    global0, global1: [B, Gh, Gw, 1] overlap-restricted aligned prints (white outside the overlap).
    global_mask: [B, (Gh/8)*(Gw/8)] bool tokens whose cell lies mostly inside the overlap.
    roi0, roi1: [B, R, R, 1] the ROI of both aligned prints.
    global_frame, roi_frame: [B, 2, 3] image-0 pixel -> branch-input pixel.
    """

    global0: jax.Array
    global1: jax.Array
    global_mask: jax.Array
    roi0: jax.Array
    roi1: jax.Array
    global_frame: jax.Array
    roi_frame: jax.Array


def align_pair(
    key: jax.Array,
    image0: jax.Array,
    image1: jax.Array,
    mask0: jax.Array,
    mask1: jax.Array,
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
    """RANSAC on Module 1 matches, then warp image 1 and its foreground into image 0's frame.

    Args:
      key: PRNG key for RANSAC.
      image0: [B, H, W, 1]; image1: [B, H1, W1, 1] in [0, 1].
      mask0: [B, H, W] bool foreground of image 0; mask1: [B, H1, W1] bool foreground of image 1.
      pts0, pts1: [B, M, 2] matched pixels (x, y); valid: [B, M]; weights: [B, M] confidences.
      roi_size: side of the ROI crop; num_iters, threshold, model: RANSAC settings.
    """
    h, w = image0.shape[1:3]
    fit = geometry.ransac_similarity(
        key, pts0, pts1, valid, weights=weights, num_iters=num_iters, threshold=threshold,
        model=model,
    )
    # warp_image maps source p to A p; image 1 -> image 0 is the inverse of A01.
    A10 = geometry.invert_affine(fit.A)
    aligned1, inside = geometry.warp_image(image1, A10, (h, w), fill=1.0)
    warped_mask1, _ = geometry.warp_image(mask1[..., None].astype(jnp.float32), A10, (h, w),
                                          fill=0.0)
    m1 = (warped_mask1[..., 0] > 0.5) & inside
    overlap, origin = geometry.overlap_roi(mask0.astype(bool), m1, roi_size)
    return Alignment(fit.A, aligned1, overlap, origin, fit.num_inliers, fit.ok, fit.inliers)


def global_shape(hw: tuple[int, int], image_size: int, global_size: int) -> tuple[int, int]:
    """`(Gh, Gw)` of the global branch input for a window of `hw`: the scale `global_size /
    image_size` of training (a square training window -> `global_size` square), each side rounded
    to a multiple of 8 (at least 8)."""
    r = global_size / image_size
    return tuple(max(8, int(round(n * r / 8)) * 8) for n in hw)


def resize_frame(hw: tuple[int, int], out_hw: tuple[int, int], batch: int) -> jax.Array:
    """[B, 2, 3] pixel map of `jax.image.resize` from `hw` to `out_hw` (half-pixel centres)."""
    (h, w), (oh, ow) = hw, out_hw
    sx, sy = ow / w, oh / h
    a = jnp.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]], jnp.float32)
    return jnp.broadcast_to(a, (batch, 2, 3))


def cell_fraction(mask: jax.Array, stride: int = 8) -> jax.Array:
    """[B, H, W] mask -> [B, (H/s)*(W/s)] fraction of each stride x stride cell that is True."""
    b, h, w = mask.shape
    m = mask.astype(jnp.float32).reshape(b, h // stride, stride, w // stride, stride)
    return m.mean(axis=(2, 4)).reshape(b, -1)


def module2_inputs(
    image0: jax.Array, alignment: Alignment, *, global_hw: tuple[int, int], roi_size: int
) -> Module2Inputs:
    """Global (overlap-restricted, resized to `global_hw`, see `global_shape`) and local (ROI)
    inputs for Module 2.

    The global token mask keeps the cells of the resized overlap that are more than half inside
    it (a cell on the overlap's edge is not dilated into its neighbours); an empty overlap falls
    back to all tokens.
    """
    b, h, w, _ = image0.shape
    ov = alignment.overlap[..., None]
    g0 = jnp.where(ov, image0, 1.0)
    g1 = jnp.where(ov, alignment.aligned1, 1.0)
    gmask = alignment.overlap.astype(jnp.float32)
    gh, gw = global_hw
    if (h, w) != (gh, gw):
        g0 = jax.image.resize(g0, (b, gh, gw, 1), "linear")
        g1 = jax.image.resize(g1, (b, gh, gw, 1), "linear")
        gmask = jax.image.resize(gmask, (b, gh, gw), "linear")
    tok = cell_fraction(gmask > 0.5) > 0.5
    tok = tok | ~tok.any(axis=1, keepdims=True)
    roi0 = geometry.crop(image0, alignment.roi_origin, roi_size)
    roi1 = geometry.crop(alignment.aligned1, alignment.roi_origin, roi_size)
    shift = -alignment.roi_origin.astype(jnp.float32)  # [B, 2]
    roi_frame = jnp.concatenate(
        [jnp.broadcast_to(jnp.eye(2, dtype=jnp.float32), (b, 2, 2)), shift[..., None]], axis=-1
    )
    return Module2Inputs(g0, g1, tok, roi0, roi1, resize_frame((h, w), (gh, gw), b), roi_frame)
