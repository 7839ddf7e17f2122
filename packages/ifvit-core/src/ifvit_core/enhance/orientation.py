"""Ridge orientation field from the gradient structure tensor (doubled-angle smoothing).

Angles are in image coordinates (x = column to the right, y = row downwards): a ridge of
orientation theta runs along the unit vector (cos theta, sin theta), theta in [0, pi). The image
gradient is perpendicular to the ridges, so theta = (gradient angle + pi/2) mod pi.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ifvit_core.enhance.config import EnhanceConfig
from ifvit_core.enhance.filters import gaussian_1d, masked_blur, separable


def gradients(images: jax.Array, sigma: float) -> tuple[jax.Array, jax.Array]:
    """Derivative-of-Gaussian gradient (d/dx, d/dy), each [B, H, W, 1]; the border is replicated."""
    g, dg = gaussian_1d(sigma), gaussian_1d(sigma, order=1)
    # correlation with dg (odd) = minus the derivative: flip it to get +d/dx
    return (separable(images, g, dg[::-1], pad_mode="edge"),
            separable(images, dg[::-1], g, pad_mode="edge"))


def orientation_field(images: jax.Array, masks: jax.Array,
                      cfg: EnhanceConfig = EnhanceConfig()) -> tuple[jax.Array, jax.Array]:
    """Ridge orientation and coherence of a batch of prints.

    The structure tensor (gx^2, gy^2, gx gy) is averaged as the doubled-angle vector
    (gx^2 - gy^2, 2 gx gy) with a Gaussian of `orientation_sigma` periods over the foreground only
    (normalised convolution), so the background never pulls the orientation near the border.

    Args:
      images: [B, H, W, 1] float in [0, 1], ridges dark.
      masks: [B, H, W] bool foregrounds.
      cfg: `gradient_sigma`, `orientation_sigma` (in ridge periods) and `ridge_period`.

    Returns:
      theta: [B, H, W] float32 ridge orientation in [0, pi) (see module docstring);
      coherence: [B, H, W] float32 in [0, 1] (1: parallel ridges; 0: no dominant orientation, or no
        foreground within reach).
    """
    x = images.astype(jnp.float32)
    w = masks.astype(jnp.float32)[..., None]
    gx, gy = gradients(x, cfg.px(cfg.gradient_sigma))
    tensor = jnp.concatenate([gx * gx - gy * gy, 2.0 * gx * gy, gx * gx + gy * gy], axis=-1)
    t = masked_blur(tensor, w, cfg.px(cfg.orientation_sigma))
    c2, s2, energy = t[..., 0], t[..., 1], t[..., 2]
    phi = 0.5 * jnp.arctan2(s2, c2)  # dominant gradient direction, in (-pi/2, pi/2]
    theta = jnp.mod(phi + 0.5 * jnp.pi, jnp.pi)
    coherence = jnp.sqrt(c2 * c2 + s2 * s2) / jnp.maximum(energy, 1e-12)
    return theta, jnp.clip(jnp.where(energy > 1e-12, coherence, 0.0), 0.0, 1.0)
