"""Gradient (Perlin) noise, vectorised in numpy, and a per-worker bank of precomputed noise tiles.

Classic 2-D gradient noise: a lattice of random unit gradient vectors, the dot product of each
corner gradient with the offset to the pixel, blended with the quintic fade `6t^5 - 15t^4 + 10t^3`.
Octaves halve the lattice period and scale the amplitude by `persistence`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def _octave(shape: tuple[int, int], period: float, rng: np.random.Generator) -> np.ndarray:
    """One octave of gradient noise with lattice period `period` px; values in about [-0.71,
    0.71]."""
    h, w = shape
    gh, gw = int(np.ceil(h / period)) + 2, int(np.ceil(w / period)) + 2
    angles = rng.uniform(0.0, 2.0 * np.pi, size=(gh, gw))
    gx, gy = np.cos(angles), np.sin(angles)
    ox, oy = rng.uniform(0.0, 1.0, size=2)  # random lattice phase
    xs = np.arange(w) / period + ox
    ys = np.arange(h) / period + oy
    ix, iy = xs.astype(np.int64), ys.astype(np.int64)
    fx, fy = xs - ix, ys - iy
    X0, Y0 = ix[None, :], iy[:, None]
    FX, FY = fx[None, :], fy[:, None]

    def corner(dx: int, dy: int) -> np.ndarray:
        return gx[Y0 + dy, X0 + dx] * (FX - dx) + gy[Y0 + dy, X0 + dx] * (FY - dy)

    u, v = _fade(FX), _fade(FY)
    top = corner(0, 0) + u * (corner(1, 0) - corner(0, 0))
    bottom = corner(0, 1) + u * (corner(1, 1) - corner(0, 1))
    return top + v * (bottom - top)


def perlin_noise(
    shape: tuple[int, int],
    period: float,
    rng: np.random.Generator,
    octaves: int = 1,
    persistence: float = 0.5,
) -> np.ndarray:
    """Fractal gradient noise.

    Args:
      shape: `(H, W)` of the field.
      period: lattice period of the first octave in pixels (> 1).
      rng: the random generator (gradients and lattice phase).
      octaves: number of octaves (>= 1); octave k has period `period / 2**k`.
      persistence: amplitude ratio between successive octaves.

    Returns:
      float32 `[H, W]` in `[-1, 1]` (scaled by sqrt(2), the bound of one 2-D octave, then clipped).
    """
    if period <= 1.0 or octaves < 1:
        raise ValueError(f"perlin_noise needs period > 1 and octaves >= 1, got {period}, {octaves}")
    total = np.zeros(shape, dtype=np.float64)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        p = period / (2**k)
        if p <= 1.0:
            break
        total += amp * _octave(shape, p, rng)
        norm += amp
        amp *= persistence
    return np.clip(total * (np.sqrt(2.0) / norm), -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class PerlinConfig:
    """Parameter ranges of the sensor-noise corruption (SPEC §4.2).

    Attributes:
      period: `(min, max)` lattice period in pixels of the first octave.
      octaves: `(min, max)` number of octaves, inclusive.
      persistence: amplitude ratio between octaves.
      amplitude: `(min, max)` of `a` in `I' = clip(I + a * n)`, images in [0, 1].
    """

    period: tuple[float, float] = (8.0, 32.0)
    octaves: tuple[int, int] = (1, 4)
    persistence: float = 0.5
    amplitude: tuple[float, float] = (0.1, 0.3)


class NoiseBank:
    """A fixed set of precomputed noise tiles; each call crops one at a random offset.

    Computing fresh Perlin noise per image dominates a 128x128 pipeline; a bank of `count` tiles of
    twice the image size, built once per worker from a fixed `seed`, keeps the output a
    deterministic function of (seed, per-record generator) while costing one crop per image.

    Args:
      tile_shape: `(H, W)` of each tile; crops must be no larger.
      cfg: noise parameters; each tile draws its own period and octave count.
      count: number of tiles.
      seed: seed of the bank (identical in every worker).
    """

    def __init__(
        self, tile_shape: tuple[int, int], cfg: PerlinConfig, count: int = 32, seed: int = 0
    ):
        rng = np.random.default_rng(seed)
        self.tiles = np.stack(
            [
                perlin_noise(
                    tile_shape,
                    float(rng.uniform(*cfg.period)),
                    rng,
                    int(rng.integers(cfg.octaves[0], cfg.octaves[1] + 1)),
                    cfg.persistence,
                )
                for _ in range(count)
            ]
        )

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Returns a float32 `[H, W]` noise field in [-1, 1], a random (flipped) crop of a random
        tile."""
        th, tw = self.tiles.shape[1:]
        h, w = shape
        if h > th or w > tw:
            raise ValueError(f"noise crop {shape} larger than the bank tiles {(th, tw)}")
        k = int(rng.integers(len(self.tiles)))
        y, x = int(rng.integers(th - h + 1)), int(rng.integers(tw - w + 1))
        tile = self.tiles[k, y : y + h, x : x + w]
        return tile if rng.random() < 0.5 else -tile


def add_noise(image: np.ndarray, noise: np.ndarray, amplitude: float) -> np.ndarray:
    """Sensor noise `clip(image + amplitude * noise, 0, 1)`.

    Args:
      image: float32 `[H, W]` in [0, 1].
      noise: float32 `[H, W]` in [-1, 1].
      amplitude: noise amplitude as a fraction of the dynamic range.

    Returns:
      float32 `[H, W]` in [0, 1].
    """
    return np.clip(image + np.float32(amplitude) * noise, 0.0, 1.0).astype(np.float32, copy=False)
