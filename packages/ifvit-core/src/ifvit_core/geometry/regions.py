"""Overlap of two aligned foreground masks, the ROI at its centroid, fixed-size crops (SPEC §4.5),
and whether points lie on a mask.

Conventions (docs/contracts.md): a point is `(x, y)` in pixels, `x` = column, `y` = row, origin at
the centre of the top-left pixel; a 2-D affine map is a `[2, 3]` matrix `A` in the OpenCV convention
`p_dst = A @ [x, y, 1]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def overlap_roi(
    mask0: jax.Array, mask1: jax.Array, roi_size: int | tuple[int, int]
) -> tuple[jax.Array, jax.Array]:
    """Overlap of two aligned masks and the top-left corner of a fixed-size ROI at its centroid.

    The ROI `[x0, x0 + w) x [y0, y0 + h)` is centred on the overlap centroid `c`
    (`x0 = round(c_x - (w - 1) / 2)`) and clamped inside the image; an empty overlap uses the
    image centre.

    Args:
      mask0: [B, H, W] bool. mask1: [B, H, W] bool (already in the same frame).
      roi_size: static `h = w` int or `(h, w)`, at most `(H, W)`.

    Returns:
      (overlap [B, H, W] bool, origin [B, 2] int32 `(x0, y0)` in the contract's point order).
    """
    rh, rw = _as_hw(roi_size)
    _, h, w = mask0.shape
    if rh > h or rw > w:
        raise ValueError(f"roi_size {(rh, rw)} larger than the image {(h, w)}")
    overlap = mask0.astype(bool) & mask1.astype(bool)
    m = overlap.astype(jnp.float32)
    n = jnp.sum(m, axis=(1, 2))
    ys = jnp.arange(h, dtype=jnp.float32)
    xs = jnp.arange(w, dtype=jnp.float32)
    cx = jnp.sum(m * xs[None, None, :], axis=(1, 2)) / jnp.maximum(n, 1.0)
    cy = jnp.sum(m * ys[None, :, None], axis=(1, 2)) / jnp.maximum(n, 1.0)
    cx = jnp.where(n > 0, cx, (w - 1) / 2)
    cy = jnp.where(n > 0, cy, (h - 1) / 2)
    x0 = jnp.clip(jnp.round(cx - (rw - 1) / 2), 0, w - rw)
    y0 = jnp.clip(jnp.round(cy - (rh - 1) / 2), 0, h - rh)
    return overlap, jnp.stack([x0, y0], axis=-1).astype(jnp.int32)


def crop(
    image: jax.Array,
    origin: jax.Array,
    size: int | tuple[int, int],
    *,
    fill: float = 1.0,
) -> jax.Array:
    """Fixed-size crops at per-example origins (`jax.lax.dynamic_slice` under vmap).

    Pixels of the window outside the image take `fill` (so an unclamped origin pads with the white
    background instead of being silently shifted, as bare `dynamic_slice` would do).

    Args:
      image: [B, H, W, C].
      origin: [B, 2] int `(x0, y0)` top-left pixel of each window.
      size: static `h = w` int or `(h, w)`.
      fill: value outside the image.

    Returns:
      [B, h, w, C].
    """
    rh, rw = _as_hw(size)
    _, h, w, c = image.shape
    padded = jnp.pad(image, ((0, 0), (rh, rh), (rw, rw), (0, 0)), constant_values=fill)
    # Clamp to the padded frame so dynamic_slice never shifts the window itself.
    x0 = jnp.clip(origin[:, 0].astype(jnp.int32), -rw, w) + rw
    y0 = jnp.clip(origin[:, 1].astype(jnp.int32), -rh, h) + rh

    def one(im: jax.Array, yy: jax.Array, xx: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(im, (yy, xx, 0), (rh, rw, c))

    return jax.vmap(one)(padded, y0, x0)


def on_mask(mask: jax.Array, pts: jax.Array) -> jax.Array:
    """Whether each point lies on the mask (nearest pixel; False outside the image).

    Args:
      mask: [B, H, W] bool. pts: [B, M, 2] `(x, y)` pixels.

    Returns:
      [B, M] bool.
    """
    _, h, w = mask.shape
    x, y = jnp.round(pts[..., 0]).astype(jnp.int32), jnp.round(pts[..., 1]).astype(jnp.int32)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    flat = mask.reshape(mask.shape[0], -1)
    hit = jnp.take_along_axis(flat, jnp.clip(y, 0, h - 1) * w + jnp.clip(x, 0, w - 1), axis=1)
    return inside & hit.astype(bool)
