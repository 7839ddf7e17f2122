"""Model inputs from 500-ppi prints without squashing the ridge period (SPEC §4.4).

The print is downscaled by a fixed factor `downscale` in [1, 2] (INTER_AREA), then a window is cut
around the foreground centroid (optionally jittered), padding with white. The window is `size`
(training: one shape per batch), or, with `max_size`, grows with the print (inference: the whole
print, `window_size`): each side is the downscaled image side rounded up to a multiple of `step`,
at least `size` and at most `max_size`, so one sensor gives one shape (one compiled graph). The
mapping from the stored image to the window is the affine
`C = [[s, 0, s/2 - 1/2 - ox], [0, s, ...]]` with `s ~ 1/d` (pixel centres at integer coordinates;
`(ox, oy)` = the window's corner in the resized image), returned so that correspondences known in
stored-image coordinates can be carried into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ifvit_data.foreground import foreground_grid, mask_centroid


@dataclass(frozen=True)
class CropConfig:
    """How a stored print becomes a model input.

    Attributes:
      size: `(H, W)` of the output (the smallest output when `max_size` is set), multiples of 8.
      downscale: resize factor (>= 1, <= 2 keeps the 500-ppi ridge period >= ~4.5 px).
      jitter: the window centre moves by `U(-jitter, jitter)` pixels per axis (0 = deterministic).
      max_size: None (fixed window) or the largest `(H, W)`: the window grows with the print.
      step: a growing window's sides are multiples of `step` (a multiple of 8), then clipped.
    """

    size: tuple[int, int] = (128, 128)
    downscale: float = 1.0
    jitter: float = 0.0
    max_size: tuple[int, int] | None = None
    step: int = 64

    def __post_init__(self) -> None:
        for name, hw in (("size", self.size), ("max_size", self.max_size or self.size)):
            if hw[0] % 8 or hw[1] % 8 or min(hw) <= 0:
                raise ValueError(f"crop {name} must be positive multiples of 8, got {hw}")
        if self.max_size is not None and (self.max_size[0] < self.size[0]
                                          or self.max_size[1] < self.size[1]):
            raise ValueError(f"crop max_size {self.max_size} is smaller than size {self.size}")
        if self.step <= 0 or self.step % 8:
            raise ValueError(f"crop step must be a positive multiple of 8, got {self.step}")
        if not 1.0 <= self.downscale <= 2.0:
            raise ValueError(f"downscale must be in [1, 2] (SPEC §4.4), got {self.downscale}")


def window_size(cfg: CropConfig, hw: tuple[int, int]) -> tuple[int, int]:
    """`(H, W)` of the window for an image of `hw` pixels after the downscale: `cfg.size`, or with
    `cfg.max_size` each side `ceil(side / step) * step` clipped to `[size, max_size]`."""
    if cfg.max_size is None:
        return tuple(cfg.size)
    return tuple(min(hi, max(lo, -(-n // cfg.step) * cfg.step))
                 for n, lo, hi in zip(hw, cfg.size, cfg.max_size, strict=True))


def print_grid(image: np.ndarray) -> tuple[np.ndarray, int, tuple[float, float]]:
    """Foreground grid and centroid of a 500-ppi print, computed at half resolution.

    Half resolution keeps the ridges visible (period ~9 px -> ~4.5 px) and is 4x cheaper.

    Args:
      image: uint8 `[H, W]`.

    Returns:
      `(grid bool [H // 8, W // 8], cell size 8, (x, y) centroid in pixels)`; the centroid is the
      image centre if the grid is empty.
    """
    h, w = image.shape
    small = cv2.resize(image, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    grid = foreground_grid(small, window=8, block=4)
    c = mask_centroid(grid)
    if c is None:
        return grid, 8, ((w - 1) / 2.0, (h - 1) / 2.0)
    return grid, 8, ((c[0] + 0.5) * 8 - 0.5, (c[1] + 0.5) * 8 - 0.5)  # block centre -> pixel


def grid_window(grid: np.ndarray, cell: int, ox: int, oy: int, size: tuple[int, int]) -> np.ndarray:
    """Nearest lookup of a block grid over the window `[oy, oy + h) x [ox, ox + w)`; False
    outside."""
    h, w = size
    ys, xs = np.arange(oy, oy + h), np.arange(ox, ox + w)
    rows, cols = ys // cell, xs // cell
    ok_r = (ys >= 0) & (rows < grid.shape[0])
    ok_c = (xs >= 0) & (cols < grid.shape[1])
    out = grid[np.clip(rows, 0, grid.shape[0] - 1)][:, np.clip(cols, 0, grid.shape[1] - 1)]
    return out & ok_r[:, None] & ok_c[None, :]


def foreground_centroid(image: np.ndarray) -> tuple[float, float]:
    """`(x, y)` centroid of the foreground of a uint8 `[H, W]` print (the image centre if none)."""
    return print_grid(image)[2]


def crop_print(
    image: np.ndarray, cfg: CropConfig, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Downscales and crops a print around its foreground centroid.

    Args:
      image: uint8 `[H, W]` stored print (500 ppi).
      cfg: output size (`window_size`), downscale and jitter.
      rng: generator for the jitter (required when `cfg.jitter > 0`).

    Returns:
      `(window float32 [h, w] in [0, 1], C float64 [2, 3], mask bool [h, w])` where `C` maps
      stored-image points to window points and `mask` is the window's foreground (False in padding).
    """
    d = float(cfg.downscale)
    x = image
    if d != 1.0:
        new = (max(1, round(image.shape[1] / d)), max(1, round(image.shape[0] / d)))
        x = cv2.resize(image, new, interpolation=cv2.INTER_AREA)
    grid, cell, (cx, cy) = print_grid(x)
    if cfg.jitter > 0:
        if rng is None:
            raise ValueError("crop_print needs an rng when jitter > 0")
        cx += rng.uniform(-cfg.jitter, cfg.jitter)
        cy += rng.uniform(-cfg.jitter, cfg.jitter)
    h, w = window_size(cfg, x.shape[:2])
    ox, oy = int(round(cx - (w - 1) / 2.0)), int(round(cy - (h - 1) / 2.0))
    out = np.full((h, w), 255, dtype=np.uint8)
    ys, xs = max(0, oy), max(0, ox)
    ye, xe = min(x.shape[0], oy + h), min(x.shape[1], ox + w)
    if ye > ys and xe > xs:
        out[ys - oy : ye - oy, xs - ox : xe - ox] = x[ys:ye, xs:xe]
    mask = grid_window(grid, cell, ox, oy, (h, w))
    # Point map stored -> resized: INTER_AREA with factor d maps pixel centres p -> (p + 0.5) / d -
    # 0.5.
    sx, sy = x.shape[1] / image.shape[1], x.shape[0] / image.shape[0]
    c = np.array([[sx, 0.0, 0.5 * sx - 0.5 - ox], [0.0, sy, 0.5 * sy - 0.5 - oy]])
    return out.astype(np.float32) * np.float32(1.0 / 255.0), c, mask
