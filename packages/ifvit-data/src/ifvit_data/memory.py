"""An in-memory record source (synthetic data, tests) with the same interface as `RecordSource`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grain
import numpy as np


class MemorySource(grain.sources.RandomAccessDataSource):
    """Random access to a list of record dicts (`image` uint8 `[H, W]`, `finger`, `impression`,
    ...).

    Args:
      records: the records; each returned copy gets an `index` key.

    Attributes:
      fingers: int64 `[N]` finger id per record.
      impressions: int64 `[N]` impression number per record.
    """

    def __init__(self, records: Sequence[dict[str, Any]]):
        self._records = list(records)
        self.fingers = np.asarray([r["finger"] for r in self._records], dtype=np.int64)
        self.impressions = np.asarray([r["impression"] for r in self._records], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self._records[int(index)], "index": int(index)}
