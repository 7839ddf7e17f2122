"""ifvit-data must never import jax, flax or torch (ARCHITECTURE.md: Grain workers stay light)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("jax", "jaxlib", "flax", "torch")

SCRIPT = """
import importlib, importlib.abc, pkgutil, sys

class Block(importlib.abc.MetaPathFinder):
    # Makes the forbidden packages unimportable even where they are installed: grain probes jax
    # for its profiler inside try/except, but any import of them by ifvit_data fails loudly.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {forbidden!r}:
            raise ImportError("blocked by test_isolation: " + name)
        return None

sys.meta_path.insert(0, Block())
import ifvit_data
names = sorted(m.name for m in pkgutil.walk_packages(ifvit_data.__path__, "ifvit_data."))
for name in names:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(len(names), ",".join(names))
print("FORBIDDEN:" + ",".join(bad))
"""


def test_no_jax_flax_torch() -> None:
    """Imports every public submodule (synth included) in a fresh interpreter and checks
    sys.modules."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(forbidden=set(FORBIDDEN))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    count_line, forbidden_line = out.stdout.strip().splitlines()[-2:]
    names = count_line.split(" ", 1)[1].split(",")
    for must in (
        "ifvit_data.schema",
        "ifvit_data.pipeline",
        "ifvit_data.shards",
        "ifvit_data.readers",
        "ifvit_data.augment.perlin",
        "ifvit_data.groundtruth",
    ):
        assert must in names
    assert forbidden_line == "FORBIDDEN:", forbidden_line
