"""Smoke runs of the benchmarks that need only ifvit-core (`--smoke`: tiny sizes, one call), so that
a renamed or changed API breaks this suite instead of the benchmark."""

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


def test_bench_core_smoke(tmp_path):
    out = _smoke("bench_core.py", tmp_path)
    for name in ("forward", r"forward\+fine", r"fwd\+bwd"):
        # | preset | pass | batch | pairs/s | ms/pair | GFLOP/pair | GFLOP/s | compile s |
        assert _line(rf"^\| tiny \| {name} \| 1 \|( {NUM} \|){{5}}$", out), out


def test_bench_verify_smoke(tmp_path):
    out = _smoke("bench_verify.py", tmp_path)
    # preset, side, batch-1 ms/pair, batch-2 ms/pair, pairs/s, paper/ours
    assert _line(rf"^tiny\s+64(\s+{NUM}){{3}}\s+{NUM}x$", out), out
