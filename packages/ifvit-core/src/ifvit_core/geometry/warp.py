"""Image warping in the `cv2.warpAffine` convention (bilinear, constant fill), jit-able.

Conventions (docs/contracts.md): a point is `(x, y)` in pixels, `x` = column, `y` = row, origin at
the centre of the top-left pixel; a 2-D affine map is a `[2, 3]` matrix `A` in the OpenCV convention
`p_dst = A @ [x, y, 1]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ifvit_core.geometry.affine import apply_affine, invert_affine


def _bilinear_sample(image: jax.Array, x: jax.Array, y: jax.Array, fill: float) -> jax.Array:
    """Bilinear samples of one image at float pixel coords, constant `fill` outside.

    image: [H, W, C]; x, y: [Ho, Wo] -> [Ho, Wo, C]. Each of the 4 neighbours outside the image
    contributes `fill` (OpenCV BORDER_CONSTANT behaviour).
    """
    h, w, c = image.shape
    x0 = jnp.floor(x)
    y0 = jnp.floor(y)
    fx = x - x0
    fy = y - y0
    x0 = x0.astype(jnp.int32)
    y0 = y0.astype(jnp.int32)
    flat = image.reshape(h * w, c)
    out = jnp.zeros((*x.shape, c), image.dtype)
    for dy, dx, wt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                       (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        v = flat[jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)]  # [Ho, Wo, C]
        v = jnp.where(inside[..., None], v, fill)
        out = out + wt[..., None] * v
    return out


def warp_image(
    image: jax.Array,
    A: jax.Array,
    out_shape: tuple[int, int],
    fill: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Warp images like `cv2.warpAffine(img, A, (W_out, H_out))` (bilinear, BORDER_CONSTANT).

    `A` maps a source pixel to its destination: a feature at `p` in `image` lands at `A @ [p; 1]` in
    the output, i.e. `out(q) = image(A⁻¹ q)`. Pixel centres are integer coordinates (contract). To
    align image 1 onto image 0 with RANSAC's `A` (image0 -> image1), pass `invert_affine(A)`.

    Args:
      image: [B, H, W, C].
      A: [B, 2, 3] source -> destination maps.
      out_shape: static `(H_out, W_out)`.
      fill: value outside the source (1.0 = white background of prints).

    Returns:
      (warped [B, H_out, W_out, C] float32, valid [B, H_out, W_out] bool): `valid` is True where the
      sample point lies inside the source image, `0 <= x <= W-1` and `0 <= y <= H-1`.
    """
    ho, wo = out_shape
    _, h, w, _ = image.shape
    # fp32 coordinates: bf16 cannot even represent integer pixel positions above 256.
    image = image.astype(jnp.float32)
    inv = invert_affine(A.astype(jnp.float32))  # [B, 2, 3]
    qy, qx = jnp.meshgrid(jnp.arange(ho, dtype=jnp.float32), jnp.arange(wo, dtype=jnp.float32),
                          indexing="ij")
    q = jnp.stack([qx, qy], axis=-1).reshape(1, ho * wo, 2)  # [1, Ho*Wo, 2]
    p = apply_affine(inv, q).reshape(-1, ho, wo, 2)  # [B, Ho, Wo, 2] source coordinates
    x, y = p[..., 0], p[..., 1]
    warped = jax.vmap(lambda im, xx, yy: _bilinear_sample(im, xx, yy, fill))(image, x, y)
    valid = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return warped, valid
