"""The Module-1 corruption model (SPEC §4.2): one of {noise, dryness, pressure} uniformly, then a
rotation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ifvit_data.augment.geometric import RotationConfig, random_rotation, warp_affine
from ifvit_data.augment.morphology import MorphologyConfig, dryness, pressure, random_params
from ifvit_data.augment.perlin import NoiseBank, PerlinConfig, add_noise, perlin_noise

CORRUPTIONS: tuple[str, ...] = ("noise", "dryness", "pressure")


@dataclass(frozen=True)
class CorruptionConfig:
    """All parameters of the corruption model.

    Attributes:
      noise: Perlin sensor-noise ranges.
      morphology: dryness / pressure ranges.
      rotation: rotation / translation ranges.
      kinds: the corruptions to choose from (uniformly); a subset of `CORRUPTIONS`.
    """

    noise: PerlinConfig = field(default_factory=PerlinConfig)
    morphology: MorphologyConfig = field(default_factory=MorphologyConfig)
    rotation: RotationConfig = field(default_factory=RotationConfig)
    kinds: tuple[str, ...] = CORRUPTIONS


def corrupt(
    image: np.ndarray,
    kind: str,
    cfg: CorruptionConfig,
    rng: np.random.Generator,
    bank: NoiseBank | None = None,
) -> np.ndarray:
    """Applies one photometric corruption.

    Args:
      image: float32 `[H, W]` in [0, 1].
      kind: one of `CORRUPTIONS`.
      cfg: parameters.
      rng: the per-record generator.
      bank: optional precomputed noise tiles (fast path); fresh Perlin noise otherwise.

    Returns:
      float32 `[H, W]` in [0, 1].
    """
    if kind == "noise":
        amp = rng.uniform(*cfg.noise.amplitude)
        if bank is not None:
            n = bank.sample(image.shape, rng)
        else:
            period = rng.uniform(*cfg.noise.period)
            octaves = int(rng.integers(cfg.noise.octaves[0], cfg.noise.octaves[1] + 1))
            n = perlin_noise(image.shape, period, rng, octaves, cfg.noise.persistence)
        return add_noise(image, n, amp)
    if kind in ("dryness", "pressure"):
        k, it = random_params(cfg.morphology, rng)
        return (dryness if kind == "dryness" else pressure)(image, k, it)
    raise ValueError(f"unknown corruption {kind!r}; choose from {CORRUPTIONS}")


def corrupt_and_rotate(
    image: np.ndarray,
    cfg: CorruptionConfig,
    rng: np.random.Generator,
    bank: NoiseBank | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """One corruption (uniform over `cfg.kinds`), then a random rotation about the centre.

    Args:
      image: float32 `[H, W]` in [0, 1].
      cfg: parameters.
      rng: the per-record generator.
      bank: optional noise bank.

    Returns:
      `(image1 float32 [H, W], A float64 [2, 3] forward matrix image -> image1, kind)`.
    """
    kind = cfg.kinds[int(rng.integers(len(cfg.kinds)))]
    out = corrupt(image, kind, cfg, rng, bank)
    a = random_rotation(image.shape, cfg.rotation, rng)
    return warp_affine(out, a, fill=1.0), a, kind
