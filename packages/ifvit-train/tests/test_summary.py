"""`summary.bundle_summary` (what `ifvit inspect` prints) on records of every shape."""

import copy

from ifvit_train.serving.bundle import read_meta
from ifvit_train.serving.shipped import shipped_bundle
from ifvit_train.serving.summary import bundle_summary


def _meta():
    return copy.deepcopy(read_meta(shipped_bundle()))


def test_shipped_bundle_lines():
    lines = bundle_summary(shipped_bundle(), _meta())
    text = "\n".join(lines)
    assert lines[0].startswith("bundle      ") and "Module 1 + Module 2" in lines[1]
    assert "templates   own neck on 1248 prints of 156 fingers" in text
    assert ("whitened    pairwise neck on 4800 vectors per branch (with finger labels) of "
            "fvc2002_db2_b") in text


def test_several_training_folders_are_listed_by_name(tmp_path):
    m = _meta()
    m["data"] = {"shards": ["synth", "real"], "train_records": 90, "train_fingers": 12,
                 "folders": [
                     {"name": "synth", "train_records": 60, "train_fingers": 8, "mix_weight": 0.7,
                      "exact_impression_correspondences": True, "manifest_sha256": "a" * 64},
                     {"name": "real", "train_records": 30, "train_fingers": 4, "mix_weight": 0.3,
                      "exact_impression_correspondences": False, "manifest_sha256": "b" * 64}]}
    (line,) = [x for x in bundle_summary(tmp_path, m) if x.startswith("data")]
    assert line == ("data        2 folders, 90 training prints of 12 fingers: synth (60 prints of "
                    "8 fingers, weight 0.7, exact correspondences yes, manifest sha256 "
                    "aaaaaaaaaaaa); real (30 prints of 4 fingers, weight 0.3, exact "
                    "correspondences no, manifest sha256 bbbbbbbbbbbb)")


def test_a_template_neck_alone_on_an_unwhitened_bundle(tmp_path):
    m = _meta()
    m["whitened"] = {"templates": {"eps": 0.1, "alpha": 1.0, "prints": 30, "fingers": 6,
                                   "sets": [{"data": "mine"}]}}
    lines = bundle_summary(tmp_path, m)
    assert not any(x.startswith("whitened") for x in lines)
    assert ("templates   own neck on 30 prints of 6 fingers of mine (within-finger whitening, "
            "eps 0.1), global weight 1") in lines
