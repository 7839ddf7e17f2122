"""Separable Gaussian filtering of `[B, H, W, C]` float32 arrays.

A 1-D filter along an axis of length n is applied as one `[n, n]` banded matrix product (the
border handling folded into the matrix): on CPU this is ~50x faster than a 1-channel
`lax.conv_general_dilated` with the same taps (measured with 35 taps on 128 px, batch 8), and
exactly the same sums.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=64)
def _filter_matrix(n: int, taps: tuple[float, ...], pad_mode: str) -> np.ndarray:
    """`M` [n, n] with (M @ x)[i] = sum_t k[t] x[i + t - r] (correlation), x zero ('constant') or
    replicated ('edge') outside [0, n)."""
    k = np.asarray(taps, np.float64)
    r = (len(k) - 1) // 2
    m = np.zeros((n, n), np.float64)
    i = np.arange(n)
    for t in range(-r, r + 1):
        j = i + t
        if pad_mode == "edge":
            np.add.at(m, (i, np.clip(j, 0, n - 1)), k[t + r])
        else:
            ok = (j >= 0) & (j < n)
            np.add.at(m, (i[ok], j[ok]), k[t + r])
    return m.astype(np.float32)


def separable(x: jax.Array, k_rows: np.ndarray, k_cols: np.ndarray,
              pad_mode: str = "constant") -> jax.Array:
    """x [B, H, W, C] correlated with k_rows along H and k_cols along W (same shape out).

    pad_mode: 'constant' (zeros: for normalised convolution) or 'edge' (replicate the border).
    """
    if pad_mode not in ("constant", "edge"):
        raise ValueError(f"pad_mode must be 'constant' or 'edge', got {pad_mode!r}")
    _, h, w, _ = x.shape
    mh = jnp.asarray(_filter_matrix(h, tuple(map(float, k_rows)), pad_mode))
    mw = jnp.asarray(_filter_matrix(w, tuple(map(float, k_cols)), pad_mode))
    hi = jax.lax.Precision.HIGHEST
    x = jnp.einsum("vw,bhwc->bhvc", mw, x, precision=hi)
    return jnp.einsum("uh,bhwc->buwc", mh, x, precision=hi)


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
