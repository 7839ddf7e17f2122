"""Sensor styles: background, illumination, sensor noise and the grey levels of ridges."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SensorStyle:
    """Grey-level style of a simulated sensor.

    Attributes:
        name: Short description.
        level: Mean background grey level.
        texture_amp: Amplitude (grey levels) of a faint low-frequency background texture.
        texture_scale: Correlation length (px) of that texture.
        noise_sigma: Standard deviation of per-pixel sensor noise (grey levels) at noise level 0.5.
        contrast: Range of the ridge contrast (grey levels between background and full ink).
        vignette: Darkening (grey levels) of the frame corners relative to the centre.
        stripes: Standard deviation (grey levels) of fixed column offsets (capacitive read-out).
    """

    name: str
    level: float
    texture_amp: float
    texture_scale: float
    noise_sigma: float
    contrast: tuple[float, float]
    vignette: float = 0.0
    stripes: float = 0.0


#: 0: optical on a white background (like most FVC optical sets, the default); 1: optical on a
#: light-grey background with stronger vignetting (FVC2002 DB2 / SFinGe-like); 2: capacitive,
#: mid-grey with column stripes (FVC2002 DB3-like).
SENSOR_STYLES: tuple[SensorStyle, ...] = (
    SensorStyle("optical-white", 238.0, 2.5, 90.0, 2.5, (175.0, 215.0), vignette=10.0),
    SensorStyle("optical-grey", 200.0, 4.0, 80.0, 3.5, (150.0, 185.0), vignette=22.0),
    SensorStyle("capacitive", 140.0, 4.0, 60.0, 4.0, (90.0, 115.0), stripes=4.0),
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
    # smooth on a grid `f` times coarser than the output (the field varies over ~scale px), then
    # upsample linearly: the same field as blurring at full size, at a fraction of the cost
    f = max(1, int(scale // 8))
    hs, ws = -(-h // f), -(-w // f)
    g = cv2.resize(coarse, (ws, hs), interpolation=cv2.INTER_CUBIC)
    g = cv2.GaussianBlur(g, (0, 0), max(1.0, scale / 4) / f)
    g = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR) if f > 1 else g
    sd = float(g.std())
    return ((g - g.mean()) / (sd if sd > 1e-6 else 1.0)).astype(np.float32)


def fine_grain(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std noise correlated over about `sigma` px (skin grain, pores), float32."""
    f = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    sd = float(f.std())
    return f / (sd if sd > 1e-6 else 1.0)


def background(rng: np.random.Generator, shape: tuple[int, int], style: SensorStyle) -> np.ndarray:
    """Background grey levels (float32 [H, W]) before sensor noise (texture, vignette, stripes)."""
    h, w = shape
    tex = low_frequency_field(rng, shape, style.texture_scale)
    out = style.level + style.texture_amp * tex
    if style.vignette:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cy, cx = (h - 1) / 2 + rng.normal(0, h / 10), (w - 1) / 2 + rng.normal(0, w / 10)
        r2 = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2
        out = out - style.vignette * 0.5 * r2
    if style.stripes:
        cols = rng.normal(0.0, style.stripes, size=w).astype(np.float32)
        out = out + cv2.GaussianBlur(cols[None, :], (0, 0), 0.8)
    return out.astype(np.float32)
