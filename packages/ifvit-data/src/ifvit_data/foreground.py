"""Fingerprint foreground (ridge area) mask from local contrast, computed on a coarse grid for
speed."""

from __future__ import annotations

import cv2
import numpy as np


def foreground_grid(
    image: np.ndarray,
    window: int = 16,
    rel_threshold: float = 0.25,
    min_std: float = 0.03,
    block: int = 4,
) -> np.ndarray:
    """The coarse mask of `foreground_mask`: bool `[H // block, W // block]`, one value per
    block."""
    h, w = image.shape[:2]
    mean = cv2.boxFilter(image, cv2.CV_32F, (window, window), borderType=cv2.BORDER_REFLECT)
    sq = cv2.sqrBoxFilter(image, cv2.CV_32F, (window, window), borderType=cv2.BORDER_REFLECT)
    var = sq - mean * mean
    if image.dtype == np.uint8:
        var *= np.float32(1.0 / 255.0**2)
    gh, gw = max(1, h // block), max(1, w // block)
    if h >= block and w >= block:  # an exact integer factor takes OpenCV's fast INTER_AREA path
        var = var[: gh * block, : gw * block]
    small = np.sqrt(np.maximum(cv2.resize(var, (gw, gh), interpolation=cv2.INTER_AREA), 0.0))
    flat = small.ravel()
    q = int(0.99 * (flat.size - 1))
    top = float(np.partition(flat, q)[q])
    mask = (small > max(min_std, rel_threshold * top)).astype(np.uint8)
    r = max(1, round(window / block))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (r | 1, r | 1))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k)
    return mask.view(bool)


def foreground_mask(
    image: np.ndarray,
    window: int = 16,
    rel_threshold: float = 0.25,
    min_std: float = 0.03,
    block: int = 4,
) -> np.ndarray:
    """Marks pixels whose neighbourhood has ridge-like contrast.

    The local standard deviation over a `window x window` box (full resolution, so ridges are not
    averaged away) is reduced to one value per `block x block` block, thresholded at
    `max(min_std, rel_threshold * 99th percentile)`, closed and opened with a disc of about
    `window` pixels (so ridge valleys count as foreground and specks do not), and expanded back to
    full resolution (nearest). The mask is therefore accurate to about `block` pixels.

    Args:
      image: `[H, W]` uint8 (0..255) or float (0..1), ridges dark on a light background.
      window: box side in pixels (about 1.5 ridge periods at 500 ppi).
      rel_threshold: threshold relative to the high-contrast level of the image.
      min_std: absolute floor of the threshold (in [0, 1] intensity units).
      block: coarse-grid cell size in pixels (1 = full resolution).

    Returns:
      bool `[H, W]`.
    """
    grid = foreground_grid(image, window, rel_threshold, min_std, block)
    h, w = image.shape[:2]
    return cv2.resize(grid.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(bool)


def mask_centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """`(x, y)` centroid of a bool `[H, W]` mask, or None if it is empty."""
    m = cv2.moments(mask.view(np.uint8), binaryImage=True)
    if m["m00"] == 0:
        return None
    return m["m10"] / m["m00"], m["m01"] / m["m00"]
