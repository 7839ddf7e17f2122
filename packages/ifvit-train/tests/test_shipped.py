"""The model shipped inside ifvit-train loads and still tells real fingers apart.

Scores 10 real FVC2002 DB1_B prints kept in tests/data (fingers 101-105, impressions 1 and 2): a
broken bundle, a changed preprocessing or a changed forward path fails here.
"""

import itertools
import json
from pathlib import Path

import numpy as np

from ifvit_train.evaluation.evaluate import load_prints, score_pairs
from ifvit_train.serving.bundle import load_bundle
from ifvit_train.serving.infer import Verifier
from ifvit_train.serving.shipped import shipped_bundle

DATA = Path(__file__).parent / "data" / "fvc2002_db1_b"


def test_shipped_bundle_is_complete_and_says_how_it_was_made():
    path = shipped_bundle()
    assert path is not None, "the shipped bundle is missing from ifvit_train/serving/shipped_models"
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["kind"] == "match" and meta["status"] == "complete"
    assert meta["recipe"] and "ifvit train" in meta["recipe"]
    assert meta["stages"]["module2"] == "trained"
    assert set(meta["thresholds"]) >= {"fmr_0.01", "fmr_0.001"}
    # weights only (no optimizer state), a few MB, and no pickle anywhere
    files = [p for p in path.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 20e6
    assert not any(p.suffix in (".pkl", ".pickle", ".pt", ".ckpt") for p in files)
    # provenance by folder name (and hash), never the build machine's absolute paths
    absolute = [v for v in _strings(meta) if v.startswith("/") or v[1:3] == ":\\"]
    assert not absolute, absolute


def _strings(tree):
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _strings(v)]
    return [tree] if isinstance(tree, str) else []


def test_shipped_model_scores_real_genuine_pairs_above_impostors():
    verifier = Verifier(load_bundle(shipped_bundle(), require="match"))
    prints = load_prints(verifier, DATA, "fvc")
    assert len(prints.entries) == 10 and not prints.failures
    fingers = np.array([e.finger for e in prints.entries])
    pairs = np.array(list(itertools.combinations(range(10), 2)))
    genuine = fingers[pairs[:, 0]] == fingers[pairs[:, 1]]
    assert genuine.sum() == 5 and (~genuine).sum() == 40
    s = score_pairs(verifier, prints.prepared, pairs, batch_size=8)["score"]
    assert np.isfinite(s).all() and s.std() > 1e-3  # not one saturated value
    # ranking quality: the share of (genuine, impostor) pairs ordered correctly (ROC AUC)
    auc = float((s[genuine][:, None] > s[~genuine][None, :]).mean())
    assert auc >= 0.75, (auc, s[genuine], np.sort(s[~genuine]))


def test_the_baselines_reset_exactly_the_modules_they_name():
    import jax
    from flax import nnx

    from ifvit_train.serving.bundle import build_models, from_scratch, untrained

    b = load_bundle(shipped_bundle(), require="match")
    def leaves(m: nnx.Module) -> list[np.ndarray]:
        return [np.asarray(x) for x in jax.tree.leaves(nnx.state(m, nnx.Param))]

    def same(m0: nnx.Module, m1: nnx.Module) -> bool:
        return all(np.array_equal(x, y) for x, y in zip(leaves(m0), leaves(m1), strict=True))

    fresh1, _ = build_models(b.cfg, "dense", int(b.meta["train"]["seed"]))
    u, s = untrained(b), from_scratch(b)
    assert same(u.module1, b.module1) and not same(u.matcher, b.matcher)  # Module 2 only
    assert same(s.module1, fresh1) and not same(s.module1, b.module1)  # both modules
    # Module 2 of each starts from its own Module 1's trunk
    trunk, fresh_trunk = leaves(s.matcher.global_branch.backbone), leaves(fresh1.backbone)
    assert all(np.array_equal(x, y) for x, y in zip(trunk, fresh_trunk, strict=True))


def test_shown_module1_evidence_says_which_matches_ransac_kept():
    """`verify` marks every shown Module 1 correspondence as inlier or not, with its residual in
    file-1 pixels under the fitted alignment: an inlier is exactly a match whose residual is below
    RANSAC's threshold (window pixels, converted here through the file->window scale)."""
    verifier = Verifier(load_bundle(shipped_bundle(), require="match"))
    assert not verifier.cfg.loftr.fine.enabled  # shown points are those RANSAC used
    for name0, name1 in (("101_1", "101_2"), ("101_1", "102_1")):  # genuine, impostor
        a, b = (verifier.prepare(DATA / f"{n}.png") for n in (name0, name1))
        r = verifier.verify(a, b)
        m = r["correspondences"]["module1"]
        assert m and all(isinstance(c["inlier"], bool) for c in m)
        assert sum(c["inlier"] for c in m) == r["alignment"]["inliers"]
        file_per_window = 1.0 / np.sqrt(abs(np.linalg.det(b.to_window[:2, :2])))
        limit = verifier.cfg.ransac_threshold * file_per_window
        for c in m:
            if abs(c["residual_px"] - limit) > 0.05:  # away from the rounding of the limit
                assert c["inlier"] == (c["residual_px"] < limit), (name0, name1, c, limit)
    assert 0 < sum(not c["inlier"] for c in m)  # the impostor pair shows rejected matches too
