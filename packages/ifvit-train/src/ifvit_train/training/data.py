"""The data stage of both trainers: shards -> finger-disjoint split -> Grain datasets.

Training pairs come only from the training fingers; validation uses the held-out fingers, which no
training pair ever shows (their identities are not ArcFace classes either). Module 2 can train on
several shard folders at once (`open_match_data`, `MixedData`): each is split on its own and
gets classes of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_data.augment.corrupt import CorruptionConfig
from ifvit_data.augment.geometric import RotationConfig
from ifvit_data.impression_pairs import ImpressionPairConfig, impression_pair_dataset
from ifvit_data.mix import JoinedRecords, module2_mixed_dataset, normalise_weights
from ifvit_data.pipeline import (
    Correspondence,
    MatchPairConfig,
    PairConfig,
    module1_dataset,
    module2_dataset,
)
from ifvit_data.preprocess import CropConfig
from ifvit_data.shards import MANIFEST, RecordSource, ShardError
from ifvit_data.split import Subset, split_by_finger
from ifvit_data.synth.records import SynthDirError, find_synth_dir, synth_correspondence
from ifvit_train.training.config import TrainConfig


class DataFolderError(ValueError):
    """One of several data folders cannot be used; the message starts with the folder."""


@dataclass
class TrainData:
    """Shards split into training and held-out fingers."""

    shard_dir: Path
    source: RecordSource
    train: Subset
    heldout: Subset
    correspondence: Correspondence | None

    @property
    def num_classes(self) -> int:
        """ArcFace classes: the training fingers."""
        return int(len(np.unique(self.train.fingers)))

    def summary(self) -> dict[str, Any]:
        """What the bundle records about its training data."""
        m = (self.shard_dir / MANIFEST).read_bytes()
        return {
            "shards": str(self.shard_dir.resolve()),
            "manifest_sha256": hashlib.sha256(m).hexdigest(),
            "records": len(self.source),
            "train_records": len(self.train),
            "train_fingers": self.num_classes,
            "heldout_fingers": sorted(int(f) for f in np.unique(self.heldout.fingers)),
            "exact_impression_correspondences": self.correspondence is not None,
        }


@dataclass
class MixedData:
    """Several shard folders for one Module 2 run, each split finger-disjointly on its own.

    Folder `f`'s training fingers are ArcFace classes `offsets[f] ... offsets[f+1]-1` (in sorted
    finger order); `heldout` joins every folder's held-out fingers into one record view with
    disjoint finger ids (`ifvit_data.mix.JoinedRecords`) for validation.

    Attributes:
      parts: one `TrainData` per folder, in --data order.
      weights: normalised probability that a training pair comes from each folder.
    """

    parts: list[TrainData]
    weights: tuple[float, ...]
    heldout: JoinedRecords = field(init=False)

    def __post_init__(self) -> None:
        self.heldout = JoinedRecords([p.heldout for p in self.parts])

    @property
    def num_classes(self) -> int:
        """ArcFace classes: the training fingers of every folder."""
        return sum(p.num_classes for p in self.parts)

    @property
    def offsets(self) -> np.ndarray:
        """int `[F + 1]`: first class of each folder, then the number of classes."""
        return np.concatenate([[0], np.cumsum([p.num_classes for p in self.parts])])

    def summary(self) -> dict[str, Any]:
        """What the bundle records: per folder (name only, no machine path) its manifest hash,
        records, fingers, mix weight and exact correspondences; `manifest_sha256` hashes the
        folders' hashes and weights in order (what a resume compares)."""
        folders = []
        for part, w in zip(self.parts, self.weights, strict=True):
            one = part.summary()
            folders.append({"name": part.shard_dir.resolve().name, "mix_weight": w,
                            **{k: v for k, v in one.items() if k != "shards"}})
        key = "".join(f"{f['manifest_sha256']} {f['mix_weight']!r}\n" for f in folders)
        return {
            "shards": [f["name"] for f in folders],
            "manifest_sha256": hashlib.sha256(key.encode()).hexdigest(),
            "records": sum(f["records"] for f in folders),
            "train_records": sum(f["train_records"] for f in folders),
            "train_fingers": self.num_classes,
            "heldout_fingers": [f["heldout_fingers"] for f in folders],
            "exact_impression_correspondences": [
                f["exact_impression_correspondences"] for f in folders],
            "folders": folders,
        }


def open_data(shard_dir: str | Path, tc: TrainConfig) -> TrainData:
    """Opens shards and splits them by finger (seeded by `tc.seed`).

    If the shards were ingested from an `ifvit synth` folder that is still in place, genuine
    Module 2 pairs of two different impressions get the generator's exact correspondences.
    """
    shard_dir = Path(shard_dir)
    source = RecordSource(shard_dir)
    train, held = split_by_finger(source, tc.holdout, seed=tc.seed)
    corr = None
    synth_dir = find_synth_dir(shard_dir)
    if synth_dir is not None:
        try:
            corr = synth_correspondence(synth_dir)
        except SynthDirError:  # e.g. made by another generator version: no exact maps, not an error
            corr = None
    return TrainData(shard_dir, source, train, held, corr)


def open_match_data(shard_dirs: str | Path | Sequence[str | Path], tc: TrainConfig,
                    mix: Sequence[float] | None = None) -> TrainData | MixedData:
    """One folder: `open_data` (mix ignored). Several: `MixedData` with weights `mix` (one
    non-negative weight per folder, normalised; default: proportional to each folder's training
    records). Raises DataFolderError naming the folder (given twice, too few fingers to split or
    for impostor pairs), ValueError for bad weights."""
    dirs = [shard_dirs] if isinstance(shard_dirs, (str, Path)) else [Path(d) for d in shard_dirs]
    if mix is not None:
        normalise_weights(mix, len(dirs))
    if len(dirs) == 1:
        return open_data(dirs[0], tc)
    seen: set[Path] = set()
    for d in dirs:
        if Path(d).resolve() in seen:
            raise DataFolderError(f"{d}: given twice as a data folder; give each folder once")
        seen.add(Path(d).resolve())
    parts = []
    for d in dirs:
        try:
            part = open_data(d, tc)
        except ShardError:  # names its file already
            raise
        except ValueError as e:  # e.g. too few fingers to split
            raise DataFolderError(f"{d}: {e}") from None
        if part.num_classes < 2:
            raise DataFolderError(f"{d}: {part.num_classes} training finger(s); every data folder "
                             "needs >= 2 (impostor pairs come from the anchor's own folder)")
        parts.append(part)
    weights = normalise_weights(mix if mix is not None else [len(p.train) for p in parts],
                                len(parts))
    return MixedData(parts, weights)


def pair_config(tc: TrainConfig, size: int) -> PairConfig:
    """Corrupted-copy pairs: a jittered window of `size`, rotation/translation from `tc`."""
    return PairConfig(
        crop=CropConfig(size=(size, size), downscale=tc.input_downscale, jitter=16.0),
        corruption=CorruptionConfig(rotation=RotationConfig(max_angle=tc.max_rotation,
                                                            max_translation=tc.max_translation)),
    )


def dense_dataset(records: Any, tc: TrainConfig, size: int, *, seed: int, shard_index: int = 0,
                  shard_count: int = 1, correspondence: Correspondence | None = None):
    """Endless Module 1 batches of `records` (process-local slice of the global batch).

    With `correspondence` (shards from an `ifvit synth` folder) and `tc.impression_pairs > 0`, that
    fraction of the pairs are two *different* impressions of a finger with the generator's exact
    ground truth (partial overlap, plastic distortion); the rest are corrupted copies.
    """
    kw = dict(seed=seed, batch_size=tc.batch_size // shard_count, num_epochs=None,
              shard_index=shard_index, shard_count=shard_count)
    if correspondence is not None and tc.impression_pairs > 0:
        cfg = ImpressionPairConfig(pair=pair_config(tc, size),
                                   copy_fraction=1.0 - tc.impression_pairs)
        return impression_pair_dataset(records, correspondence, cfg, **kw)
    return module1_dataset(records, pair_config(tc, size), **kw)


def match_dataset(data: TrainData | MixedData, tc: TrainConfig, size: int, *,
                  shard_index: int = 0, shard_count: int = 1):
    """Endless Module 2 batches of the training fingers (genuine ratio from `tc`).

    `MixedData`: each pair comes from folder f with probability `data.weights[f]` (drawn per
    pair, seeded by `tc.seed`); its genuine partner, its impostor partner (the anchor's own
    folder) and its exact correspondences (a synth folder's) all come from that folder.
    """
    cfg = MatchPairConfig(pair=pair_config(tc, size), genuine_ratio=tc.genuine_ratio,
                        synthetic_fraction=tc.synthetic_fraction)
    if isinstance(data, MixedData):
        return module2_mixed_dataset(
            [p.train for p in data.parts], cfg, data.weights, seed=tc.seed,
            batch_size=tc.batch_size // shard_count, shard_index=shard_index,
            shard_count=shard_count, correspondences=[p.correspondence for p in data.parts])
    return module2_dataset(data.train, cfg, seed=tc.seed, batch_size=tc.batch_size // shard_count,
                           num_epochs=None, shard_index=shard_index, shard_count=shard_count,
                           correspondence=data.correspondence)
