"""Shared fixtures of ifvit-train's tests: a tiny synthetic shard folder (made here, no downloads)
and the tiny Module 1 + Module 2 bundles trained on it."""

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


@pytest.fixture(scope="session")
def tiny_bundle(tiny_shards, tmp_path_factory):
    """`tiny` Module 1 (`dense/`) then Module 2 (`match/`) bundles, 2 steps each on tiny_shards.

    Shared by the tests that need a trained bundle: read it, never write into it."""
    from ifvit_core import config
    from ifvit_train.config import TrainConfig
    from ifvit_train.run import train_dense, train_match

    root = tmp_path_factory.mktemp("bundle")
    tc = TrainConfig(steps=2, batch_size=8, warmup_steps=1, validate_every=0, val_pairs=8,
                     val_prints=8, holdout=0.4, checkpoint_every=2)
    quiet = lambda s: None
    train_dense(tiny_shards, root / "dense", config.tiny(), tc, log=quiet, progress=False)
    train_match(tiny_shards, root / "match", root / "dense", tc, log=quiet, progress=False)
    return root
