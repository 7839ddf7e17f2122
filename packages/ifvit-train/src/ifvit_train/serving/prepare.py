"""Image files -> what the model sees, without jax: the one preprocessing path of training and
inference (`bundle.json` "preprocessing"): decode and convert to grey (`ifvit_data.imagefile`),
resample to 500 ppi, the window at the foreground centroid (`ifvit_data.preprocess.crop_print`:
the training size, or for a bundle that records "max_input_size" a window that grows to hold the
whole print) and its foreground mask. Each prepared image keeps the affine map from its file's
pixels to the model input, so every output point is mapped back, and its quality
(`ifvit_data.quality`): an image below the floor (blank, uniform, noise, not a fingerprint) is a
failure to acquire, `FailureToAcquire`, never a score. The ridge enhancement, if the bundle
records it, runs later on device (`ifvit_train.serving.preprocessing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_data.imagefile import check_dpi, read_image, resample_to
from ifvit_data.preprocess import CropConfig, crop_print
from ifvit_data.quality import PrintQuality, assess_print
from ifvit_data.schema import STORED_DPI


def _h(a: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(a, np.float64), [0.0, 0.0, 1.0]])


def _apply(a: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, np.float64) @ a[:2, :2].T + a[:2, 2]


@dataclass
class PreparedImage:
    """A print as the model sees it, and how it relates to the file.

    image: uint8 [H, W] the file's pixels (grey); window: float32 [h, w] model input; mask: bool
    [h, w] its foreground; to_window: [3, 3] file pixel -> window pixel; dpi and where it came from;
    quality: the print's quality at 500 ppi (`ifvit_data.quality.assess_print`).
    """

    path: Path
    image: np.ndarray
    window: np.ndarray
    mask: np.ndarray
    to_window: np.ndarray
    dpi: float
    dpi_source: str
    quality: PrintQuality


class FailureToAcquire(ValueError):
    """No usable fingerprint in the image (quality below the floor): one line, and the quality."""

    def __init__(self, path: Path, quality: PrintQuality):
        super().__init__(f"{path}: not acquired as a fingerprint: {quality.reason}")
        self.path, self.quality = path, quality


def prepare_image(path: str | Path, size: int, dpi: float | None = None,
                  downscale: float = 1.0, max_size: int | None = None,
                  step: int = 64, require_print: bool = True) -> PreparedImage:
    """Reads a print and prepares it like training did: a `size` square window, or with
    `max_size` a window that grows with the print (`ifvit_data.preprocess.window_size`).

    require_print: raise `FailureToAcquire` when the image is below the quality floor (False: the
      caller decides, from `PreparedImage.quality`).

    Raises:
      ifvit_data.imagefile.ImageReadError / ValueError: unreadable file or unusable resolution.
      FailureToAcquire (a ValueError): no fingerprint in the image (with `require_print`).
    """
    path = Path(path)
    gray, meta = read_image(path)
    source = "flag" if dpi is not None else ("metadata" if meta is not None else "default 500")
    dpi = float(dpi if dpi is not None else (meta if meta is not None else STORED_DPI))
    if (reason := check_dpi(dpi, source)) is not None:
        raise ValueError(f"{path}: {reason}")
    stored = resample_to(gray, dpi)
    quality = assess_print(stored)
    if require_print and not quality.acquired:
        raise FailureToAcquire(path, quality)
    crop = CropConfig(size=(size, size), downscale=downscale, step=step,
                      max_size=None if max_size is None else (max_size, max_size))
    window, c, mask = crop_print(stored, crop)
    fx, fy = stored.shape[1] / gray.shape[1], stored.shape[0] / gray.shape[0]
    to_stored = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5]])  # resize convention
    return PreparedImage(path, gray, window, mask, _h(c) @ _h(to_stored), dpi, source, quality)


def prepare_for_bundle(meta: dict[str, Any], path: str | Path, dpi: float | None = None,
                       require_print: bool = True) -> PreparedImage:
    """`prepare_image` with the settings a bundle was trained with (bundle.json 'preprocessing'):
    the one place every command (match, evaluate, enroll, identify) reads them."""
    pre = meta["preprocessing"]
    grow = pre.get("max_input_size")  # absent in bundles made before windows grew: fixed size
    return prepare_image(path, int(pre["input_size"][0]), dpi, float(pre.get("downscale", 1.0)),
                         None if grow is None else int(grow[0]), int(pre.get("window_step", 64)),
                         require_print)
