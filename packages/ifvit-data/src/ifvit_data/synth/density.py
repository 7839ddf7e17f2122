"""Ridge-period (inverse density) map (SFinGe step 4)."""

from __future__ import annotations

import cv2
import numpy as np

from ifvit_data.synth.orientation import OrientationModel
from ifvit_data.synth.silhouette import Silhouette

#: Standard deviation (px) of the coarse nodes of the local period variation. (Arches reach only
#: about 5 master minutiae per 100x100 px against 7-10 for the other classes; more variation gives
#: them more, but most of those sit in zones where the growth does not settle into clean ridges and
#: are not detected in the rendered impressions, so it does not help a matcher.)
VARIATION = 0.9


def period_map(
    rng: np.random.Generator,
    shape: tuple[int, int],
    sil: Silhouette,
    model: OrientationModel,
    period_range: tuple[float, float],
    clamp: tuple[float, float],
) -> np.ndarray:
    """Local ridge period in pixels over the master canvas.

    A base period drawn from `period_range` is raised a little (sparser ridges) above the
    uppermost core and below the lowest delta, modulated by smoothed noise that varies over a few
    ridges, and clamped to `clamp`.

    Args:
        rng: Random stream.
        shape: Canvas (H, W).
        sil: Silhouette (used for the arch, which has no singular points).
        model: Orientation model (singular points).
        period_range: Range of the base period (px).
        clamp: (min, max) period (px).

    Returns:
        float32 [H, W] ridge period in pixels.
    """
    h, w = shape
    base = rng.uniform(*period_range)
    yy = np.arange(h, dtype=np.float64)[:, None]
    cores = [p.y for p in model.points if p.kind == "core"]
    deltas = [p.y for p in model.points if p.kind == "delta"]
    top = min(cores) if cores else sil.cy - 0.15 * (sil.b1 + sil.c)
    bottom = max(deltas) if deltas else sil.cy + 0.5 * (sil.b2 + sil.c)
    up = rng.uniform(0.6, 1.2)  # extra period near the fingertip
    down = rng.uniform(0.3, 0.8)  # extra period near the flexion crease
    ramp_up = np.clip((top - yy) / 120.0, 0.0, 1.0)
    ramp_down = np.clip((yy - bottom) / 80.0, 0.0, 1.0)
    per = base + up * ramp_up + down * ramp_down
    # local variation (coarse random grid every ~20 px, cubic upsampling, Gaussian smoothing): real
    # ridge spacing varies by about 10% over a few ridges, and the ridges this forces to end or
    # split are minutiae (the only source of them in arches, which have no singular points)
    gh, gw = max(2, h // 20), max(2, w // 20)
    coarse = rng.normal(0.0, VARIATION, size=(gh, gw)).astype(np.float32)
    noise = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(noise, (0, 0), 6.0)
    per = per + noise
    return np.clip(per, clamp[0], clamp[1]).astype(np.float32)
