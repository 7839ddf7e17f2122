"""Deterministic random streams: every draw depends only on (seed, finger, impression, stage)."""

from __future__ import annotations

import numpy as np

#: Stage tags, so that stages of one finger/impression use independent streams.
STAGE_MASTER = 1
STAGE_IMPRESSION = 2
STAGE_CLASS = 3


def make_rng(seed: int, finger: int, impression: int, stage: int) -> np.random.Generator:
    """A generator seeded from `SeedSequence([seed, finger, impression, stage])` (never global RNG).

    Args:
        seed: Dataset seed (non-negative).
        finger: Finger identifier (non-negative).
        impression: Impression identifier (0 for the master).
        stage: One of the `STAGE_*` tags.

    Returns:
        A fresh `numpy.random.Generator` (PCG64).
    """
    for name, v in (("seed", seed), ("finger", finger), ("impression", impression)):
        if int(v) < 0:
            raise ValueError(f"{name} must be non-negative, got {v}")
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), int(finger), int(impression), int(stage)])
    )
