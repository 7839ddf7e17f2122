"""Shared fixtures of ifvit-train's tests: a tiny synthetic shard folder (made here, no downloads)."""

import numpy as np
import pytest

from ifvit_data.shards import write_shards


def _print(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A ridge-like uint8 print: oriented cosine ridges on a white background disc."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    theta, f = rng.uniform(0, np.pi), rng.uniform(0.1, 0.13)
    phase = 2 * np.pi * f * (xx * np.cos(theta) + yy * np.sin(theta)) + 0.002 * (xx - size / 2) ** 2
    ridges = 0.5 + 0.5 * np.cos(phase) + 0.1 * rng.standard_normal((size, size))
    disc = np.hypot(xx - size / 2, yy - size / 2) < size * 0.45
    img = np.where(disc, ridges, 1.0)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> str:
    """8 fingers x 2 impressions of synthetic ridge prints as ArrayRecord shards."""
    rng = np.random.default_rng(0)
    records = []
    for f in range(8):
        base = _print(rng)
        for k in range(2):
            img = np.roll(base, shift=(2 * k, -k), axis=(0, 1))
            records.append({"image": img, "subject": f"s{f}", "finger": f, "impression": k + 1,
                            "dpi": 500.0, "source": f"{f}_{k + 1}.png"})
    out = tmp_path_factory.mktemp("shards") / "shards"
    write_shards(records, out, fingerprint="tiny-test-shards")
    return str(out)


@pytest.fixture(scope="session")
def make_print():
    """The `_print(rng, size)` factory (test modules cannot import conftest under importlib mode)."""
    return _print
