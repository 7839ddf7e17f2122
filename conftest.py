"""Root pytest configuration shared by every member's suite.

Sets up 8 simulated host devices *before* any test imports JAX, so that sharding code paths run on a
single CPU. Must not import jax itself: ifvit-data's environment does not have it.
"""

import os

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests build many small models: the 'rbg' PRNG compiles its initialisers ~4x faster than threefry
# on this CPU (measured: tiny LoFTR init 11 s vs 47 s cold). Library code does not depend on it.
os.environ.setdefault("JAX_DEFAULT_PRNG_IMPL", "rbg")
# The `ifvit` command keeps compiled programs in the user's cache folder by default; tests never
# write there. scripts/test.sh sets JAX_COMPILATION_CACHE_DIR (a scratch folder), which wins.
os.environ.setdefault("IFVIT_COMPILE_CACHE", "off")


# Smoke runs of the scripts in benchmarks/ (every member's test_benchmarks.py): the fixture
# `smoke(script, *args)` runs `python benchmarks/<script> --smoke <args>` in the test's tmp_path,
# asserts exit 0 and returns stdout; `smoke.line(pattern, text)` says whether a line matches.
BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks")


@pytest.fixture
def smoke(tmp_path):
    import re
    import subprocess
    import sys

    def run(script: str, *args: str) -> str:
        proc = subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), "--smoke", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600,
                              check=False)
        assert proc.returncode == 0, (
            f"{script} --smoke: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        return proc.stdout

    run.line = lambda pattern, text: re.search(pattern, text, re.MULTILINE) is not None
    return run
