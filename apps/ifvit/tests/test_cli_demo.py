"""`ifvit demo` end to end on a tiny configuration (the README's main job, shrunk)."""

import json

import numpy as np
from PIL import Image

from ifvit_cli.main import main


def test_demo_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--preset", "tiny", "--fingers", "5", "--impressions", "2",
                 "--holdout", "0.4",
                 "--steps", "6", "--batch", "8", "--eval-pairs", "8", "--seed", "3"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["fingers"] == 5 and report["data"]["records"] == 10
    assert report["data"]["heldout_fingers"] == 2
    assert report["train"]["steps"] == 6 and np.isfinite(report["train"]["loss_last"])
    ev = report["eval"]
    for k in ("precision", "recall", "rotation_error_deg_median", "corner_error_px_median"):
        assert np.isfinite(ev[k]), k
    assert 0.0 <= ev["precision"] <= 1.0 and 0.0 <= ev["recall"] <= 1.0
    assert any("Module 2" in s for s in report["not_built_yet"])  # says what it does not do
    vb = report["verify_baseline"]
    assert vb["genuine_pairs"] == 2 and vb["impostor_pairs"] == 4  # all pairs of 2 fingers x 2
    for score in ("inliers", "confidence"):
        assert 0.0 <= vb[score]["eer"] <= 1.0
    for png in ("synthetic_prints.png", "train_curves.png", "matches.png", "scores.png"):
        im = np.asarray(Image.open(out / png).convert("L"))
        assert im.shape[0] > 50 and im.std() > 5, png  # a real picture, not a blank canvas
    assert (out / "report.md").read_text().startswith("# IFViT-JAX demo report")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temp files


def test_demo_bad_input_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0]
    assert main(["demo", "--out", str(tmp_path / "d"), "--fingers", "1"]) == 2
    assert not (tmp_path / "d").exists()


def test_equal_error_rate_hand_cases():
    from ifvit_cli.demo_stages import equal_error_rate

    # t = 0.8: impostor 0.85 accepted (FAR 1/3), genuine 0.3 rejected (FRR 1/3).
    eer, t = equal_error_rate(np.array([0.9, 0.8, 0.3]), np.array([0.1, 0.2, 0.85]))
    assert abs(eer - 1 / 3) < 1e-12 and t == 0.8
    eer, t = equal_error_rate(np.array([5.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    assert eer == 0.0 and 3.0 < t <= 5.0
    eer, _ = equal_error_rate(np.array([1.0, 2.0]), np.array([5.0, 6.0]))
    assert eer == 1.0
