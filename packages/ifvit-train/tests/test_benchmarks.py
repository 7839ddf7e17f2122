"""Smoke runs of the benchmarks that need ifvit-train (`--smoke`: tiny sizes, one call, synthetic
prints made by the script), so that a renamed or changed API breaks this suite instead of the
benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end-to-end: each runs a script as a subprocess

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
NUM = r"\d+(?:\.\d+)?"


def test_bench_search_smoke(tmp_path, smoke):
    out = smoke("bench_search.py")
    for probes in (1, 4):
        # N, probes, jax ms, numpy ms, numpy/jax, ms/probe; nothing after: the top-k ids agree
        assert smoke.line(rf"^\s+1000\s+{probes}(\s+{NUM}){{4}}$", out), out
    assert smoke.line(rf"model, batch  2: +{NUM} templates/s", out), out
    assert smoke.line(rf"file preparation .*: {NUM} ms/print", out), out


def test_profile_module1_smoke(tmp_path, smoke):
    out = smoke("profile_module1.py", "--out", str(tmp_path / "profile"))
    assert smoke.line(rf"^tiny train, 64x64, batch 1: {NUM} ms of op time per call", out), out
    for group in ("forward convolution", "backward convolution"):  # the trace met the HLO
        assert smoke.line(rf"^\| {group} \| {NUM} \| {NUM}% \|$", out), out
    assert (tmp_path / "profile" / "optimised_hlo.txt").stat().st_size > 0


def test_enhance_examples_smoke(tmp_path, smoke):
    png = tmp_path / "grid.png"
    out = smoke("enhance_examples.py", "--out", str(png))
    assert f"wrote {png}: rows = synth/1_1.png, synth/2_1.png" in out, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert smoke.line(rf"ridge period at 500 ppi over 2 prints: median {NUM} px", out), out
    for size in (128, 256):
        assert smoke.line(rf"enhance 2 x {size}x{size} on \w+: {NUM} ms per batch", out), out
    assert smoke.line(rf"ratio 256/128: {NUM}", out), out


def test_bench_template_separation_smoke(tmp_path, smoke):
    out = smoke("bench_template_separation.py")  # the shipped model
    assert "6 prints of 3 fingers: 3 genuine, 12 impostor pairs" in out, out
    # score, genuine, impostor, EER, AUC, d', [rank-1], time
    for mode in ("self", "mirror", "skip"):
        assert smoke.line(rf"^template/{mode}(\s+-?{NUM}){{6}}\s+{NUM} ms/print$", out), out
    assert smoke.line(rf"^pairwise IFViT(\s+-?{NUM}){{6}}\s+{NUM} ms/pair$", out), out


def test_bench_evidence_smoke(tmp_path, smoke):
    out = smoke("bench_evidence.py", "--out", str(tmp_path / "evidence.json"))
    assert "2 genuine pairs (2 fingers x 2 impressions, seed 20261207" in out, out
    pct = rf"{NUM}%"
    # kind, shown, within 2 / 4 / 9 px, median px, no counterpart (off own print), target
    for kind in ("Module 1", "global branch", "ROI branch"):
        assert smoke.line(rf"^\| {kind} \| [\d,]+ \| {pct} \| {pct} \| {pct} \| {NUM} \| {pct} "
                     rf"\({pct}\) \| >= \d+%: (met|not met) \|$", out), out
    # a number row once the shipped model's fine stage is trained
    fine = rf"^\| Module 1 \+ fine stage \| (n/a, fine stage untrained|[\d,]+ \| {pct}) "
    assert smoke.line(fine, out), out
    rows = json.loads((tmp_path / "evidence.json").read_text())["rows"]
    assert rows["module1"]["shown"] >= rows["module1"]["with_counterpart"] > 0


def test_bench_pseudo_labels_smoke(tmp_path, smoke):
    out = smoke("bench_pseudo_labels.py", "--out", str(tmp_path / "labels.json"))
    assert smoke.line(r"^\d+ genuine impression pairs with exact truth \(4 fingers x 2 "
                      r"impressions, seed 20261208\), \d+ aligned by Module 1", out), out
    pct = rf"({NUM}%|-)"
    for floor in ("0.2", "0.4", "0.6"):
        for branch in ("global", "local"):
            assert smoke.line(rf"^\| {floor} \| {branch} \| {NUM} \| {pct} \| {pct} \| {pct} \|$",
                              out), out
    res = json.loads((tmp_path / "labels.json").read_text())
    rows = res["rows"]
    assert res["pairs"] > 0 and rows["0.2/global"]["labels"] > 0
    # a higher floor keeps a subset of the labels
    n = [rows[f"{f}/global"]["labels"] for f in ("0.6", "0.4", "0.2")]
    assert n == sorted(n), n


def test_whitening_loso_smoke(tmp_path, smoke):
    out = smoke("whitening_loso.py", "--out", str(tmp_path / "loso.json"))
    cell = rf"{NUM} -> {NUM} -> {NUM}"
    for name in ("s1", "s2"):
        assert smoke.line(rf"^\| {name} \| \d+ / \d+ \| {cell} \| {cell} \| {cell} \|$", out), out
    assert smoke.line(rf"^\| mean fused \| \| \| \| {cell} \|$", out), out
    rows = json.loads((tmp_path / "loso.json").read_text())["rows"]
    assert set(rows) == {"s1", "s2"} and all(
        0 <= r[n]["fused"] <= 1 for r in rows.values() for n in ("whitened", "within-finger"))


def test_template_whitening_smoke(tmp_path, smoke):
    out = smoke("template_whitening.py", "--out", str(tmp_path / "t.json"))
    cell = rf"{NUM} / {NUM}"
    assert smoke.line(rf"^\| none \| {NUM} \| {cell} \| {cell} \| {cell} \| {cell} \|$", out), out
    assert smoke.line(rf"^\| eps 0.1 \(lowest mean EER\) \| 1 \| {cell} \| {cell} \| {cell} "
                      rf"\| {cell} \|$", out), out
    res = json.loads((tmp_path / "t.json").read_text())
    assert res["best"] == {"eps": 0.1, "alpha": 1.0}
    assert all(0 <= c[0] <= 1 and 0 <= c[1] <= 1 for r in res["rows"] for c in r["sets"].values())


def test_evidence_gallery_smoke(tmp_path, smoke):
    out = smoke("evidence_gallery.py", "--out", str(tmp_path / "g"), "--dpi-figure", "40")
    for name in ("s1", "s2"):
        for kind in ("genuine", "impostor"):
            assert smoke.line(rf"^{name}\s+{kind}\s+score {NUM} cosine -?{NUM} inliers\s+\d+ "
                              rf"outliers\s+\d+ on foreground ({NUM}|nan) / ({NUM}|nan) -> ",
                              out), out
            png = tmp_path / "g" / f"{name}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((tmp_path / "g" / "pairs.json").read_text())["rows"]
    assert [(r["set"], r["kind"]) for r in rows] == [
        ("s1", "genuine"), ("s1", "impostor"), ("s2", "genuine"), ("s2", "impostor")]


def test_evidence_gallery_refuses_a_users_folder(tmp_path):
    """--out naming a non-empty folder that is no gallery output: argparse's refusal (exit 2, one
    error line naming the folder, before the model loads) and the folder left as it was."""
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine\n")
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "evidence_gallery.py"), "--smoke",
                           "--out", str(user)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and proc.stderr.splitlines()[-1] == errors[0], proc.stderr
    assert errors[0].startswith("evidence_gallery.py: error: ") and str(user) in errors[0]
    assert "is not empty" in errors[0], errors[0]
    assert proc.stdout == ""
    assert [p.name for p in user.iterdir()] == ["notes.txt"]
    assert (user / "notes.txt").read_text() == "mine\n"
