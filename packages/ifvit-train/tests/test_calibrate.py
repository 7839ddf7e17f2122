"""`ifvit calibrate`'s library: evidence weight chosen on validation scores, thresholds, new
bundle."""

import json
import math

import numpy as np
import pytest
from flax import nnx

from ifvit_train.evaluation import calibrate as cal
from ifvit_train.serving.bundle import load_bundle
from ifvit_train.serving.shipped import shipped_bundle


@pytest.fixture(scope="module")
def src():
    path = shipped_bundle()
    return path, load_bundle(path, require="match")


def _evaluation(folder, model, step, rows, protocol="baselines", untrained=False):
    """An `ifvit evaluate` output written by hand: rows of (genuine, cosine, inliers); both branch
    cosines equal the fused one, so the fused cosine is exact whatever alpha is."""
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({
        "model": str(model), "model_step": step, "protocol": protocol, "untrained": untrained,
        "data": f"/prints/{folder.name}"}))
    lines = ["image0,image1,genuine,score,cosine,cos_global,cos_local,inliers,ok,rotation_deg"]
    for i, (g, c, n) in enumerate(rows):
        lines.append(f"{i}_1.tif,{i}_2.tif,{g},{c},{c},{c},{c},{n},true,0")
    (folder / "scores.csv").write_text("\n".join(lines) + "\n")
    return folder


# set A: by cosine alone an impostor (0.7) outranks two genuine pairs; by inliers nothing overlaps
A = [(1, 0.6, 100), (1, 0.5, 80), (1, 0.9, 120),
     (0, 0.7, 2), (0, 0.55, 0), (0, 0.2, 10), (0, 0.4, 1)]
# set B: separated either way; its impostor has many inliers
B = [(1, 0.95, 200), (0, 0.8, 50)]


def test_the_smallest_k_that_separates_wins_and_thresholds_come_from_pooled_impostors(tmp_path,
                                                                                      src):
    path, b = src
    sets = [cal.read_evaluation(_evaluation(tmp_path / n, path, b.step, r), b)
            for n, r in (("a", A), ("b", B))]
    k, table = cal.choose_evidence_k(sets)
    assert table[0.0][0] > 0 and table[0.0][1] == 0  # k = 0 (the paper's score) errs on A only
    # k = 2.5, (1 + c) / 2 * n / (n + 2.5): A genuine 0.780, 0.727, 0.931 vs impostors 0.378, 0,
    # 0.48, 0.2 -> EER 0 on both
    assert table[2.5] == [0.0, 0.0] and k == 2.5
    meta = cal.calibrated_meta({"config": {"module2": {"evidence_k": 0.0}},
                                "thresholds": {"x": 1.0}},
                               sets, k, table, "grid")
    assert meta["config"]["module2"]["evidence_k"] == 2.5
    # 5 pooled impostor scores; the highest is B's (1 + 0.8) / 2 * 50 / 52.5 = 0.857: FMR 1%
    # allows floor(0.05) = 0 false matches, so every threshold lies just above it
    top = 0.9 * 50 / 52.5
    for name in ("fmr_0.01", "fmr_0.001", "fmr_0.0001"):
        t = meta["thresholds"][name]
        assert t > float(np.float32(top)) and math.isclose(t, top, rel_tol=1e-6)
    assert meta["calibration"]["previous_thresholds"] == {"x": 1.0}
    assert [s["impostor"] for s in meta["calibration"]["sets"]] == [4, 1]


def test_a_given_k_of_zero_calibrates_the_papers_score(tmp_path, src):
    path, b = src
    sets = [cal.read_evaluation(_evaluation(tmp_path / "a", path, b.step, A), b)]
    meta = cal.calibrated_meta({"config": {"module2": {}}}, sets, 0.0, {0.0: [sets[0].eer(0.0)]},
                               "given")
    # impostor cosines 0.7, 0.55, 0.2, 0.4: just above 0.7 (scores are float32, as the model's)
    t = meta["thresholds"]["fmr_0.01"]
    assert t > float(np.float32(0.7)) and math.isclose(t, 0.7, rel_tol=1e-6)
    # FVC EER by hand at k=0: genuine {0.5, 0.6, 0.9}, impostors {0.2, 0.4, 0.55, 0.7};
    # t=0.6: FNMR 1/3, FMR 1/4; t=0.7: FNMR 1/3, FMR 1/4 ... interval [1/4, 1/3]
    assert sets[0].eer(0.0) == pytest.approx((1 / 4 + 1 / 3) / 2)


def test_evaluations_of_another_model_or_kind_are_refused(tmp_path, src):
    path, b = src
    with pytest.raises(cal.CalibrationError, match="scores made with .* step 7"):
        cal.read_evaluation(_evaluation(tmp_path / "a", path, 7, A), b)
    with pytest.raises(cal.CalibrationError, match="untrained"):
        cal.read_evaluation(_evaluation(tmp_path / "u", path, b.step, A, untrained=True), b)
    with pytest.raises(cal.CalibrationError, match="identification"):
        cal.read_evaluation(_evaluation(tmp_path / "i", path, b.step, A, protocol="identification"),
                            b)
    with pytest.raises(cal.CalibrationError, match="no report.json"):
        cal.read_evaluation(tmp_path, b)
    with pytest.raises(cal.CalibrationError, match="genuine and impostor"):
        cal.read_evaluation(_evaluation(tmp_path / "g", path, b.step, A[:3]), b)


def test_the_calibrated_bundle_has_the_same_weights_and_the_new_score(tmp_path, src):
    path, b = src
    ev = [_evaluation(tmp_path / n, path, b.step, r) for n, r in (("a", A), ("b", B))]
    meta = cal.calibrate_bundle(path, tmp_path / "out", ev)
    new = load_bundle(tmp_path / "out", require="match")
    assert new.cfg.module2.evidence_k == 2.5 == meta["calibration"]["evidence_k"]
    assert new.meta["thresholds"]["fmr_0.01"] == meta["thresholds"]["fmr_0.01"]
    for m_old, m_new in ((b.module1, new.module1), (b.matcher, new.matcher)):
        old, cur = nnx.state(m_old, nnx.Param), nnx.state(m_new, nnx.Param)
        for x, y in zip(jax_leaves(old), jax_leaves(cur), strict=True):
            np.testing.assert_array_equal(x, y)


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]
