"""A per-epoch permutation shuffle for `grain.MapDataset` with O(1) cost per element.

Grain's `MapDataset.shuffle` permutes each index independently with `index_shuffle`, whose cost
grows as the dataset shrinks (measured here: ~0.4 ms per element at 80 elements, 1.5 ms at 18, 4 us
at 25,000), which dominates small evaluation sets and demos. This dataset draws one permutation per
epoch from `np.random.default_rng([seed, epoch])` and caches it: O(N) once per epoch, then a lookup.
The element at global index `epoch * N + i` is `parent[perm_epoch[i] + epoch * N]`, so upstream
random maps still see a distinct index (and generator) per epoch, exactly like Grain's shuffle.
"""

from __future__ import annotations

import threading
from typing import Any

import grain
import numpy as np


class EpochShuffle(grain.MapDataset):
    """Globally shuffles `parent` with a fresh permutation per epoch (deterministic in `seed`).

    Args:
      parent: the dataset to shuffle.
      seed: a non-negative integer.
    """

    def __init__(self, parent: grain.MapDataset, seed: int):
        super().__init__(parent)
        if seed < 0:
            raise ValueError(f"shuffle seed must be >= 0, got {seed}")
        self._seed = int(seed)
        self._lock = threading.Lock()
        self._cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._parent)

    def __str__(self) -> str:
        return f"EpochShuffle(seed={self._seed})"

    def _perm(self, epoch: int) -> np.ndarray:
        cached = self._cache
        if cached is not None and cached[0] == epoch:
            return cached[1]
        perm = np.random.default_rng([self._seed, epoch]).permutation(len(self._parent))
        with self._lock:
            self._cache = (epoch, perm)
        return perm

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.slice(index)
        n = len(self._parent)
        epoch, i = divmod(int(index), n)
        return self._parent[int(self._perm(epoch)[i]) + epoch * n]

    def __getstate__(self) -> dict[str, Any]:  # locks do not pickle (worker processes)
        return {**self.__dict__, "_lock": None, "_cache": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
