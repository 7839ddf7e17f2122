"""Module-2 pairs from several record sources in one stream (e.g. synthetic and real shards).

Each source keeps its own pair sampling (`pipeline.Module2Transform`: genuine partners, impostors
and correspondences all come from the anchor's own source) and its own classes, offset so that two
sources never share one. The stream picks, for every global element `k`, source `f` with
probability `weights[f]` (a generator seeded by `(seed, k // BLOCK)`), then takes element `k` of
that source's endless pair stream: a random-access `grain.MapDataset`, so iterator state resumes
exactly and element `k` is the same whatever the process count.
(`grain.MapDataset.mix` interleaves in a fixed pattern and refuses zero weights; this draws.)

    ds = module2_mixed_dataset([synth.train, real.train], cfg, [0.5, 0.5], seed=0, batch_size=8,
                               correspondences=[corr, None])
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from ifvit_data.pipeline import Correspondence, MatchPairConfig, Module2Transform
from ifvit_data.shuffle import EpochShuffle

BLOCK = 4096  # source choices drawn per generator


def normalise_weights(weights: Sequence[float], n: int) -> tuple[float, ...]:
    """`weights` divided by their sum; ValueError unless n finite, non-negative, not all zero."""
    w = np.asarray([float(x) for x in weights], dtype=np.float64)
    if len(w) != n:
        raise ValueError(f"{len(w)} mix weights for {n} data folders; give one per folder")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"mix weights {list(weights)}: each must be >= 0 and at least one > 0")
    return tuple(float(x) for x in w / w.sum())


class WeightedMix(grain.MapDataset):
    """Element `k` is `parents[f][k]`, `f` drawn with probability `weights[f]` (seeded by `k`).

    Args:
      parents: datasets of equal (usually endless) length.
      weights: one non-negative weight per parent (normalised here; a zero is never drawn).
      seed: a non-negative integer.
    """

    def __init__(self, parents: Sequence[grain.MapDataset], weights: Sequence[float], seed: int):
        super().__init__(list(parents))
        self._cum = np.cumsum(normalise_weights(weights, len(parents)))
        self._seed = int(seed)
        self._lock = threading.Lock()
        self._cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return min(len(p) for p in self._parents)

    def __str__(self) -> str:
        return f"WeightedMix(cumulative={self._cum.tolist()}, seed={self._seed})"

    def choices(self, block: int) -> np.ndarray:
        """int `[BLOCK]`: the source of elements `block * BLOCK ...` (cached, one block)."""
        cached = self._cache
        if cached is not None and cached[0] == block:
            return cached[1]
        u = np.random.default_rng([self._seed, 0x6D6978, block]).random(BLOCK)
        src = np.minimum(np.searchsorted(self._cum, u, side="right"), len(self._cum) - 1)
        with self._lock:
            self._cache = (block, src)
        return src

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.slice(index)
        block, i = divmod(int(index), BLOCK)
        return self._parents[int(self.choices(block)[i])][int(index)]

    def __getstate__(self) -> dict[str, Any]:  # locks do not pickle (worker processes)
        return {**self.__dict__, "_lock": None, "_cache": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class OffsetLabels(grain.transforms.Map):
    """Adds `offset` to a pair's `label0` / `label1` (classes of one source among several)."""

    def __init__(self, offset: int):
        self._offset = int(offset)

    def map(self, pair: dict[str, Any]) -> dict[str, Any]:
        return {**pair, "label0": np.int32(pair["label0"] + self._offset),
                "label1": np.int32(pair["label1"] + self._offset)}


def class_counts(sources: Sequence[Any]) -> list[int]:
    """Classes (distinct fingers) of each source; source `f`'s labels start at the sum before."""
    return [len(np.unique(np.asarray(s.fingers))) for s in sources]


def module2_mixed_dataset(
    sources: Sequence[Any],
    cfg: MatchPairConfig,
    weights: Sequence[float],
    *,
    seed: int,
    batch_size: int,
    shard_index: int = 0,
    shard_count: int = 1,
    correspondences: Sequence[Correspondence | None] | None = None,
    drop_remainder: bool = True,
) -> grain.MapDataset:
    """Endless Module-2 batches (keys: `MODULE2_KEYS`) mixing several sources pair by pair.

    Per source: `source -> seed -> EpochShuffle -> random_map(Module2Transform) -> labels +
    offset -> repeat`; then `WeightedMix -> process slice -> batch`. Impostor partners come from
    the anchor's own source (a pair never crosses sources); labels of source `f` are
    `sum(class_counts[:f]) + 0..class_counts[f]-1`.

    Args:
      sources: random-access records with `fingers` / `impressions` (each >= 2 fingers).
      cfg: sampling configuration, shared by the sources.
      weights: probability (unnormalised) that a pair comes from each source.
      seed, batch_size, shard_index, shard_count, drop_remainder: as `pipeline.module1_dataset`.
      correspondences: per source, optional point maps between its genuine records.
    """
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index {shard_index} not in [0, {shard_count})")
    corrs = list(correspondences) if correspondences is not None else [None] * len(sources)
    if len(corrs) != len(sources):
        raise ValueError(f"{len(corrs)} correspondences for {len(sources)} sources")
    offsets = np.concatenate([[0], np.cumsum(class_counts(sources))])
    parts = []
    for src, corr, off in zip(sources, corrs, offsets, strict=False):
        ds = EpochShuffle(grain.MapDataset.source(src).seed(seed), seed)
        ds = ds.random_map(Module2Transform(src, cfg, corr)).map(OffsetLabels(int(off)))
        parts.append(ds.repeat(None))
    mixed = WeightedMix(parts, weights, seed)  # endless
    return mixed[shard_index::shard_count].batch(batch_size, drop_remainder=drop_remainder)


class JoinedRecords:
    """Several record sources as one, with disjoint finger ids (e.g. every folder's held-out
    fingers for one validation).

    Finger `r`-th smallest of source `p` (of `P`) becomes `r * P + p`: ids interleave the sources,
    so a protocol that takes the first fingers (`heldout_pairs`) draws from all of them.

    Attributes:
      fingers, impressions: int64 `[n]` (new finger ids; impressions unchanged).
      part: int64 `[n]` which source each record comes from.
    """

    def __init__(self, sources: Sequence[Any]):
        self._sources = list(sources)
        n_src = len(self._sources)
        fingers, imps, part, local = [], [], [], []
        for p, s in enumerate(self._sources):
            rank = np.unique(np.asarray(s.fingers), return_inverse=True)[1]
            fingers.append(rank.astype(np.int64) * n_src + p)
            imps.append(np.asarray(s.impressions, np.int64))
            part.append(np.full(len(s), p, np.int64))
            local.append(np.arange(len(s), dtype=np.int64))
        self.fingers = np.concatenate(fingers)
        self.impressions = np.concatenate(imps)
        self.part = np.concatenate(part)
        self._local = np.concatenate(local)

    def __len__(self) -> int:
        return len(self.fingers)

    def __getitem__(self, k: int) -> dict[str, Any]:
        k = int(k)
        rec = dict(self._sources[int(self.part[k])][int(self._local[k])])
        rec.update(index=k, finger=int(self.fingers[k]), part=int(self.part[k]))
        return rec

    def __getitems__(self, ks: Sequence[int]) -> list[dict[str, Any]]:
        return [self[k] for k in ks]
