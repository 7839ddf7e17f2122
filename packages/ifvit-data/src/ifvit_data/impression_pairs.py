"""Module-1 pairs from two different impressions of one finger, with exact ground truth.

The classic Module-1 pair is a crop and a corrupted, rotated copy of it
(`pipeline.Module1Transform`): its ground truth is an affine map. Two impressions of one synthetic
finger differ the way real captures do (partial overlap, plastic distortion, moisture, placement),
and the generator knows their exact point-to-point map
(`ifvit_data.synth.records.synth_correspondence`). This transform crops both impressions with
`preprocess.crop_print`, carries the map into the two windows (and through an optional corruption +
rotation of the second), and computes coarse ground truth with `groundtruth.coarse_ground_truth`,
exactly as `pipeline.Module2Transform` does for genuine pairs.

    corr = synth_correspondence(find_synth_dir(shard_dir))
    ds = impression_pair_dataset(RecordSource(shard_dir), corr, ImpressionPairConfig(),
                                 seed=0, batch_size=8, num_epochs=None)
    batch = next(make_iterator(ds))                  # keys: schema.MODULE1_KEYS
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grain
import numpy as np

from ifvit_data.augment.corrupt import corrupt_and_rotate
from ifvit_data.augment.geometric import fit_affine, warp_affine
from ifvit_data.groundtruth import affine_maps, coarse_ground_truth, compose
from ifvit_data.pipeline import (
    Correspondence,
    Module1Transform,
    PairConfig,
    _to_input,
    dense_labels,
    pair_dataset,
)
from ifvit_data.preprocess import crop_print


@dataclass(frozen=True)
class ImpressionPairConfig:
    """Module-1 pairs from two impressions (or, for a fraction, from one corrupted copy).

    Attributes:
      pair: crop / corruption / stride / noise-bank settings shared with `Module1Transform`.
      copy_fraction: probability of a classic corrupted-copy pair instead of an impression pair.
      corrupt_second: also pass the second impression's window through the corruption + rotation
        model (rotation up to `pair.corruption.rotation.max_angle`), composed into the ground truth.
      min_valid: an impression pair with fewer valid coarse matches is not used; another impression
        of the finger is tried, then a corrupted-copy pair is made instead.
      max_tries: impressions tried per record before that fallback.
    """

    pair: PairConfig = field(default_factory=PairConfig)
    copy_fraction: float = 0.0
    corrupt_second: bool = True
    min_valid: int = 16
    max_tries: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.copy_fraction <= 1.0:
            raise ValueError(f"copy_fraction must be in [0, 1], got {self.copy_fraction}")
        if self.min_valid < 0 or self.max_tries < 1:
            raise ValueError(f"need min_valid >= 0 and max_tries >= 1, got {self}")


class ImpressionPairTransform(Module1Transform):
    """record -> Module-1 pair (keys `schema.MODULE1_KEYS`) from two impressions of its finger.

    For each anchor record: with probability `copy_fraction` the classic pair of
    `Module1Transform`; otherwise another impression of the same finger (uniformly) whose
    correspondence is known, cropped around its foreground, optionally corrupted and rotated, with
    coarse ground truth from the exact point maps (`transform`: the least-squares affine of the
    valid matches). Records whose finger has no other impression, whose correspondence is None, or
    whose pairs overlap in fewer than `min_valid` cells after `max_tries` impressions fall back to
    the corrupted-copy pair. Every random choice uses the per-record generator, so a seed fixes
    the stream.

    Args:
      source: random-access records with `fingers` (`RecordSource`, `MemorySource`).
      correspondence: `(record_a, record_b) -> (forward, backward) | None` in stored-image pixels
        (e.g. `ifvit_data.synth.records.synth_correspondence`).
      cfg: pair configuration.
    """

    def __init__(self, source: Any, correspondence: Correspondence, cfg: ImpressionPairConfig):
        super().__init__(cfg.pair)
        self._source = source
        self._corr = correspondence
        self._ip = cfg
        labels = dense_labels(np.asarray(source.fingers))
        self._labels = labels
        n = int(labels.max(initial=-1)) + 1
        self._members = [np.flatnonzero(labels == c) for c in range(n)]

    def random_map(self, record: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        if rng.random() >= self._ip.copy_fraction:
            idx = int(record["index"])
            others = self._members[int(self._labels[idx])]
            others = others[others != idx]
            for j in rng.permutation(others)[: self._ip.max_tries]:
                out = self.impression_pair(record, self._source[int(j)], rng)
                if out is not None:
                    return out
        return super().random_map(record, rng)

    def impression_pair(
        self, record0: dict[str, Any], record1: dict[str, Any], rng: np.random.Generator
    ) -> dict[str, np.ndarray] | None:
        """The pair (record0 -> record1), or None if unknown or overlapping in < `min_valid` cells.

        Args:
          record0: the anchor record (`image` uint8 `[H, W]`).
          record1: another impression of the same finger.
          rng: generator for the crop jitter and the corruption.

        Returns:
          `image0`, `image1` float32 `[h, w, 1]`, the GT keys, `transform` float32 `[2, 3]`, or
          None.
        """
        maps = self._corr(record0, record1)
        if maps is None:
            return None
        cfg = self._cfg
        window0, c0, mask0 = crop_print(record0["image"], cfg.crop, rng)
        window1, c1, mask1 = crop_print(record1["image"], cfg.crop, rng)
        c0_fwd, c0_bwd = affine_maps(c0)
        c1_fwd, c1_bwd = affine_maps(c1)
        fwd = compose(c0_bwd, maps[0], c1_fwd)
        bwd = compose(c1_bwd, maps[1], c0_fwd)
        image1 = window1
        if self._ip.corrupt_second:
            image1, a, _ = corrupt_and_rotate(window1, cfg.corruption, rng, self.bank())
            mask1 = warp_affine(mask1.view(np.uint8), a, fill=0, nearest=True).view(bool)
            a_fwd, a_bwd = affine_maps(a)
            fwd = compose(fwd, a_fwd)
            bwd = compose(a_bwd, bwd)
        gt = coarse_ground_truth(fwd, bwd, window0.shape, image1.shape, mask0, mask1, cfg.stride)
        k = int(gt["gt_valid"].sum())
        if k < max(self._ip.min_valid, 1):
            return None
        return {
            "image0": _to_input(window0),
            "image1": _to_input(image1),
            "mask0": np.ascontiguousarray(mask0, bool),
            "mask1": np.ascontiguousarray(mask1, bool),
            **gt,
            "transform": fit_affine(gt["gt_pts0"][:k], gt["gt_pts1"][:k]),
        }


def impression_pair_dataset(
    source: Any,
    correspondence: Correspondence,
    cfg: ImpressionPairConfig,
    *,
    seed: int,
    batch_size: int,
    num_epochs: int | None = 1,
    shard_index: int = 0,
    shard_count: int = 1,
    drop_remainder: bool = True,
) -> grain.MapDataset:
    """Module-1 batches of impression pairs (keys `MODULE1_KEYS`); one pair per anchor per epoch.

    Same ordering, seeding and multi-host slicing as `pipeline.module1_dataset`.

    Args:
      source: random-access records with `fingers`.
      correspondence: point maps between records (see `ImpressionPairTransform`).
      cfg: pair configuration.
      seed, batch_size, num_epochs, shard_index, shard_count, drop_remainder: as
        `pipeline.module1_dataset`.

    Returns:
      A `grain.MapDataset` of batches.
    """
    return pair_dataset(source, ImpressionPairTransform(source, correspondence, cfg), seed=seed,
                        batch_size=batch_size, num_epochs=num_epochs, shard_index=shard_index,
                        shard_count=shard_count, drop_remainder=drop_remainder)
