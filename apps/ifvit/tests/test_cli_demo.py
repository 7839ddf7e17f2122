"""`ifvit demo` end to end on a tiny configuration (the README's main job, shrunk)."""

import json

import numpy as np
from PIL import Image

from ifvit_cli.main import main


def test_demo_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--preset", "tiny", "--fingers", "5", "--impressions", "2",
                 "--holdout", "0.4", "--steps", "4", "--match-steps", "2", "--batch", "8",
                 "--seed", "3"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["heldout_fingers"]) == 2
    for stage in ("module1", "module2"):
        for when in ("before", "after"):
            assert report[stage][when], (stage, when)
    m2 = report["module2"]["after"]
    assert 0.0 <= m2["val_eer"] <= 1.0 and np.isfinite(m2["val_genuine_mean"])
    assert 0.0 <= report["module1"]["after"]["val_precision"] <= 1.0
    for png in ("synthetic_prints.png", "model/dense/train_curves.png", "model/match/train_curves.png"):
        im = np.asarray(Image.open(out / png).convert("L"))
        assert im.shape[0] > 50 and im.std() > 5, png  # a real picture, not a blank canvas
    md = (out / "report.md").read_text()
    assert md.startswith("# IFViT-JAX demo report") and "verification EER" in md
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert hidden == [".ifvit-output.json"]  # our marker, no temp files
    # the bundles load and `inspect` describes them
    assert main(["inspect", str(out / "model" / "match")]) == 0
    assert "Module 1 + Module 2" in capsys.readouterr().out
    _check_match(out, capsys)


def _check_match(out, capsys):
    """`ifvit match` on two of the demo's prints: JSON in the files' pixels, a picture, errors."""
    a, b = out / "synth" / "1_1.png", out / "synth" / "1_2.png"
    model = str(out / "model" / "match")
    assert main(["match", "--model", model, str(a), str(b), "--json", "--viz", str(out / "m.png")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert -1.0 <= res["score"] <= 1.0 and set(res["decision"]) == set(res["thresholds"])
    h, w = np.asarray(Image.open(a)).shape
    for name, pairs in res["correspondences"].items():
        for c in pairs:  # every point lies in (or at the border of) the user's own images
            assert -8 <= c["x0"] <= w + 8 and -8 <= c["y0"] <= h + 8, (name, c)
            assert -8 <= c["x1"] <= w + 8 and -8 <= c["y1"] <= h + 8, (name, c)
    assert np.asarray(Image.open(out / "m.png")).std() > 5
    # the existing picture is not overwritten without --force; a Module 1 bundle is refused
    for argv, msg in ((["match", "--model", model, str(a), str(b), "--viz", str(out / "m.png")], "--force"),
                      (["match", "--model", str(out / "model" / "dense"), str(a), str(b)], "Module 2"),
                      (["match", "--model", model, str(a), str(out / "nope.png")], "no such file")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


def test_demo_bad_input_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file" in err[0]
    assert main(["demo", "--out", str(tmp_path / "d"), "--fingers", "1"]) == 2
    assert not (tmp_path / "d").exists()
