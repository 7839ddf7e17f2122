"""Reading one fingerprint image: decode, 8-bit gray, resolution, resampling to 500 ppi."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ifvit_data.schema import STORED_DPI

DPI_RANGE: tuple[float, float] = (150.0, 5000.0)
"""Metadata resolutions outside this range (e.g. TIFF's placeholder 1 or 72 dpi) are ignored."""


class ImageReadError(ValueError):
    """A file is not a readable, non-empty image; the message names the file and the problem.

    Attributes:
      path: the file.
      reason: what is wrong and what to do, without the path.
    """

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def to_gray8(arr: np.ndarray) -> np.ndarray:
    """Normalises a decoded image to uint8 gray `[H, W]`.

    Args:
      arr: `[H, W]` or `[H, W, C]` of any integer, bool or float dtype (floats assumed in [0, 1]).

    Returns:
      uint8 `[H, W]`; 16-bit data is scaled by its type range, colour is averaged (luma weights).
    """
    if arr.ndim == 3:
        if arr.shape[2] == 4:
            arr = arr[..., :3]
        if arr.shape[2] == 3:
            arr = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        else:
            arr = arr[..., 0]
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return np.clip(np.round(arr.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    return np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def read_image(path: Path) -> tuple[np.ndarray, float | None]:
    """Decodes an image file with Pillow.

    Args:
      path: the file.

    Returns:
      `(uint8 gray [H, W], metadata dpi or None if absent / implausible)`.

    Raises:
      ImageReadError: empty, truncated, not an image, or zero-sized.
    """
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file; remove it or re-export the image")
        if path.suffix.lower() == ".wsq":
            raise ImageReadError(path, "WSQ is not supported; convert it to PNG (e.g. NBIS dwsq)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.load()
                info_dpi = im.info.get("dpi")
                if im.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr"):
                    im = im.convert("L")
                arr = np.array(im)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageReadError(
            path, f"not a readable image ({type(e).__name__}: {e}); check the file or remove it"
        ) from None
    if arr.size == 0:
        raise ImageReadError(path, "image has zero size; remove it")
    dpi = None
    if info_dpi:
        try:
            d = float(np.mean([float(v) for v in info_dpi]))
        except (TypeError, ValueError):
            d = 0.0
        if DPI_RANGE[0] <= d <= DPI_RANGE[1]:
            dpi = round(d, 1)  # PNG stores pixels per metre: 1000 dpi reads back as 999.998
    return to_gray8(arr), dpi


def resample_to(image: np.ndarray, dpi: float, target: float = STORED_DPI) -> np.ndarray:
    """Resamples a uint8 `[H, W]` print from `dpi` to `target` ppi (INTER_AREA down, INTER_CUBIC up)."""
    f = target / float(dpi)
    if abs(f - 1.0) < 1e-3:
        return image
    size = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
    interp = cv2.INTER_AREA if f < 1.0 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp)
