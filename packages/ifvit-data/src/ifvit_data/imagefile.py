"""Reading one fingerprint image: decode, 8-bit gray, resolution, resampling to 500 ppi.

Pixel modes and how they become 8-bit gray `[H, W]` (ridges dark, background white):

| Pillow mode | file examples | conversion |
|---|---|---|
| `1` | 1-bit PNG / TIFF / BMP | 0 -> 0, 1 -> 255 |
| `L` | 8-bit gray (FVC TIFF, NIST PNG) | unchanged |
| `I;16*`, `I` (16-bit) | 16-bit gray PNG / TIFF / PGM | `round(v * 255 / 65535)` |
| `RGB`, `P`, `CMYK`, `YCbCr`, ... | colour, palette | luma `0.299 R + 0.587 G + 0.114 B` |
| `RGBA`, `LA`, `PA`, `P` + transparency | with alpha | composited over white, then luma |
| `F` | 32-bit float TIFF | values must lie in [0, 1]: `round(255 v)`; otherwise refused |

WSQ (`.wsq`) is decoded by `ifvit_data.wsq` (the `wsq` package, NIST NBIS).

Refused (the file is skipped with the reason, or `--strict` stops): 32-bit integer or signed pixels,
float pixels outside [0, 1] or not finite, a side below `MIN_SIDE` or above `MAX_SIDE` pixels — in
the file (checked from the header, before any pixel is decoded, so a "decompression bomb" that
claims 20000 x 20000 pixels costs nothing) or after resampling to 500 ppi — and a resolution
outside `DPI_RANGE`.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ifvit_data.imagerules import (  # noqa: F401 (re-exported: the image-reading API)
    DPI_RANGE,
    MAX_SIDE,
    MIN_SIDE,
    PLACEHOLDER_DPI,
    ImageReadError,
    check_dpi,
    check_side,
    metadata_dpi,
)
from ifvit_data.schema import STORED_DPI

_LUMA = np.array([0.299, 0.587, 0.114])


def _luma(rgb: np.ndarray) -> np.ndarray:
    """float64 `[H, W]` luma of `[H, W, 3]` values in 0..255."""
    return rgb.astype(np.float64) @ _LUMA


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composites `[H, W, C]` colour with uint8 alpha `[H, W]` over white (float64, 0..255)."""
    a = alpha.astype(np.float64)[..., None] / 255.0
    return rgb.astype(np.float64) * a + 255.0 * (1.0 - a)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _sixteen_bit(im: Image.Image) -> bool:
    """Whether a mode-`I` image holds 16-bit samples (PNG / PGM always; TIFF by BitsPerSample)."""
    if im.format in ("PNG", "PPM"):
        return True
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        bits = bits[0] if isinstance(bits, tuple) else bits
        return bits == 16
    return False


def image_to_gray8(im: Image.Image) -> np.ndarray:
    """Converts a decoded Pillow image to uint8 gray `[H, W]` (table in the module docstring).

    Raises:
      ValueError: a pixel format with no unambiguous gray reading (the message says what to do).
    """
    mode = im.mode
    if mode == "1":
        return np.array(im, dtype=bool).astype(np.uint8) * 255
    if mode == "L":
        return np.array(im, dtype=np.uint8)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N") or (mode == "I" and _sixteen_bit(im)):
        return _to_u8(np.array(im).astype(np.float64) * (255.0 / 65535.0))
    if mode == "I":
        raise ValueError(
            "32-bit integer pixels have no standard gray scale; export 8- or 16-bit gray"
        )
    if mode == "F":
        a = np.array(im, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ValueError("float pixels include NaN or infinity; export 8- or 16-bit gray")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"float pixels range over [{lo:.4g}, {hi:.4g}], not [0, 1]; scale them to [0, 1] "
                "or export 8- or 16-bit gray"
            )
        return _to_u8(a * 255.0)
    if mode == "LA" or mode == "La":
        a = np.array(im.convert("LA") if mode == "La" else im)
        return _to_u8(_over_white(a[..., :1], a[..., 1])[..., 0])
    if mode in ("P", "PA"):
        im = im.convert("RGBA") if mode == "PA" or "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "RGBa"):
        a = np.array(im.convert("RGBA") if mode == "RGBa" else im)
        return _to_u8(_luma(_over_white(a[..., :3], a[..., 3])))
    if mode == "RGB":
        return _to_u8(_luma(np.array(im)))
    if mode in ("RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return _to_u8(_luma(np.array(im.convert("RGB"))))
    raise ValueError(f"unsupported pixel mode {mode!r}; export the image as 8-bit gray PNG")


def image_file_problem(path: Path) -> str | None:
    """Why `path` cannot be an image file (missing, a folder, a pipe or device, a symbolic-link
    loop, unreadable), or None: the check every command makes before loading a model."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "no such file" if not os.path.islink(path) else "a broken symbolic link"
    except (RuntimeError, OSError) as e:
        if getattr(e, "errno", None) == errno.ELOOP or isinstance(e, RuntimeError):
            return "a symbolic-link loop, not an image file"
        return f"cannot be read ({e.strerror or e})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not an image file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a pipe, socket or device); give an image file"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


def read_image(path: Path) -> tuple[np.ndarray, float | None]:
    """Decodes an image file with Pillow (size checked from the header before decoding).

    A `.wsq` file goes to the `wsq` package's decoder (module docstring).

    Args:
      path: the file.

    Returns:
      `(uint8 gray [H, W], metadata dpi or None if absent / a placeholder)`; the dpi is not
      range-checked here (a `--dpi` flag may override it), see `check_dpi`.

    Raises:
      ImageReadError: empty, truncated, not an image, a refused pixel format or size; a `.wsq` file
        when the `wsq` package is not installed.
    """
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file; remove it or re-export the image")
        if path.suffix.lower() == ".wsq":
            from ifvit_data.wsq import read_wsq

            return read_wsq(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning: our cap is lower
            with Image.open(path) as im:
                w, h = im.size
                if (reason := check_side((h, w), "the image")) is not None:
                    raise ImageReadError(path, reason)
                im.load()
                try:
                    dpi = metadata_dpi(im)
                    gray = image_to_gray8(im)
                except ValueError as e:
                    raise ImageReadError(path, str(e)) from None
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageReadError(
            path,
            f"refused: its header claims a huge image, a possible decompression bomb ({e}); every "
            f"side must be {MIN_SIDE}-{MAX_SIDE} pixels",
        ) from None
    except MemoryError:
        raise ImageReadError(path, "too large to decode in memory; crop or resample it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageReadError(
            path, f"not a readable image ({type(e).__name__}: {e}); check the file or remove it"
        ) from None
    return gray, dpi


def resampled_shape(
    shape: tuple[int, ...], dpi: float, target: float = STORED_DPI
) -> tuple[int, int]:
    """`(H, W)` of an image of `shape` at `dpi` after `resample_to(..., target)`."""
    f = target / float(dpi)
    if abs(f - 1.0) < 1e-3:
        return int(shape[0]), int(shape[1])
    return max(1, round(shape[0] * f)), max(1, round(shape[1] * f))


def resample_to(image: np.ndarray, dpi: float, target: float = STORED_DPI) -> np.ndarray:
    """Resamples a uint8 `[H, W]` print from `dpi` to `target` ppi (INTER_AREA down, cubic up).

    Raises:
      ValueError: `dpi` is not finite and positive, or the result would exceed `MAX_SIDE`.
    """
    if not (math.isfinite(dpi) and dpi > 0):
        raise ValueError(f"dpi must be finite and positive, got {dpi}")
    h, w = resampled_shape(image.shape, dpi, target)
    if (h, w) == image.shape[:2]:
        return image
    if max(h, w) > MAX_SIDE:
        raise ValueError(f"resampling to {w}x{h} exceeds {MAX_SIDE} pixels")
    interp = cv2.INTER_AREA if target < dpi else cv2.INTER_CUBIC
    return cv2.resize(image, (w, h), interpolation=interp)
