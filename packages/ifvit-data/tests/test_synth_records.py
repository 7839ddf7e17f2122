"""Tests of the record-based synth correspondence (ifvit_data.synth.records) on ingested shards."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from ifvit_data.ingest import ingest
from ifvit_data.shards import RecordSource
from ifvit_data.synth import (
    SynthConfig,
    SynthDirError,
    find_synth_dir,
    generate_dataset,
    generate_master,
    render_impression,
    sample_field,
    synth_correspondence,
)

# small frames keep the test fast; the adapter reads the config back from the manifest
CFG = SynthConfig(size=(192, 176), master_size=(288, 240), contact_shift_px=20.0,
                  max_translation_px=15.0)
SEED = 5


@pytest.fixture(scope="module")
def synth_shards(tmp_path_factory) -> tuple[Path, Path, RecordSource]:
    root = tmp_path_factory.mktemp("synth_records")
    synth, shards = root / "synth", root / "shards"
    generate_dataset(synth, 3, 3, SEED, CFG, workers=1)
    ingest(synth, "fvc", shards)
    return synth, shards, RecordSource(shards)


def _record(src: RecordSource, name: str) -> dict:
    idx = [i for i in range(len(src)) if src[i]["source"] == name]
    assert len(idx) == 1
    return src[idx[0]]


def _patch_ncc(img_a, img_b, pts_a, fwd, pts_b=None, half=6) -> np.ndarray:
    """NCC of a (2h+1)^2 patch of `img_a` around each point with `img_b` sampled at fwd(patch).

    With `pts_b`, image b is sampled at fwd(patch around pts_b[i]) instead (unrelated places).
    """
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    off = np.stack([dx.ravel(), dy.ravel()], axis=1).astype(np.float64)
    out = []
    for i, p in enumerate(pts_a):
        grid = p[None, :] + off
        q = fwd(grid if pts_b is None else pts_b[i][None, :] + off)
        if not np.isfinite(q).all():
            continue
        va = sample_field(img_a[..., None].astype(np.float32), grid)[:, 0]
        vb = sample_field(img_b[..., None].astype(np.float32), q)[:, 0]
        if not (np.isfinite(va).all() and np.isfinite(vb).all()):
            continue
        va, vb = va - va.mean(), vb - vb.mean()
        den = np.sqrt((va * va).sum() * (vb * vb).sum())
        if den > 0:
            out.append(float((va * vb).sum() / den))
    return np.asarray(out)


def test_find_synth_dir(synth_shards, tmp_path) -> None:
    synth, shards, _ = synth_shards
    assert find_synth_dir(shards) == synth.resolve()
    assert find_synth_dir(tmp_path) is None  # no shard manifest
    # a moved / changed synth folder is not followed
    copy = tmp_path / "synth"
    shutil.copytree(synth, copy)
    man = json.loads((shards / "manifest.json").read_text())
    fake = tmp_path / "shards"
    fake.mkdir()
    (fake / "manifest.json").write_text(json.dumps({**man, "source_dir": str(copy)}))
    assert find_synth_dir(fake) == copy.resolve()
    (copy / "2_3.png").unlink()
    assert find_synth_dir(fake) is None
    shutil.copy(synth / "2_3.png", copy / "2_3.png")
    m = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**m, "generator_version": "1.0"}))
    assert find_synth_dir(fake) is None
    with pytest.raises(SynthDirError, match="generator 1.0"):
        synth_correspondence(copy)
    # shards of a folder that is not a synth set
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(synth / "1_1.png", plain / "1_1.png")
    shutil.copy(synth / "1_2.png", plain / "1_2.png")
    ingest(plain, "fvc", tmp_path / "plain_shards")
    assert find_synth_dir(tmp_path / "plain_shards") is None
    with pytest.raises(SynthDirError, match="no readable synth manifest"):
        synth_correspondence(plain)


def test_maps_land_on_the_same_master_ridges(synth_shards) -> None:
    """Points mapped a -> b sit on the same master point; b's pixels there match a's ridges."""
    synth, shards, src = synth_shards
    corr = synth_correspondence(find_synth_dir(shards))
    ra, rb = _record(src, "2_1.png"), _record(src, "2_3.png")
    fwd, bwd = corr(ra, rb)
    # the generator's own renderings (dense fields, ridge profile) as the independent reference
    master = generate_master(SEED, 2, CFG)
    a, b = (render_impression(master, SEED, 2, k, CFG) for k in (1, 3))
    assert np.array_equal(a.image, ra["image"]) and np.array_equal(b.image, rb["image"])
    ys, xs = np.nonzero(a.mask)
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    q = fwd(pts)
    ok = np.isfinite(q[:, 0])
    assert 0.2 < ok.mean() < 1.0
    assert np.array_equal(ok, ok & a.mask[ys, xs])
    m_a = a.imp_to_master[ys[ok], xs[ok]].astype(np.float64)
    m_b = sample_field(b.imp_to_master, q[ok])
    fin = np.isfinite(m_b[:, 0])
    assert np.abs(m_b[fin] - m_a[fin]).max() < 0.02
    prof_a = sample_field(master.profile[..., None], m_a)[:, 0]
    prof_b = sample_field(master.profile[..., None], m_b)[:, 0]
    assert np.nanmax(np.abs(prof_a - prof_b)) < 0.02
    # b's rendered pixels at the mapped points: dark on a's master ridges, light on its valleys
    grey = sample_field(rb["image"][..., None].astype(np.float32), q[ok])[:, 0]
    ridge, valley = np.nanmean(grey[prof_a > 0.5]), np.nanmean(grey[prof_a < -0.5])
    assert ridge < valley - 40, (ridge, valley)
    # image patches around corresponding points agree; around unrelated points they do not
    rng = np.random.default_rng(0)
    sel = rng.choice(np.flatnonzero(ok), 150, replace=False)
    good = _patch_ncc(ra["image"], rb["image"], pts[sel], fwd)
    bad = _patch_ncc(ra["image"], rb["image"], pts[sel], fwd, pts_b=pts[rng.permutation(sel)])
    assert len(good) > 100 and np.median(good) > 0.5, np.median(good)
    assert abs(np.median(bad)) < 0.3, np.median(bad)


def test_forward_backward_identity_and_undefined_points(synth_shards) -> None:
    _, shards, src = synth_shards
    corr = synth_correspondence(find_synth_dir(shards))
    fwd, bwd = corr(_record(src, "3_1.png"), _record(src, "3_2.png"))
    yy, xx = np.mgrid[0:192:3, 0:176:3]
    p = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
    q = fwd(p)
    ok = np.isfinite(q[:, 0])
    assert ok.any() and not ok.all()
    back = bwd(q[ok])
    assert np.isfinite(back).all()
    assert np.abs(back - p[ok]).max() < 1e-4
    assert np.isnan(fwd(np.array([[-50.0, 10.0], [np.nan, 3.0], [10.0, 1e5]]))).all()
    assert fwd(np.zeros((0, 2))).shape == (0, 2)


def test_none_for_other_fingers_and_foreign_records(synth_shards) -> None:
    _, shards, src = synth_shards
    corr = synth_correspondence(find_synth_dir(shards))
    r11, r12, r21 = (_record(src, n) for n in ("1_1.png", "1_2.png", "2_1.png"))
    assert corr(r11, r12) is not None
    assert corr(r11, r21) is None  # different fingers
    changed = {**r12, "image": r12["image"].copy()}
    changed["image"][10, 10] ^= 1
    assert corr(r11, changed) is None  # not that file's pixels
    assert corr(r11, {**r12, "source": "9_9.png"}) is None
    assert corr(r11, {"image": r12["image"]}) is None
    same = corr(r11, r11)[0](np.array([[88.0, 96.0]]))
    assert np.isnan(same).all() or np.abs(same - [[88.0, 96.0]]).max() < 1e-6


def test_pickles_without_caches(synth_shards) -> None:
    _, shards, src = synth_shards
    corr = synth_correspondence(find_synth_dir(shards), cache_size=2)
    recs = [_record(src, f"1_{k}.png") for k in (1, 2, 3)]
    pts = np.array([[80.0, 90.0], [100.0, 60.0], [5.0, 5.0]])
    before = corr(recs[0], recs[2])[0](pts)
    corr(recs[1], recs[2])
    assert len(corr._geometries) == 2  # bounded LRU
    blob = pickle.dumps(corr)
    assert len(blob) < 20_000  # geometries (contact masks) are not shipped
    clone = pickle.loads(blob)
    assert len(clone._geometries) == 0
    after = clone(recs[0], recs[2])[0](pts)
    np.testing.assert_array_equal(np.isnan(before), np.isnan(after))
    np.testing.assert_allclose(before[np.isfinite(before)], after[np.isfinite(after)], atol=0)


def test_module2_pairs_get_exact_ground_truth(synth_shards) -> None:
    """The adapter plugs into Module-2 pair sampling: genuine impression pairs carry coarse GT."""
    from ifvit_data.pipeline import MatchPairConfig, Module2Transform, PairConfig
    from ifvit_data.preprocess import CropConfig

    _, shards, src = synth_shards
    corr = synth_correspondence(find_synth_dir(shards))
    cfg = MatchPairConfig(PairConfig(crop=CropConfig(size=(128, 128))), genuine_ratio=1.0)
    t = Module2Transform(src, cfg, corr)
    n_valid = []
    for i in range(len(src)):
        rec = {**src[i], "index": i}
        out = t.random_map(rec, np.random.default_rng(i))
        n_valid.append(int(out["gt_valid"].sum()))
        k = n_valid[-1]
        if k >= 8:  # GT points lie inside both windows
            p0, p1 = out["gt_pts0"][:k], out["gt_pts1"][:k]
            assert np.all((p0 >= 0) & (p0 < 128)) and np.all((p1 >= -0.5) & (p1 < 127.5))
    assert min(n_valid) > 50, n_valid  # every genuine pair here is two impressions


def test_no_synth_pixels_resampled_by_ingest(synth_shards) -> None:
    """Synth PNGs are 500 dpi, so records hold their exact pixels (the adapter relies on it)."""
    synth, _, src = synth_shards
    for i in range(len(src)):
        r = src[i]
        png = cv2.imread(str(synth / r["source"]), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(png, r["image"])
