"""Separable Gaussian filtering of `[B, H, W, C]` float32 arrays (lax convolutions, NHWC)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def gaussian_1d(sigma: float, order: int = 0) -> np.ndarray:
    """Sampled Gaussian (order 0, sums to 1) or its derivative (order 1, d/dx) of radius
    ceil(3 sigma): float32 `[2r + 1]`, index r at x = 0."""
    r = max(1, math.ceil(3.0 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    if order == 1:
        g = -x / sigma**2 * g
        g /= -np.sum(x * g)  # exact response 1 to the ramp f(x) = x
    return g.astype(np.float32)


def _conv_axis(x: jax.Array, k: np.ndarray, axis: int, pad_mode: str) -> jax.Array:
    """1-D correlation of every channel of x [B, H, W, C] along axis 1 (rows) or 2 (columns)."""
    b, h, w, c = x.shape
    r = (len(k) - 1) // 2
    planes = jnp.moveaxis(x, 3, 1).reshape(b * c, h, w, 1)
    pads = [(0, 0), (r, r) if axis == 1 else (0, 0), (r, r) if axis == 2 else (0, 0), (0, 0)]
    planes = jnp.pad(planes, pads, mode=pad_mode)
    kern = jnp.asarray(k).reshape((-1, 1, 1, 1) if axis == 1 else (1, -1, 1, 1))
    out = jax.lax.conv_general_dilated(planes, kern, (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.moveaxis(out.reshape(b, c, h, w), 1, 3)


def separable(x: jax.Array, k_rows: np.ndarray, k_cols: np.ndarray,
              pad_mode: str = "constant") -> jax.Array:
    """x [B, H, W, C] correlated with k_rows along H, then k_cols along W (same shape out).

    pad_mode: 'constant' (zeros: for normalised convolution) or 'edge' (replicate the border).
    """
    return _conv_axis(_conv_axis(x, k_rows, 1, pad_mode), k_cols, 2, pad_mode)


def blur(x: jax.Array, sigma: float) -> jax.Array:
    """Gaussian blur of x [B, H, W, C], zero outside the image."""
    g = gaussian_1d(sigma)
    return separable(x, g, g)


def masked_blur(x: jax.Array, weight: jax.Array, sigma: float, eps: float = 1e-6) -> jax.Array:
    """Normalised convolution: blur(x * weight) / blur(weight), the Gaussian-weighted mean of x over
    the pixels with weight > 0 (x [B, H, W, C], weight [B, H, W, 1]); 0 where no weight is near."""
    num = blur(x * weight, sigma)
    den = blur(weight, sigma)
    return jnp.where(den > eps, num / jnp.maximum(den, eps), 0.0)
