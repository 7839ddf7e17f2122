"""Grain pipelines: Module-1 pairs, Module-2 pairs, evaluation pairs (numpy dict batches, no JAX).

Every random choice comes from the per-record `np.random.Generator` that Grain's `random_map`
derives from (seed, index, epoch), so a seed fixes the whole stream, independently of thread or
process counts.
Datasets are `grain.MapDataset`s: `source -> seed -> EpochShuffle -> random_map -> slice(process)
-> repeat -> batch`; iterate them with `make_iterator`, whose `get_state()` / `set_state()` resume
exactly.
Multi-host: pass `shard_index=jax.process_index()` and `shard_count=jax.process_count()` as ints
(this package does not import JAX); the slices are disjoint and cover the dataset, and the k-th
element of the global stream is identical whatever the process count.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grain
import numpy as np

from ifvit_data.augment.corrupt import CorruptionConfig, corrupt_and_rotate
from ifvit_data.augment.geometric import fit_affine, warp_affine
from ifvit_data.augment.perlin import NoiseBank
from ifvit_data.foreground import foreground_mask
from ifvit_data.groundtruth import (
    PointMap,
    affine_maps,
    coarse_ground_truth,
    compose,
    empty_ground_truth,
)
from ifvit_data.preprocess import CropConfig, crop_print
from ifvit_data.shuffle import EpochShuffle

Correspondence = Callable[[dict[str, Any], dict[str, Any]], tuple[PointMap, PointMap] | None]
"""`(record_a, record_b) -> (forward a->b, backward b->a)` in stored-image pixels, or None if
unknown."""

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)


@dataclass(frozen=True)
class PairConfig:
    """Module-1 pair generation.

    Attributes:
      crop: window size / downscale / jitter of image 0.
      corruption: the corruption + rotation model producing image 1.
      stride: coarse stride of the ground truth.
      noise_bank: number of precomputed Perlin tiles per worker (0 = fresh noise per image).
      noise_bank_seed: seed of the tile bank (the same in every worker).
    """

    crop: CropConfig = field(default_factory=CropConfig)
    corruption: CorruptionConfig = field(default_factory=CorruptionConfig)
    stride: int = 8
    noise_bank: int = 64
    noise_bank_seed: int = 0


def _to_input(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)[..., None]


def synthetic_pair(
    window: np.ndarray,
    cfg: PairConfig,
    rng: np.random.Generator,
    bank: NoiseBank | None = None,
    mask0: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """A corrupted, rotated copy of a window with exact ground truth (the Module-1 training pair).

    Args:
      window: float32 `[H, W]` in [0, 1], H and W multiples of the stride.
      cfg: pair configuration.
      rng: the per-record generator.
      bank: optional Perlin tile bank.
      mask0: bool `[H, W]` foreground of the window (computed from it when None).

    Returns:
      `image0`, `image1` float32 `[H, W, 1]`, `mask0`, `mask1` bool `[H, W]` foregrounds, the GT
      keys (`L = (H/8)(W/8)`), `transform` float32 `[2, 3]`.
    """
    image1, a, _ = corrupt_and_rotate(window, cfg.corruption, rng, bank)
    if mask0 is None:
        mask0 = foreground_mask(window)
    mask1 = warp_affine(mask0.view(np.uint8), a, fill=0, nearest=True).view(bool)
    fwd, bwd = affine_maps(a)
    gt = coarse_ground_truth(fwd, bwd, window.shape, image1.shape, mask0, mask1, cfg.stride)
    return {
        "image0": _to_input(window),
        "image1": _to_input(image1),
        "mask0": np.ascontiguousarray(mask0, bool),
        "mask1": np.ascontiguousarray(mask1, bool),
        **gt,
        "transform": a.astype(np.float32),
    }


class _BankMixin:
    """Lazily builds the per-worker noise bank (deterministic: the same tiles in every worker)."""

    _cfg: PairConfig
    _bank: NoiseBank | None = None

    def bank(self) -> NoiseBank | None:
        if self._cfg.noise_bank <= 0:
            return None
        if self._bank is None:
            h, w = self._cfg.crop.size
            self._bank = NoiseBank(
                (2 * h, 2 * w),
                self._cfg.corruption.noise,
                self._cfg.noise_bank,
                self._cfg.noise_bank_seed,
            )
        return self._bank

    def __getstate__(self) -> dict[str, Any]:  # do not ship the bank to worker processes
        return {**self.__dict__, "_bank": None}


class Module1Transform(_BankMixin, grain.transforms.RandomMap):
    """record -> Module-1 pair (crop around the foreground, corrupted + rotated copy, exact GT)."""

    def __init__(self, cfg: PairConfig):
        self._cfg = cfg
        self._bank = None

    def random_map(self, record: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        window, _, mask = crop_print(record["image"], self._cfg.crop, rng)
        return synthetic_pair(window, self._cfg, rng, self.bank(), mask)


@dataclass(frozen=True)
class MatchPairConfig:
    """Module-2 pair sampling.

    Attributes:
      pair: crop / corruption / stride / noise settings (shared with Module 1).
      genuine_ratio: probability that a pair is genuine.
      synthetic_fraction: probability that a genuine pair is a corrupted, rotated copy of the anchor
        (exact GT for L_D, SPEC §8.9) rather than another impression of the same finger.
    """

    pair: PairConfig = field(default_factory=PairConfig)
    genuine_ratio: float = 0.5
    synthetic_fraction: float = 0.0


def dense_labels(fingers: np.ndarray) -> np.ndarray:
    """Dense 0..C-1 class per record from arbitrary finger ids (sorted order), int32 `[N]`."""
    return np.unique(np.asarray(fingers), return_inverse=True)[1].astype(np.int32)


class Module2Transform(_BankMixin, grain.transforms.RandomMap):
    """anchor record -> genuine or impostor pair with identity labels.

    A genuine pair is either a synthetic copy of the anchor (probability `synthetic_fraction`, or
    always when the finger has a single impression) with exact GT, or another impression of the same
    finger. Two real impressions have no known correspondence: `gt_valid` is all False and
    `transform` the identity, unless `correspondence` returns point maps for the two records (e.g.
    the synthetic generator's `correspondence`), which are carried into the crop windows. Impostor
    pairs (another finger, uniformly) have no GT.

    Args:
      source: random-access records (e.g. `RecordSource`) with `fingers` / `impressions` arrays.
      cfg: sampling configuration.
      correspondence: optional point maps between two records in stored-image coordinates.
    """

    def __init__(
        self, source: Any, cfg: MatchPairConfig, correspondence: Correspondence | None = None
    ):
        self._source = source
        self._cfg = cfg.pair
        self._m2 = cfg
        self._corr = correspondence
        self._bank = None
        fingers = np.asarray(source.fingers)
        self._labels = dense_labels(fingers)
        if self._labels.max(initial=0) < 1:
            raise ValueError("Module-2 pairs need at least two fingers for impostors")
        self._members = [
            np.flatnonzero(self._labels == c) for c in range(int(self._labels.max()) + 1)
        ]

    def random_map(self, record: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = int(record["index"])
        label = int(self._labels[idx])
        cfg = self._cfg
        window0, c0, mask0 = crop_print(record["image"], cfg.crop, rng)
        genuine = rng.random() < self._m2.genuine_ratio
        others = self._members[label][self._members[label] != idx]
        if genuine and (len(others) == 0 or rng.random() < self._m2.synthetic_fraction):
            out = synthetic_pair(window0, cfg, rng, self.bank(), mask0)
            return {
                **out,
                "label0": np.int32(label),
                "label1": np.int32(label),
                "is_genuine": np.int32(1),
            }
        if genuine:
            j = int(others[rng.integers(len(others))])
        else:
            j = int(rng.integers(len(self._labels)))
            while self._labels[j] == label:  # rejection: uniform over records of other fingers
                j = int(rng.integers(len(self._labels)))
        other = self._source[j]
        window1, c1, mask1 = crop_print(other["image"], cfg.crop, rng)
        gt = empty_ground_truth(window0.shape, cfg.stride)
        transform = IDENTITY.copy()
        maps = self._corr(record, other) if (genuine and self._corr is not None) else None
        if maps is not None:
            c0_fwd, c0_bwd = affine_maps(c0)
            c1_fwd, c1_bwd = affine_maps(c1)
            fwd = compose(c0_bwd, maps[0], c1_fwd)
            bwd = compose(c1_bwd, maps[1], c0_fwd)
            gt = coarse_ground_truth(
                fwd, bwd, window0.shape, window1.shape, mask0, mask1, cfg.stride
            )
            k = int(gt["gt_valid"].sum())
            transform = fit_affine(gt["gt_pts0"][:k], gt["gt_pts1"][:k])
        return {
            "image0": _to_input(window0),
            "image1": _to_input(window1),
            "mask0": np.ascontiguousarray(mask0, bool),
            "mask1": np.ascontiguousarray(mask1, bool),
            **gt,
            "transform": transform,
            "label0": np.int32(label),
            "label1": np.int32(self._labels[j]),
            "is_genuine": np.int32(genuine),
        }


class EvalPairSource(grain.sources.RandomAccessDataSource):
    """Pairs of records for evaluation: element `k` is `(source[pairs[k, 0]], source[pairs[k, 1]])`.

    Args:
      source: random-access records.
      pairs: int `[P, 2]` record indices (see `ifvit_data.protocol`).
      is_genuine: int `[P]`.
      crop: how each print becomes a fixed-size input (no jitter: deterministic).
    """

    def __init__(self, source: Any, pairs: np.ndarray, is_genuine: np.ndarray, crop: CropConfig):
        if crop.jitter:
            raise ValueError("evaluation crops must be deterministic (jitter=0)")
        self._source, self._pairs, self._gen, self._crop = (
            source,
            np.asarray(pairs),
            np.asarray(is_genuine),
            crop,
        )

    def __len__(self) -> int:
        return len(self._pairs)

    def __getitem__(self, k: int) -> dict[str, np.ndarray]:
        a, b = (int(v) for v in self._pairs[int(k)])
        w0, _, m0 = crop_print(self._source[a]["image"], self._crop)
        w1, _, m1 = crop_print(self._source[b]["image"], self._crop)
        return {
            "image0": _to_input(w0),
            "image1": _to_input(w1),
            "mask0": np.ascontiguousarray(m0, bool),
            "mask1": np.ascontiguousarray(m1, bool),
            "key0": np.int32(a),
            "key1": np.int32(b),
            "is_genuine": np.int32(self._gen[int(k)]),
        }


def _finish(
    ds: grain.MapDataset,
    seed: int,
    transform: grain.transforms.RandomMap | None,
    batch_size: int,
    num_epochs: int | None,
    shard_index: int,
    shard_count: int,
    shuffle: bool,
    drop_remainder: bool,
) -> grain.MapDataset:
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index {shard_index} not in [0, {shard_count})")
    if len(ds) < shard_count:
        raise ValueError(f"{len(ds)} elements cannot be split over {shard_count} processes")
    # Shuffle and augment globally, then slice: element k of the global stream is the same whatever
    # the number of processes, and the process slices are disjoint and cover every epoch.
    ds = ds.seed(seed)
    if shuffle:
        ds = EpochShuffle(ds, seed)
    if transform is not None:
        ds = ds.random_map(transform)
    ds = ds[shard_index::shard_count]
    if num_epochs != 1:
        ds = ds.repeat(num_epochs)
    return ds.batch(batch_size, drop_remainder=drop_remainder)


def pair_dataset(
    source: Any,
    transform: grain.transforms.RandomMap,
    *,
    seed: int,
    batch_size: int,
    num_epochs: int | None = 1,
    shard_index: int = 0,
    shard_count: int = 1,
    drop_remainder: bool = True,
) -> grain.MapDataset:
    """Shuffled, per-record-seeded training batches of `transform(record)` (every pair kind).

    `source -> seed -> EpochShuffle -> random_map(transform) -> process slice -> repeat -> batch`.
    """
    return _finish(grain.MapDataset.source(source), seed, transform, batch_size, num_epochs,
                   shard_index, shard_count, True, drop_remainder)


def module1_dataset(
    source: Any,
    cfg: PairConfig,
    *,
    seed: int,
    batch_size: int,
    num_epochs: int | None = 1,
    shard_index: int = 0,
    shard_count: int = 1,
    drop_remainder: bool = True,
) -> grain.MapDataset:
    """Module-1 training batches (keys: `ifvit_data.schema.MODULE1_KEYS`, leading axis `B`).

    Args:
      source: random-access records (`RecordSource` or any sequence of record dicts).
      cfg: pair configuration.
      seed: fixes order and augmentation; each epoch reshuffles and re-augments.
      batch_size: pairs per batch.
      num_epochs: epochs to repeat (None = forever).
      shard_index: this process's index (e.g. `jax.process_index()`, passed as an int).
      shard_count: number of processes.
      drop_remainder: drop a final partial batch.

    Returns:
      A `grain.MapDataset` of batches.
    """
    return pair_dataset(source, Module1Transform(cfg), seed=seed, batch_size=batch_size,
                        num_epochs=num_epochs, shard_index=shard_index, shard_count=shard_count,
                        drop_remainder=drop_remainder)


def module2_dataset(
    source: Any,
    cfg: MatchPairConfig,
    *,
    seed: int,
    batch_size: int,
    num_epochs: int | None = 1,
    shard_index: int = 0,
    shard_count: int = 1,
    correspondence: Correspondence | None = None,
    drop_remainder: bool = True,
) -> grain.MapDataset:
    """Module-2 training batches (keys: `MODULE2_KEYS`); one pair per anchor record per epoch.

    Args:
      source: random-access records with `fingers` / `impressions` arrays (`RecordSource`).
      cfg: sampling configuration.
      seed, batch_size, num_epochs, shard_index, shard_count, drop_remainder: as `module1_dataset`.
      correspondence: optional point maps between genuine records (see `Module2Transform`).

    Returns:
      A `grain.MapDataset` of batches.
    """
    return pair_dataset(source, Module2Transform(source, cfg, correspondence), seed=seed,
                        batch_size=batch_size,
                        num_epochs=num_epochs, shard_index=shard_index, shard_count=shard_count,
                        drop_remainder=drop_remainder)


def eval_dataset(
    source: Any,
    pairs: np.ndarray,
    is_genuine: np.ndarray,
    crop: CropConfig,
    *,
    batch_size: int,
    shard_index: int = 0,
    shard_count: int = 1,
) -> grain.MapDataset:
    """Evaluation batches in pair order (keys: `EVAL_KEYS`); the last batch may be short.

    Args:
      source: random-access records.
      pairs: int `[P, 2]` from `ifvit_data.protocol`.
      is_genuine: int `[P]`.
      crop: deterministic crop configuration.
      batch_size: pairs per batch.
      shard_index, shard_count: process slice (disjoint, complete).

    Returns:
      A `grain.MapDataset` of batches.
    """
    return _finish(
        grain.MapDataset.source(EvalPairSource(source, pairs, is_genuine, crop)),
        0,
        None,
        batch_size,
        1,
        shard_index,
        shard_count,
        False,
        False,
    )


def make_iterator(
    ds: grain.MapDataset, num_threads: int = 2, prefetch: int = 8, num_workers: int = 0
) -> grain.DatasetIterator:
    """A checkpointable iterator with thread prefetch, or worker processes on larger hosts.

    On a 2-core machine threads beat processes for these OpenCV transforms (ENVIRONMENT notes); on
    a 16-core GPU host, `num_workers` processes (Grain `mp_prefetch`) feed faster. Batches are the
    same either way. Worker processes re-import `__main__`, so a script that uses them must keep its
    module-level work under `if __name__ == "__main__":`.

    Args:
      ds: a dataset from this module.
      num_threads: reader threads (the output does not depend on it).
      prefetch: elements buffered ahead.
      num_workers: worker processes; 0 = none (threads only).

    Returns:
      A `grain.DatasetIterator`; `get_state()` / `set_state()` resume exactly.
    """
    opts = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
    it_ds = ds.to_iter_dataset(opts)
    if num_workers > 0:
        from absl import flags

        # Grain reads absl flags when it starts workers; a program that never ran absl.app would
        # fail with UnparsedFlagAccessError. Parse an empty command line (keeps any real flags).
        if not flags.FLAGS.is_parsed():
            flags.FLAGS(sys.argv[:1], known_only=True)
        it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return iter(it_ds)
