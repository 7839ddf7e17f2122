"""Tests of Module-1 pairs from two impressions of a synthetic finger (impression_pairs)."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from ifvit_data.impression_pairs import (
    ImpressionPairConfig,
    ImpressionPairTransform,
    impression_pair_dataset,
)
from ifvit_data.ingest import ingest
from ifvit_data.pipeline import PairConfig, make_iterator
from ifvit_data.preprocess import CropConfig
from ifvit_data.schema import MODULE1_KEYS, validate_batch
from ifvit_data.shards import RecordSource
from ifvit_data.synth import SynthConfig, generate_dataset, sample_field, synth_correspondence

CFG = SynthConfig(size=(192, 176), master_size=(288, 240), contact_shift_px=20.0,
                  max_translation_px=15.0)
PAIR = PairConfig(crop=CropConfig(size=(96, 96), jitter=4.0))


@pytest.fixture(scope="module")
def synth_source(tmp_path_factory) -> tuple[RecordSource, object]:
    root = tmp_path_factory.mktemp("impression_pairs")
    generate_dataset(root / "synth", 3, 3, 11, CFG, workers=1)
    ingest(root / "synth", "fvc", root / "shards")
    return RecordSource(root / "shards"), synth_correspondence(root / "synth")


def _gt_patch_ncc(out: dict, perm: np.ndarray | None = None, half: int = 4) -> np.ndarray:
    """NCC of image0 patches at gt_pts0 and image1 at gt_pts1 (patch turned by `transform`).

    With `perm`, image1 is sampled at permuted gt_pts1 (wrong matches).
    """
    k = int(out["gt_valid"].sum())
    p0, p1 = out["gt_pts0"][:k].astype(np.float64), out["gt_pts1"][:k].astype(np.float64)
    if perm is not None:
        p1 = p1[perm[:k] % k]
    lin = out["transform"][:, :2].astype(np.float64)
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    off = np.stack([dx.ravel(), dy.ravel()], axis=1).astype(np.float64)
    im0, im1 = out["image0"], out["image1"]
    res = []
    for a, b in zip(p0, p1, strict=True):
        va = sample_field(im0, a + off)[:, 0]
        vb = sample_field(im1, b + off @ lin.T)[:, 0]
        if not (np.isfinite(va).all() and np.isfinite(vb).all()):
            continue
        va, vb = va - va.mean(), vb - vb.mean()
        den = np.sqrt((va * va).sum() * (vb * vb).sum())
        if den > 1e-6:
            res.append(float((va * vb).sum() / den))
    return np.asarray(res)


@pytest.mark.parametrize("corrupt_second", [False, True])
def test_ground_truth_is_exact(synth_source, corrupt_second: bool) -> None:
    """Patches at GT matches agree (they show the same skin); patches at shuffled matches do not."""
    src, corr = synth_source
    cfg = ImpressionPairConfig(PAIR, corrupt_second=corrupt_second)
    t = ImpressionPairTransform(src, corr, cfg)
    good, bad = [], []
    for i in range(len(src)):
        same = np.flatnonzero(src.fingers == src.fingers[i])
        j = int(same[(list(same).index(i) + 1) % len(same)])
        rng = np.random.default_rng(100 + i)
        out = t.impression_pair(src[i], src[j], rng)
        assert out is not None
        validate_batch(out, "module1", batched=False)
        assert int(out["gt_valid"].sum()) >= cfg.min_valid
        perm = np.random.default_rng(i).permutation(len(out["gt_valid"]))
        good.append(_gt_patch_ncc(out))
        bad.append(_gt_patch_ncc(out, perm))
    good, bad = np.concatenate(good), np.concatenate(bad)
    assert len(good) > 200
    assert np.median(good) > (0.5 if not corrupt_second else 0.35), np.median(good)
    assert abs(np.median(bad)) < 0.15, np.median(bad)


def test_determinism_and_dataset(synth_source) -> None:
    src, corr = synth_source
    cfg = ImpressionPairConfig(PAIR, copy_fraction=0.3)

    def first_batches(seed: int) -> list[dict]:
        ds = impression_pair_dataset(src, corr, cfg, seed=seed, batch_size=3, num_epochs=1)
        return list(make_iterator(ds, num_threads=2))

    a, b, c = first_batches(3), first_batches(3), first_batches(4)
    assert len(a) == 3
    for x, y in zip(a, b, strict=True):
        validate_batch(x, "module1")
        assert set(x) == set(MODULE1_KEYS)
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
    assert any(not np.array_equal(x["image1"], z["image1"]) for x, z in zip(a, c, strict=True))
    # the transform pickles without its caches (Grain worker processes)
    t = ImpressionPairTransform(src, corr, cfg)
    rec = src[0]
    one = t.random_map(rec, np.random.default_rng(7))
    clone = pickle.loads(pickle.dumps(t))
    two = clone.random_map(rec, np.random.default_rng(7))
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])


def _is_copy_pair(out: dict) -> bool:
    """A corrupted copy's transform is an exact rotation; an impression pair's a fitted affine."""
    lin = out["transform"][:, :2].astype(np.float64)
    return bool(np.abs(lin.T @ lin - np.eye(2)).max() < 1e-5)


def test_copy_fraction_and_fallbacks(synth_source) -> None:
    src, corr = synth_source
    kinds = {}
    for frac in (0.0, 0.5, 1.0):
        t = ImpressionPairTransform(src, corr, ImpressionPairConfig(PAIR, copy_fraction=frac))
        kinds[frac] = [
            _is_copy_pair(t.random_map(src[i % len(src)], np.random.default_rng(i)))
            for i in range(36)
        ]
    assert not any(kinds[0.0]) and all(kinds[1.0])
    assert 8 <= sum(kinds[0.5]) <= 28, sum(kinds[0.5])
    # no correspondence known -> the corrupted-copy pair
    t = ImpressionPairTransform(src, lambda a, b: None, ImpressionPairConfig(PAIR))
    assert _is_copy_pair(t.random_map(src[0], np.random.default_rng(0)))
    # an overlap threshold no pair can meet -> the corrupted-copy pair
    strict = dataclasses.replace(ImpressionPairConfig(PAIR), min_valid=10_000)
    t = ImpressionPairTransform(src, corr, strict)
    assert _is_copy_pair(t.random_map(src[0], np.random.default_rng(0)))
    with pytest.raises(ValueError, match="copy_fraction"):
        ImpressionPairConfig(PAIR, copy_fraction=1.5)
