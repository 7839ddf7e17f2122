"""Argument checks shared by the benchmark scripts that load a Module 2 bundle.

Imported as `from _common import ...`: running `python benchmarks/<script>.py` puts this folder on
`sys.path`. Refusals go through the script's own `argparse` parser (`ap.error`: usage, then one
`<script>: error: ...` line on stderr, exit code 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_train.serving.bundle import BundleError, LoadedBundle, load_bundle
from ifvit_train.serving.shipped import shipped_bundle


def check_json_out(ap: argparse.ArgumentParser, out: Path | None) -> None:
    """Refuses an `--out` that is given but is not a .json file in an existing folder."""
    if out is not None and (out.suffix != ".json" or not out.parent.is_dir()):
        ap.error(f"--out {out}: give a .json file in an existing folder")


def load_model_or_exit(ap: argparse.ArgumentParser, path: Path | None,
                       require: str | None = "match") -> tuple[LoadedBundle, Path]:
    """Loads `--model` (default: the shipped model) or exits through `ap.error`.

    Args:
      ap: the script's parser, whose `error` prints the refusal and exits with code 2.
      path: the `--model` argument; None for the shipped model.
      require: passed to `load_bundle` ('match': refuse a Module 1 bundle; None: either kind).

    Returns:
      (the loaded bundle, its folder).
    """
    model = path or shipped_bundle()
    if model is None:
        ap.error("no --model given and this installation has no shipped model")
    try:
        return load_bundle(model, require=require), model
    except (BundleError, ValueError) as e:
        ap.error(f"--model {model}: {e}")
