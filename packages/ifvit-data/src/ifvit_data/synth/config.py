"""Configuration of the synthetic fingerprint generator, and its two realism presets.

`SynthConfig()` is the full-realism generator 2.0 ("full"); `SynthConfig.plain()` turns the
realism features of 2.0 off or back to generator 1.x values ("plain"), for an ablation of whether
synthetic realism helps on real prints (`ifvit synth --realism plain`). `REALISM_PLAIN` lists the
fields that differ and why; `SynthConfig.plain` says what no field can turn off.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: Fingerprint classes in a fixed order (indices are stable; used for sampling).
CLASS_NAMES: tuple[str, ...] = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")

#: Natural class frequencies used by SFinGe (arch, tented arch, left loop, right loop, whorl).
SFINGE_CLASS_PROBS: tuple[float, ...] = (0.037, 0.029, 0.338, 0.317, 0.279)

#: Names of the realism presets, in `ifvit synth --realism` order ("custom": neither preset).
REALISM_PRESETS: tuple[str, ...] = ("full", "plain")

#: The fields `SynthConfig.plain()` changes, with generator 1.x's value where the field existed in
#: 1.x with the same meaning (commit 04735d1), else the value that turns the feature off.
#:
#: | field | full (2.0) | plain | why |
#: |---|---|---|---|
#: | period_range | 7.0-8.3 | 8.3-9.6 | 1.x base period (2.0's was tuned to FVC2002 ridges) |
#: | n_seeds | 30-60 | 24-48 | 1.x |
#: | max_translation_px | 55 | 25 | 1.x (2.0: off-centre placement) |
#: | contact_shift_px | 55 | 30 | 1.x (2.0: where the finger touched) |
#: | contact_scale | 0.66-1.05 | 0.8-1.05 | 1.x's fixed range (2.0: partial contact) |
#: | distortion | 1.3 | 0.6 | 1.x's magnitude: 2.0 rescaled the field (1.0 means 6 deg / 12 px,
#: |  |  |  | 1.x's 1.0 meant 4 deg / 7 px), 0.6 gives 3.6 deg / 7.2 px |
#: | thickness_levels | -1..1 | 0..0 | off: no dry fragmentation, no wet closing (2.0 reads the
#: |  |  |  | range as moisture; 1.x's -1..1 meant erosion/dilation, which 2.0 no longer has) |
#: | scratch_prob | 0.1 | 0.0 | off |
#: | creases | 0-4 | 0-0 | off (new in 2.0) |
REALISM_PLAIN: dict[str, Any] = {
    "period_range": (8.3, 9.6),
    "n_seeds": (24, 48),
    "max_translation_px": 25.0,
    "contact_shift_px": 30.0,
    "contact_scale": (0.8, 1.05),
    "distortion": 0.6,
    "thickness_levels": (0.0, 0.0),
    "scratch_prob": 0.0,
    "creases": (0, 0),
}


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

    @classmethod
    def plain(cls, **overrides: Any) -> SynthConfig:
        """The "plain" preset: generator 2.0's realism features off or at 1.x values.

        Changes exactly the fields of `REALISM_PLAIN` (the table there gives each value and its
        reason); `overrides` set any field (e.g. `size`), a realism field included, in which case
        `realism` reads "custom". Unchanged because 1.x had the same value or the field is not a
        realism feature: size, dpi, master_size (holds 2.0's larger silhouettes), class_probs,
        period_clamp, max_rotation_deg (20 in both), noise (0.5 in both; it also scales 2.0's
        skin grain) and sensor_style (0).

        Not switchable, so still present in "plain": per-finger flow variety (the smooth
        orientation perturbation and wider singular-point spread of 2.0), the local ridge-period
        variation, the ragged contact edge, the thinner ridges towards the contact edge and the
        dry/wet patches (their threshold shift is independent of `thickness_levels`), the fine skin
        grain (amplitude set by `noise`), and the 2.0 sensor grey levels (style 0 is optical on a
        white background; 1.x's light-grey style 0 is gone).

        Returns:
            The configuration.
        """
        return cls(**{**REALISM_PLAIN, **overrides})

    @classmethod
    def preset(cls, realism: str, **overrides: Any) -> SynthConfig:
        """`SynthConfig(**overrides)` for "full", `SynthConfig.plain(**overrides)` for "plain".

        Raises:
            ValueError: an unknown preset name.
        """
        if realism == "full":
            return cls(**overrides)
        if realism == "plain":
            return cls.plain(**overrides)
        raise ValueError(f"unknown realism preset {realism!r}; choose one of {REALISM_PRESETS}")

    @property
    def realism(self) -> str:
        """"full" or "plain" when every `REALISM_PLAIN` field has that preset's value, else
        "custom"."""
        mine = {k: getattr(self, k) for k in REALISM_PLAIN}
        if mine == {k: getattr(_FULL, k) for k in REALISM_PLAIN}:
            return "full"
        return "plain" if mine == REALISM_PLAIN else "custom"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of every field (tuples become lists), plus the derived `realism`."""
        out = dataclasses.asdict(self)
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}
        d["realism"] = self.realism
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SynthConfig:
        """Inverse of `to_dict` (lists become tuples; `realism`, derived, is checked, not set).

        Raises:
            TypeError: an unknown field.
            ValueError: an invalid value, or a `realism` label the fields do not give.
        """
        fields = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in raw.items() if k != "realism"}
        cfg = cls(**fields)
        if "realism" in raw and raw["realism"] != cfg.realism:
            raise ValueError(f"config says realism {raw['realism']!r}, its fields are "
                             f"{cfg.realism!r}")
        return cfg


_FULL = SynthConfig()
