"""Smoke runs of the benchmarks that need only ifvit-core (`--smoke`: tiny sizes, one call), so that
a renamed or changed API breaks this suite instead of the benchmark."""

from __future__ import annotations

NUM = r"\d+(?:\.\d+)?"


def test_bench_core_smoke(tmp_path, smoke):
    out = smoke("bench_core.py")
    for name in ("forward", r"forward\+fine", r"fwd\+bwd"):
        # | preset | pass | batch | pairs/s | ms/pair | GFLOP/pair | GFLOP/s | compile s |
        assert smoke.line(rf"^\| tiny \| {name} \| 1 \|( {NUM} \|){{5}}$", out), out


def test_bench_verify_smoke(tmp_path, smoke):
    out = smoke("bench_verify.py")
    # preset, side, batch-1 ms/pair, batch-2 ms/pair, pairs/s, paper/ours
    assert smoke.line(rf"^tiny\s+64(\s+{NUM}){{3}}\s+{NUM}x$", out), out
