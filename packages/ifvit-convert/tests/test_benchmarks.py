"""Smoke runs of the benchmarks that need torch and kornia (`--smoke`: the tiny preset, one call):
this environment's dev group holds them and ifvit-train, so a renamed or changed API breaks this
suite instead of the benchmark."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
NUM = r"\d+(?:\.\d+)?"


def _smoke(script: str, tmp_path: Path, *args: str) -> str:
    """stdout of `python benchmarks/<script> --smoke <args>` run in `tmp_path`; asserts exit 0."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--smoke", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{script} --smoke: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _line(pattern: str, text: str) -> bool:
    """Whether a line of `text` matches `pattern` (`^` and `$` at line ends)."""
    return re.search(pattern, text, re.MULTILINE) is not None


def test_bench_convert_smoke(tmp_path):
    out = _smoke("bench_convert.py", tmp_path)
    for step in ("read checkpoint", "convert_file", "load_converted", "load_loftr"):
        assert _line(rf"^{step} .*\s{NUM} s$", out), out
    for who in (r"JAX \(converted\)", r"PyTorch \(kornia\)"):
        assert _line(rf"^{who}\s+64x64 B=1:\s+{NUM} ms/call\s+{NUM} pairs/s$", out), out


def test_bench_vs_torch_smoke(tmp_path):
    out = _smoke("bench_vs_torch.py", tmp_path)
    for p in ("train", "infer-c", "infer-f"):
        # | preset | pass | who | pairs/s | GFLOP/pair | GFLOP/s | % JAX peak | ours / PyTorch | ...
        ours = rf"^\| tiny \| {p} \| ours \(JAX\) \| {NUM} \| {NUM} \| .*\*\*{NUM}x\*\*"
        assert _line(ours, out), out
        assert _line(rf"^\| tiny \| {p} \| kornia eager \| {NUM} \| {NUM} \|", out), out
    matches = r"^tiny: matches per batch of 1: ours \d+ \(fine-refined \d+\), kornia up to \d+"
    assert _line(matches, out), out
