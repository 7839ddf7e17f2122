"""The data stage of both trainers: shards -> finger-disjoint split -> Grain datasets.

Training pairs come only from the training fingers; validation uses the held-out fingers, which no
training pair ever shows (their identities are not ArcFace classes either).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_data.augment.corrupt import CorruptionConfig
from ifvit_data.augment.geometric import RotationConfig
from ifvit_data.impression_pairs import ImpressionPairConfig, impression_pair_dataset
from ifvit_data.pipeline import (
    Correspondence,
    Module1Config,
    Module2Config,
    module1_dataset,
    module2_dataset,
)
from ifvit_data.preprocess import CropConfig
from ifvit_data.shards import MANIFEST, RecordSource
from ifvit_data.split import Subset, split_by_finger
from ifvit_data.synth.records import SynthDirError, find_synth_dir, synth_correspondence
from ifvit_train.config import TrainConfig


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


def pair_config(tc: TrainConfig, size: int) -> Module1Config:
    """Corrupted-copy pairs: a jittered window of `size`, rotation/translation from `tc`."""
    return Module1Config(
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


def match_dataset(data: TrainData, tc: TrainConfig, size: int, *, shard_index: int = 0,
                  shard_count: int = 1):
    """Endless Module 2 batches of the training fingers (genuine ratio from `tc`)."""
    cfg = Module2Config(pair=pair_config(tc, size), genuine_ratio=tc.genuine_ratio,
                        synthetic_fraction=tc.synthetic_fraction)
    return module2_dataset(data.train, cfg, seed=tc.seed, batch_size=tc.batch_size // shard_count,
                           num_epochs=None, shard_index=shard_index, shard_count=shard_count,
                           correspondence=data.correspondence)
