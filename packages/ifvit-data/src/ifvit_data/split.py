"""Finger-disjoint train / validation splits of a record source (no identity leaks across them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Subset:
    """A random-access view of some records of a source, renumbered 0..n-1.

    Grain transforms that sample partners (`Module2Transform`) index the source by the record's
    `index`, so a subset's records carry their position *in the subset*; `source_index` keeps the
    position in the underlying source.

    Attributes:
      fingers, impressions: int64 `[n]` of the selected records (no decoding).
      indices: int64 `[n]` positions in the underlying source.
    """

    def __init__(self, source: Any, indices: Sequence[int]):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.fingers = np.asarray(source.fingers)[self.indices]
        self.impressions = np.asarray(source.impressions)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, Any]:
        rec = dict(self.source[int(self.indices[int(k)])])
        rec["source_index"] = int(self.indices[int(k)])
        rec["index"] = int(k)
        return rec

    def __getitems__(self, ks: Sequence[int]) -> list[dict[str, Any]]:
        return [self[k] for k in ks]


def split_by_finger(
    source: Any, holdout: float | int, seed: int = 0
) -> tuple[Subset, Subset]:
    """Splits a source into (train, held-out) subsets with disjoint fingers.

    Args:
      source: records with a `fingers` array (e.g. `RecordSource`).
      holdout: fraction of fingers (0 < f < 1) or a count (a whole number >= 1) held out.
      seed: which fingers are held out (a seeded permutation of the sorted finger ids).

    Raises:
      ValueError: fewer than 2 fingers, or a holdout that leaves no training or no held-out finger.
    """
    fingers = np.asarray(source.fingers)
    uniq = np.unique(fingers)
    if len(uniq) < 2:
        raise ValueError(f"need at least 2 fingers to split, the data has {len(uniq)}")
    if not isinstance(holdout, bool) and holdout >= 1 and float(holdout).is_integer():
        n_hold = int(holdout)
    elif 0.0 < float(holdout) < 1.0:
        n_hold = max(1, int(round(float(holdout) * len(uniq))))
    else:
        raise ValueError(f"holdout must be a fraction in (0, 1) or a count >= 1, got {holdout}")
    if n_hold >= len(uniq):
        raise ValueError(f"holding out {n_hold} of {len(uniq)} fingers leaves none for training")
    held = set(np.random.default_rng(seed).permutation(uniq)[:n_hold].tolist())
    is_held = np.isin(fingers, list(held))
    return Subset(source, np.flatnonzero(~is_held)), Subset(source, np.flatnonzero(is_held))
