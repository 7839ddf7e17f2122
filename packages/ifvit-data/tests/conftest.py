"""Shared fixtures of the ifvit-data tests: small synthetic ridge images and the real FVC folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# 12 original FVC2002 DB1_B TIFFs kept with the tests (fingers 101-104 x impressions 1-3).
REAL_FVC = Path(__file__).resolve().parent / "data/fvc2002_db1_b"


def make_ridges(h: int = 160, w: int = 144, period: float = 9.0, seed: int = 0) -> np.ndarray:
    """A uint8 `[h, w]` print-like image: curved sinusoidal ridges inside an ellipse, white
    outside."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = w / 2 + rng.uniform(-5, 5), h / 2 + rng.uniform(-5, 5)
    r = np.hypot(x - cx, (y - cy) * 1.3 + 20)
    phase = 2 * np.pi * (r + 6 * np.sin(x / 23.0 + rng.uniform(0, 6))) / period
    ridge = 0.5 + 0.5 * np.cos(phase)
    inside = ((x - cx) / (0.42 * w)) ** 2 + ((y - cy) / (0.45 * h)) ** 2 < 1
    img = np.where(inside, 0.15 + 0.8 * ridge, 1.0)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


@pytest.fixture(name="make_ridges", scope="session")
def make_ridges_fixture() -> Callable[..., np.ndarray]:
    """The `make_ridges` factory (test modules cannot import conftest under importlib mode)."""
    return make_ridges


@pytest.fixture
def real_fvc() -> Path:
    """The folder of real prints: `<finger>_<impression>.tif`, 101..104 x 1..3, 388 x 374 uint8."""
    return REAL_FVC
