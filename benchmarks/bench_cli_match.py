"""Wall time of `ifvit match A B` as a user meets it: the first call and the warm calls after it.

Run:  uv run python benchmarks/bench_cli_match.py [--runs 4] [IMAGE_A IMAGE_B]
      (default pair: FVC2002 DB1_B 101_1 and 101_2, the copies in packages/ifvit-train/tests/data)

Each row starts `ifvit match` as a new process with the shipped model, `--runs` times, with a fresh
JAX compilation cache in a temporary folder (`--compile-cache`), so the first call compiles the
matcher's XLA programs and the later ones load them, and a fresh, empty bytecode folder
(`PYTHONPYCACHEPREFIX`), so the first call is a first call after installation. Two conditions:

  bytecode   Python's default: the first call writes the bytecode of jax, flax, orbax ... and
             the later ones read it (what a user gets; `uv sync --compile-bytecode` writes it at
             install).
  no-pyc     `PYTHONDONTWRITEBYTECODE=1` and no bytecode anywhere: every call compiles that
             Python source again; some CI and container images set it.

The load average before and after is printed: compare numbers of one idle run only.
`--smoke` (the test suite): one call per condition with the caller's compilation cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = ROOT / "packages/ifvit-train/tests/data/fvc2002_db1_b"


def ifvit_command() -> list[str]:
    exe = Path(sys.executable).with_name("ifvit")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ifvit_cli.main"]


def timed_runs(a: Path, b: Path, runs: int, bytecode: bool, cache: str | None,
               pycache: str | None) -> list[float]:
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    if pycache:
        env["PYTHONPYCACHEPREFIX"] = pycache
    cmd = ifvit_command() + (["--compile-cache", cache] if cache else []) + ["match", str(a),
                                                                             str(b)]
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        out.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            sys.exit(f"ifvit match failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="*", type=Path, help="two prints (default: a DB1_B pair)")
    ap.add_argument("--runs", type=int, default=4, help="calls per condition (default: 4)")
    ap.add_argument("--smoke", action="store_true", help="one call each, the caller's cache")
    args = ap.parse_args(argv)
    a, b = args.images if len(args.images) == 2 else (PAIR / "101_1.png", PAIR / "101_2.png")
    runs = 1 if args.smoke else max(2, args.runs)
    print(f"load average before: {os.getloadavg()[0]:.2f}  ({os.cpu_count()} CPUs)")
    print(f"pair: {a.name} {b.name}; {runs} calls per condition, shipped model")
    print("condition   first call   later calls (min / median)")
    for bytecode in (True, False):
        tmp = None if args.smoke else tempfile.mkdtemp(prefix="ifvit-bench-")
        try:
            t = timed_runs(a, b, runs, bytecode, tmp and f"{tmp}/jax", tmp and f"{tmp}/pyc")
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        later = (f"{min(t[1:]):.2f} s / {statistics.median(t[1:]):.2f} s" if len(t) > 1
                 else "-")
        print(f"{'bytecode' if bytecode else 'no-pyc':10s}  {t[0]:8.2f} s   {later}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
