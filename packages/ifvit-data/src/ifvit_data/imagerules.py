"""What an image file must be to become a print: accepted resolutions and sides, the resolution its
metadata states, and the one-line error of a file that is not usable. Shared by the readers
(`imagefile` and the WSQ reader `wsq`), imported by both and importing neither.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

DPI_RANGE: tuple[float, float] = (150.0, 5000.0)
"""Accepted resolutions (pixels per inch), from --dpi, metadata or the file name."""
PLACEHOLDER_DPI: frozenset[int] = frozenset({0, 1, 72, 96})
"""Metadata values that software writes when it does not know the resolution (FVC's TIFFs say 1):
ignored, so the file name or the layout default applies."""
MIN_SIDE = 64
"""Smallest accepted image side in pixels, in the file and after resampling to 500 ppi."""
MAX_SIDE = 8192
"""Largest accepted image side in pixels, in the file and after resampling to 500 ppi (16 inches at
500 ppi; a 2000-ppi ten-print card scan is about 3200 px)."""


class ImageReadError(ValueError):
    """A file is not a readable, non-empty image; the message names the file and the problem.

    Attributes:
      path: the file.
      reason: what is wrong and what to do, without the path.
    """

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def metadata_dpi(im: Image.Image) -> float | None:
    """The resolution a file's metadata states, or None when absent or a placeholder.

    Raises:
      ValueError: different horizontal and vertical resolutions (non-square pixels).
    """
    raw = im.info.get("dpi")
    if not raw:
        return None
    try:
        xy = [float(v) for v in raw] if isinstance(raw, (tuple, list)) else [float(raw)]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in xy) or min(xy) <= 0:
        return None
    if all(round(v) in PLACEHOLDER_DPI for v in xy):
        return None
    if max(xy) > 1.01 * min(xy):
        raise ValueError(
            f"non-square pixels ({xy[0]:g} x {xy[-1]:g} dpi); resample it to square pixels first"
        )
    return round(float(np.mean(xy)), 1)  # PNG stores pixels per metre: 1000 dpi reads 999.998


def check_dpi(dpi: float, source: str) -> str | None:
    """None if `dpi` is a usable resolution, else the reason (names the `source` of the value)."""
    lo, hi = DPI_RANGE
    if math.isfinite(dpi) and lo <= dpi <= hi:
        return None
    fix = "" if source == "--dpi" else "; pass --dpi with the true resolution"
    return f"{source} {dpi:g} dpi is outside {lo:g}-{hi:g}{fix}"


def check_side(shape: tuple[int, ...], what: str) -> str | None:
    """None if both sides of `shape` lie in [MIN_SIDE, MAX_SIDE], else the reason."""
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        return (
            f"{what} is {w}x{h} pixels; every side must be {MIN_SIDE}-{MAX_SIDE} pixels "
            "(crop, resample or remove it)"
        )
    return None
