"""Sensor backgrounds: low-frequency Gaussian texture plus per-sensor grey-level style."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SensorStyle:
    """Grey-level style of a simulated sensor.

    Attributes:
        level: Mean background grey level.
        texture_amp: Amplitude (grey levels) of the low-frequency texture.
        texture_scale: Correlation length (px) of the texture.
        noise_sigma: Standard deviation of per-pixel sensor noise (grey levels).
        contrast: Range of the ridge contrast (grey levels between valley and ridge).
    """

    level: float
    texture_amp: float
    texture_scale: float
    noise_sigma: float
    contrast: tuple[float, float]


#: Three styles: bright optical, mid-grey capacitive-like, textured dark-ish background.
SENSOR_STYLES: tuple[SensorStyle, ...] = (
    SensorStyle(232.0, 8.0, 48.0, 3.0, (150.0, 200.0)),
    SensorStyle(205.0, 14.0, 20.0, 6.0, (120.0, 165.0)),
    SensorStyle(185.0, 22.0, 70.0, 5.0, (110.0, 150.0)),
)


def low_frequency_field(
    rng: np.random.Generator, shape: tuple[int, int], scale: float
) -> np.ndarray:
    """Smooth zero-mean, unit-std random field with correlation length about `scale` px.

    Args:
        rng: Random stream.
        shape: (H, W).
        scale: Correlation length in pixels (>= 2).

    Returns:
        float32 [H, W].
    """
    h, w = shape
    gh, gw = max(2, int(np.ceil(h / scale)) + 1), max(2, int(np.ceil(w / scale)) + 1)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    f = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    f = cv2.GaussianBlur(f, (0, 0), max(1.0, scale / 4))
    sd = float(f.std())
    return ((f - f.mean()) / (sd if sd > 1e-6 else 1.0)).astype(np.float32)


def background(rng: np.random.Generator, shape: tuple[int, int], style: SensorStyle) -> np.ndarray:
    """Background grey levels (float32 [H, W]) before sensor noise."""
    tex = low_frequency_field(rng, shape, style.texture_scale)
    return (style.level + style.texture_amp * tex).astype(np.float32)
