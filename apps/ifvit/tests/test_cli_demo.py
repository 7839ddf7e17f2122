"""`ifvit demo` end to end on a tiny configuration (the README's main job, shrunk)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifvit_cli.main import main

# 10 real FVC2002 DB1_B prints (fingers 101-105, impressions 1-2) kept in the repository for tests
REAL = Path(__file__).resolve().parents[3] / "packages/ifvit-train/tests/data/fvc2002_db1_b"


@pytest.mark.slow
def test_demo_tiny_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--preset", "tiny", "--fingers", "5",
                 "--impressions", "2",
                 "--holdout", "0.4", "--steps", "4", "--match-steps", "2", "--batch", "8",
                 "--seed", "3", "--real", str(REAL)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["heldout_fingers"]) == 2
    for stage in ("module1", "module2"):
        for when in ("before", "after"):
            assert report[stage][when], (stage, when)
    m2 = report["module2"]["after"]
    assert 0.0 <= m2["val_eer"] <= 1.0 and np.isfinite(m2["val_genuine_mean"])
    assert 0.0 <= report["module1"]["after"]["val_precision"] <= 1.0
    ev = report["evaluation"]
    assert ev["real"]["pairs"] == {"genuine": 5, "impostor": 10, "failed": 0}
    assert ev["synthetic"]["pairs"]["genuine"] == 2  # 2 held-out fingers x 1 pair of impressions
    for name in ("synthetic", "real"):
        assert set(ev[name]["rows"]) == {"trained", "scratch", "untrained", "module1"}
    for png in ("synthetic_prints.png", "model/dense/train_curves.png",
                "model/match/train_curves.png",
                "det_synthetic.png", "det_real.png", "match_synthetic.png", "match_real.png"):
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
    _check_export_evaluate_pairs(out, tmp_path, capsys)


def _check_match(out, capsys):
    """`ifvit match` on two of the demo's prints: JSON in the files' pixels, a picture, errors."""
    a, b = out / "synth" / "1_1.png", out / "synth" / "1_2.png"
    model = str(out / "model" / "match")
    assert main(["match", "--model", model, str(a), str(b), "--json", "--viz",
                 str(out / "m.png")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert -1.0 <= res["score"] <= 1.0 and set(res["decision"]) == set(res["thresholds"])
    h, w = np.asarray(Image.open(a)).shape
    for name, pairs in res["correspondences"].items():
        for c in pairs:  # every point lies in (or at the border of) the user's own images
            assert -8 <= c["x0"] <= w + 8 and -8 <= c["y0"] <= h + 8, (name, c)
            assert -8 <= c["x1"] <= w + 8 and -8 <= c["y1"] <= h + 8, (name, c)
    assert np.asarray(Image.open(out / "m.png")).std() > 5
    for region in ("global_input", "roi"):  # the branches' inputs, outlined in image 0's pixels
        poly = np.array(res["regions_image0"][region])
        assert poly.shape == (4, 2) and np.isfinite(poly).all()
    overlap = np.array(res["regions_image0"]["overlap"])  # the prints' overlap: inside image 0
    assert overlap.ndim == 2 and len(overlap) >= 3
    assert np.all((overlap >= -8) & (overlap <= np.array([w, h]) + 8))
    # the existing picture is not overwritten without --force; a Module 1 bundle is refused
    for argv, msg in ((["match", "--model", model, str(a), str(b), "--viz", str(out / "m.png")],
                       "--force"),
                      (["match", "--model", str(out / "model" / "dense"), str(a), str(b)],
                       "Module 2"),
                      (["match", "--model", model, str(a), str(out / "nope.png")], "no such file")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err


def _check_export_evaluate_pairs(out, tmp, capsys):
    """export -> evaluate (FVC report, plots, scores.csv) -> match --pairs, all consistent."""
    import csv

    exported = tmp / "exported"
    assert main(["export", str(out / "model" / "match"), "--out", str(exported)]) == 0
    capsys.readouterr()
    data = tmp / "prints"
    data.mkdir()
    for f in (out / "synth").glob("*.png"):
        (data / f.name).write_bytes(f.read_bytes())
    (data / "9_1.png").write_bytes(b"not an image")  # a failure to process, not a crash
    (data / "9_2.png").write_bytes((out / "synth" / "1_1.png").read_bytes())
    ev = tmp / "eval"
    assert main(["evaluate", "--model", str(exported), "--data", str(data), "--out", str(ev),
                 "--quiet"]) == 0
    assert "ifvit" in capsys.readouterr().out  # the summary table
    report = json.loads((ev / "report.json").read_text())
    # 6 fingers x 2 impressions: FVC genuine 6, impostor C(6, 2) = 15; finger 9's pair failed
    assert report["pairs"] == {"genuine": 6, "impostor": 15, "failed": 1 + 5}
    assert list(report["prints_failed"]) == ["9_1.png"]
    assert set(report["systems"]) == {"ifvit", "global", "roi", "module1"}
    for png in ("det.png", "roc.png", "histogram.png"):
        assert np.asarray(Image.open(ev / png).convert("L")).std() > 5
    rows = list(csv.DictReader((ev / "scores.csv").open()))
    assert len(rows) == 21
    row = next(r for r in rows if (r["image0"], r["image1"]) == ("1_1.png", "1_2.png"))
    # the same pair scored alone by `ifvit match` (the exported bundle == the training bundle)
    a, b = out / "synth" / "1_1.png", out / "synth" / "1_2.png"
    assert main(["match", "--model", str(out / "model" / "match"), str(a), str(b), "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert abs(float(row["score"]) - alone["score"]) < 1e-4
    # the baseline: the network Module 2 training started from scores the same pairs differently
    assert main(["evaluate", "--model", str(exported), "--untrained", "--data", str(data),
                 "--out", str(tmp / "eval0"), "--quiet"]) == 0
    capsys.readouterr()
    base = list(csv.DictReader((tmp / "eval0" / "scores.csv").open()))
    assert json.loads((tmp / "eval0" / "report.json").read_text())["untrained"] is True
    assert [r["inliers"] for r in base] == [r["inliers"] for r in rows]  # same Module 1
    assert [r["score"] for r in base] != [r["score"] for r in rows]
    # closed-set identification: first impressions form the gallery, the rest are probes
    assert main(["evaluate", "--model", str(exported), "--data", str(data), "--protocol",
                 "identification", "--rerank", "3", "--out", str(tmp / "ident"), "--quiet"]) == 0
    capsys.readouterr()
    ident = json.loads((tmp / "ident" / "report.json").read_text())
    assert (ident["gallery"], ident["probes"], ident["rerank"]) == (6, 5, 3)  # 9_1 unreadable
    for name in ("template", "re-ranked"):
        assert 0.0 <= ident[name]["rank1"] <= ident[name]["rank10"] == 1.0  # 6 gallery entries
    assert np.asarray(Image.open(tmp / "ident" / "cmc.png").convert("L")).std() > 5
    # many pairs from a list file, relative to it
    (data / "pairs.txt").write_text("# a comment\n1_1.png 1_2.png\n1_1.png, "
                                    "2_1.png\n9_1.png 1_2.png\n")
    assert main(["match", "--model", str(exported), "--pairs", str(data / "pairs.txt"),
                 "--out", str(tmp / "pairs.csv")]) == 0
    got = list(csv.DictReader((tmp / "pairs.csv").open()))
    assert len(got) == 3 and abs(float(got[0]["score"]) - alone["score"]) < 1e-4
    assert got[2]["score"] == "" and got[2]["ok"] == "false"
    assert main(["match", "--model", str(exported), "--pairs", str(data / "pairs.txt"),
                 "--out", str(tmp / "pairs.csv")]) == 2  # exists: not replaced without --force
    assert "--force" in capsys.readouterr().err


def test_demo_bad_input_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file" in err[0]
    assert main(["demo", "--out", str(tmp_path / "d"), "--fingers", "1"]) == 2
    assert not (tmp_path / "d").exists()
