"""Smoke runs of the benchmarks that need torch and kornia (`--smoke`: the tiny preset, one call):
this environment's dev group holds them and ifvit-train, so a renamed or changed API breaks this
suite instead of the benchmark."""

from __future__ import annotations

NUM = r"\d+(?:\.\d+)?"


def test_bench_convert_smoke(tmp_path, smoke):
    out = smoke("bench_convert.py")
    for step in ("read checkpoint", "convert_file", "load_converted", "load_loftr"):
        assert smoke.line(rf"^{step} .*\s{NUM} s$", out), out
    for who in (r"JAX \(converted\)", r"PyTorch \(kornia\)"):
        assert smoke.line(rf"^{who}\s+64x64 B=1:\s+{NUM} ms/call\s+{NUM} pairs/s$", out), out


def test_bench_vs_torch_smoke(tmp_path, smoke):
    out = smoke("bench_vs_torch.py")
    for p in ("train", "infer-c", "infer-f"):
        # | preset | pass | who | pairs/s | GFLOP/pair | GFLOP/s | % JAX peak | ours / PyTorch | ...
        ours = rf"^\| tiny \| {p} \| ours \(JAX\) \| {NUM} \| {NUM} \| .*\*\*{NUM}x\*\*"
        assert smoke.line(ours, out), out
        assert smoke.line(rf"^\| tiny \| {p} \| kornia eager \| {NUM} \| {NUM} \|", out), out
    matches = r"^tiny: matches per batch of 1: ours \d+ \(fine-refined \d+\), kornia up to \d+"
    assert smoke.line(matches, out), out
