"""Dryness and over-pressure by grey morphology (SPEC §4.2 items 2 and 3).

Ridges are dark and the background is white, so grey *dilation* (a local max) grows the white
valleys and thins the ridges — the dry look — while grey *erosion* (a local min) thickens the ridges
— the over-pressed look. The kernel is a `k x k` square applied `n` times; SPEC §4.2 allows k in
2..4 px and n in 1..2, but each application grows ridges (or valleys) by `k - 1` px, and on 500-ppi
prints (ridge period ~9 px, FVC2002 DB1 valleys ~3 px wide) a total growth `(k - 1) * n` above 2 px
erases the valleys or ridges altogether. `max_growth` caps it (the iteration count is lowered).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MorphologyConfig:
    """Ranges of the morphological corruptions.

    Attributes:
      kernel: `(min, max)` square kernel side in pixels, inclusive.
      iterations: `(min, max)` number of iterations, inclusive.
      max_growth: cap on `(kernel - 1) * iterations` in pixels (the iterations are reduced, min 1).
    """

    kernel: tuple[int, int] = (2, 3)
    iterations: tuple[int, int] = (1, 2)
    max_growth: int = 2


def _kernel(size: int) -> np.ndarray:
    if size < 1:
        raise ValueError(f"morphology kernel size must be >= 1, got {size}")
    return np.ones((size, size), dtype=np.uint8)


def dryness(image: np.ndarray, kernel: int, iterations: int) -> np.ndarray:
    """Thins dark ridges (grey dilation).

    Args:
      image: float32 or uint8 `[H, W]`, ridges dark.
      kernel: square kernel side in pixels.
      iterations: number of dilations.

    Returns:
      Same dtype and shape as `image`.
    """
    return cv2.dilate(
        image, _kernel(kernel), iterations=iterations, borderType=cv2.BORDER_REPLICATE
    )


def pressure(image: np.ndarray, kernel: int, iterations: int) -> np.ndarray:
    """Thickens dark ridges (grey erosion).

    Args:
      image: float32 or uint8 `[H, W]`, ridges dark.
      kernel: square kernel side in pixels.
      iterations: number of erosions.

    Returns:
      Same dtype and shape as `image`.
    """
    return cv2.erode(image, _kernel(kernel), iterations=iterations, borderType=cv2.BORDER_REPLICATE)


def random_params(cfg: MorphologyConfig, rng: np.random.Generator) -> tuple[int, int]:
    """Draws `(kernel, iterations)` uniformly from the inclusive ranges of `cfg`, growth-capped."""
    k = int(rng.integers(cfg.kernel[0], cfg.kernel[1] + 1))
    n = int(rng.integers(cfg.iterations[0], cfg.iterations[1] + 1))
    if k > 1:
        n = max(1, min(n, cfg.max_growth // (k - 1)))
    return k, n
