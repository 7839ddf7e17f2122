"""Configuration of the synthetic fingerprint generator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: Fingerprint classes in a fixed order (indices are stable; used for sampling).
CLASS_NAMES: tuple[str, ...] = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")

#: Natural class frequencies used by SFinGe (arch, tented arch, left loop, right loop, whorl).
SFINGE_CLASS_PROBS: tuple[float, ...] = (0.037, 0.029, 0.338, 0.317, 0.279)


@dataclass(frozen=True)
class SynthConfig:
    """All parameters of the generator. Lengths are pixels at 500 dpi.

    Attributes:
        size: Sensor (impression) size as (H, W).
        dpi: Resolution written into the PNG metadata. Only 500 is modelled.
        master_size: Canvas of the master fingerprint as (H, W); holds the whole silhouette.
        class_probs: Probabilities of `CLASS_NAMES` (arch, tented arch, left/right loop, whorl).
        period_range: Range of the base ridge period (px) drawn per finger.
        period_clamp: Hard clamp of the local ridge period (px).
        n_seeds: Range (lo, hi) of the number of growth seeds; more seeds give more minutiae.
        max_rotation_deg: Maximum absolute global rotation of an impression (degrees).
        max_translation_px: Maximum absolute global translation of an impression (px, each axis).
        contact_shift_px: Maximum shift of the contact region inside the silhouette (px; along
            the finger, three quarters of it across): where the finger touched (tip, side, flat).
        contact_scale: Range of the contact ellipse size relative to the silhouette (pressure):
            small values give partial prints.
        distortion: Strength of the plastic distortion in [0, 1+]; scales the rigid displacement of
            the external zone (up to 6 degrees and 12 px at 1; 0 disables distortion).
        thickness_levels: Range of the moisture level in [-1, 1]: negative raises the ink
            threshold (dry finger, low pressure: thin ridges broken into fragments), positive lowers
            it (wet finger, high pressure: thick ridges, valleys closing). Dry and wet patches and
            thinner ridges at the contact edge vary it across the print.
        noise: Overall noise level in [0, 1]: skin grain, pores, dirt blobs, sensor noise.
        scratch_prob: Probability that an impression carries scratches.
        creases: Range (lo, hi) of the number of creases of a finger (white lines across the
            ridges that appear in every impression).
        sensor_style: Background / grey-level style of the simulated sensor (see
            `background.SENSOR_STYLES`: 0 optical on a white background, 1 optical on grey, 2
            capacitive).
    """

    size: tuple[int, int] = (300, 300)
    dpi: int = 500
    master_size: tuple[int, int] = (480, 336)
    class_probs: tuple[float, ...] = SFINGE_CLASS_PROBS
    period_range: tuple[float, float] = (7.0, 8.3)
    period_clamp: tuple[float, float] = (5.0, 15.0)
    n_seeds: tuple[int, int] = (30, 60)
    max_rotation_deg: float = 20.0
    max_translation_px: float = 55.0
    contact_shift_px: float = 55.0
    contact_scale: tuple[float, float] = (0.66, 1.05)
    distortion: float = 1.3
    thickness_levels: tuple[float, float] = (-1.0, 1.0)
    noise: float = 0.5
    scratch_prob: float = 0.1
    creases: tuple[int, int] = (0, 4)
    sensor_style: int = 0

    def __post_init__(self) -> None:
        h, w = self.size
        if h < 32 or w < 32:
            raise ValueError(f"size must be at least 32x32, got {self.size}")
        mh, mw = self.master_size
        if mh < 64 or mw < 64:
            raise ValueError(f"master_size must be at least 64x64, got {self.master_size}")
        if self.dpi != 500:
            raise ValueError(f"only dpi=500 is modelled, got {self.dpi}")
        if len(self.class_probs) != len(CLASS_NAMES) or min(self.class_probs) < 0:
            raise ValueError(f"class_probs needs {len(CLASS_NAMES)} non-negative values")
        if sum(self.class_probs) <= 0:
            raise ValueError("class_probs must not be all zero")
        if self.sensor_style not in (0, 1, 2):
            raise ValueError(f"sensor_style must be 0, 1 or 2, got {self.sensor_style}")
        if self.n_seeds[0] < 1 or self.n_seeds[1] < self.n_seeds[0]:
            raise ValueError(f"n_seeds must be a range (lo>=1, hi>=lo), got {self.n_seeds}")
        lo, hi = self.contact_scale
        if not 0.2 <= lo <= hi <= 1.5:
            raise ValueError(f"contact_scale must be a range within [0.2, 1.5], got {lo, hi}")
        lo, hi = self.thickness_levels
        if not -1.0 <= lo <= hi <= 1.0:
            raise ValueError(f"thickness_levels must be a range within [-1, 1], got {lo, hi}")
        if self.creases[0] < 0 or self.creases[1] < self.creases[0]:
            raise ValueError(f"creases must be a range (lo>=0, hi>=lo), got {self.creases}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of every field (tuples become lists)."""
        out = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}
