"""Evaluation library: protocol pair counts, the report from known scores, scores.csv."""

import math

import numpy as np
import pytest

from ifvit_data.readers import scan
from ifvit_train.evaluation import evaluate as ev


@pytest.fixture
def fvc_folder(tmp_path):
    for f in range(101, 111):
        for k in range(1, 9):
            (tmp_path / f"{f}_{k}.tif").write_bytes(b"")  # names only: scan does not decode
    return tmp_path


def test_protocol_pair_counts_of_a_10x8_set(fvc_folder):
    entries, _ = scan(fvc_folder, "fvc")
    pairs, gen = ev.protocol_pairs(entries, "fvc")
    assert (gen == 1).sum() == 10 * 28 and (gen == 0).sum() == 45  # FVC: 280 / 45
    first = {e.finger for e in entries if e.impression == 1}
    assert all(entries[i].impression == 1 and entries[j].impression == 1
               for i, j in pairs[gen == 0])
    assert len(first) == 10
    pairs, gen = ev.protocol_pairs(entries, "all-pairs")
    assert len(pairs) == 80 * 79 // 2 and (gen == 1).sum() == 280
    pairs, gen = ev.protocol_pairs(entries, "baselines")
    assert (gen == 1).sum() == 280 and (gen == 0).sum() == 2000
    with pytest.raises(ValueError, match="unknown protocol"):
        ev.protocol_pairs(entries, "nist")


def _scores(score, inliers):
    score = np.asarray(score, float)
    return {"score": score, "cosine": score, "cos_global": score - 0.1, "cos_local": score + 0.1,
            "inliers": np.asarray(inliers, float), "ok": np.isfinite(score),
            "rotation_deg": np.zeros(len(score)), "seconds": np.float64(2.0)}


def test_report_from_known_scores():
    # 4 genuine (one failed), 4 impostor; fused score separates except one impostor at 0.7
    score = [0.9, 0.8, 0.6, np.nan, 0.1, 0.2, 0.7, 0.3]
    gen = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    inliers = [5, 5, 5, np.nan, 5, 5, 5, 5]  # Module 1 alone: every processed pair ties
    rep = ev.evaluation_report(_scores(score, inliers), gen, thresholds={"fmr_0.01": 0.65},
                               model="m")
    assert rep["model"] == "m"
    assert rep["pairs"] == {"genuine": 4, "impostor": 4, "failed": 1}
    # at t = 0.65: impostors accepted {0.7} -> FMR 1/4; genuine rejected {0.6, failed} -> FNMR 2/4
    assert rep["decisions_at_bundle_thresholds"]["fmr_0.01"] == {"threshold": 0.65, "fmr": 0.25,
                                                                 "fnmr": 0.5}
    ifvit = rep["systems"]["ifvit"]
    assert ifvit["failed_genuine"] == 1 and ifvit["n_genuine"] == 4
    # FVC EER by hand: t=0.8 -> FMR 0, FNMR 2/4; t=0.7 -> FMR 1/4, FNMR 2/4; t=0.6 -> FMR 1/4,
    # FNMR 1/4 -> EER 25%
    assert math.isclose(ifvit["eer"], 0.25)
    # all-equal scores (Module 1 here): the FVC EER of a coin, FNMR 1/4 from the failure only
    # the paper's cosine equals the decision score here (no evidence weight): one system, not two
    assert set(rep["systems"]) == {"ifvit", "global", "roi", "module1"}
    m1 = rep["systems"]["module1"]
    assert m1["zerofmr"] == 1.0
    assert rep["seconds_per_pair"] == pytest.approx(2.0 / 7)


def test_scores_csv_rows():
    s = _scores([0.5, np.nan], [12, np.nan])
    text = ev.scores_csv(["a,1.png", "b.png"], ["c.png", "d.png"], s, np.array([1, 0]),
                         thresholds={"fmr_0.01": 0.4})
    lines = text.splitlines()
    assert lines[0] == ("image0,image1,genuine,score,cosine,cos_global,cos_local,inliers,ok,"
                        "rotation_deg,accept_fmr_0.01")
    assert lines[1] == '"a,1.png",c.png,1,0.5,0.5,0.4,0.6,12,true,0,true'
    assert lines[2] == "b.png,d.png,0,,,,,,false,0,false"


def test_the_papers_cosine_is_reported_when_the_score_is_evidence_weighted():
    s = _scores([0.9, 0.8, 0.1, 0.85], [50, 40, 0, 2])
    s["score"] = s["cosine"] * s["inliers"] / (s["inliers"] + 10)  # evidence_k 10
    rep = ev.evaluation_report(s, np.array([1, 1, 0, 0]))
    assert set(rep["systems"]) == {"ifvit", "cosine", "global", "roi", "module1"}
    assert rep["systems"]["ifvit"]["eer"] == 0.0  # genuine 0.75, 0.64 vs impostor 0, 0.142
    assert rep["systems"]["cosine"]["eer"] > 0.0  # impostor 0.85 above genuine 0.8
