"""`EnhanceConfig`: the settings of the ridge enhancement (recorded in a model bundle)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Ridge period of a 500-ppi print in pixels: the median over 32 prints of fvc2002_db2_b and
# fvc2004_db3_b is 9.48 px (p10 8.3, p90 10.7; `benchmarks/enhance_examples.py`). One fixed period
# is enough: a noisy sinusoid whose true period is 0.8x-1.25x the assumed one is restored as well
# (tests/test_enhance.py), which covers that spread.
PERIOD_500PPI = 9.5
# The model input's background value (docs/contracts.md: ridges dark on white, 1.0).
BACKGROUND = 1.0


@dataclass(frozen=True, slots=True)
class EnhanceConfig:
    """Orientation field + contextual Gabor filtering (`ifvit_core.enhance.enhance`).

    Every length but `ridge_period` is in ridge periods, so one config scales with the input's
    resolution (`for_downscale`).

    Attributes:
      ridge_period: ridge-to-ridge distance in pixels of the model input (one value for every
        print: a 500-ppi print downscaled by d has period ~9/d).
      gradient_sigma: Gaussian derivative scale of the image gradient.
      orientation_sigma: Gaussian smoothing of the doubled-angle structure tensor.
      num_orientations: Gabor kernels, evenly spaced over [0, pi).
      sigma_along: Gaussian envelope of a Gabor kernel along the ridge (smooths along ridges).
      sigma_across: Gaussian envelope across the ridge (bandwidth around the ridge frequency).
      contrast_sigma: Gaussian window of the local mean / contrast normalisation of the input.
      gain: output = 0.5 + 0.5 tanh(gain * response / rms response of the print's foreground).
    """

    ridge_period: float = PERIOD_500PPI
    gradient_sigma: float = 0.12
    orientation_sigma: float = 1.0
    num_orientations: int = 16
    sigma_along: float = 0.6
    sigma_across: float = 0.4
    contrast_sigma: float = 1.0
    gain: float = 1.5

    def __post_init__(self) -> None:
        checks = {
            "ridge_period": 3.0 <= self.ridge_period <= 30.0,
            "num_orientations": 4 <= self.num_orientations <= 64,
            "gain": 0.0 < self.gain <= 20.0,
            **{k: 0.0 < getattr(self, k) <= 5.0 for k in (
                "gradient_sigma", "orientation_sigma", "sigma_along", "sigma_across",
                "contrast_sigma")},
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError("invalid enhancement settings: "
                             + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad))

    @classmethod
    def for_downscale(cls, downscale: float, **changes: Any) -> EnhanceConfig:
        """Defaults for a 500-ppi print downscaled by `downscale` (period 9.5 / downscale px)."""
        return cls(**{"ridge_period": PERIOD_500PPI / float(downscale), **changes})

    def px(self, periods: float) -> float:
        """A length in ridge periods -> pixels of the model input."""
        return float(periods) * self.ridge_period

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnhanceConfig:
        """Inverse of `to_dict`; raises ValueError on unknown or bad fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown enhancement settings: {', '.join(unknown)}")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {}
        for k, v in d.items():
            cast = int if kinds[k] == "int" else float
            if isinstance(v, bool) or not isinstance(v, (int, float)) or cast(v) != v:
                raise ValueError(f"bad enhancement setting {k}={v!r}: expected {kinds[k]}")
            values[k] = cast(v)
        return cls(**values)
