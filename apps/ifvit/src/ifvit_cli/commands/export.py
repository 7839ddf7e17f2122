"""`ifvit export`: the weights-only copy of a trained bundle (what you ship or copy to a server)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import check_new_bundle_folder

HELP = "copy a finished bundle's weights (no optimizer state) into a small bundle to ship"
DESCRIPTION = """\
Write the weights-only copy of a finished `ifvit train` bundle: bundle.json (config, preprocessing,
thresholds, how it was trained, plus the source and a hash of the weights) and Orbax folders of
the parameters and BatchNorm statistics of Module 1 (and Module 2). No optimizer state and no
data-iterator state, so it is about a third of the size; it cannot resume training. Every command
that takes --model loads it. --out must not exist yet (or be an empty folder); the bundle is
written into a temporary sibling and renamed into place when complete."""
EPILOG = """\
examples:
  ifvit export runs/m/match --out models/my-matcher
  ifvit match --model models/my-matcher a.png b.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="a finished bundle (`ifvit train` workdir)")
    p.add_argument("--out", type=Path, required=True, help="new folder for the exported bundle")
    p.add_argument("--recipe", default=None,
                   help="how the bundle was made (e.g. the commands and seed), recorded in "
                        "bundle.json and shown by `ifvit inspect`")


def run(args: argparse.Namespace) -> int:
    from ifvit_data.outputs import OutputError, atomic_path, claim_output_dir
    from ifvit_train.serving.bundle import BundleError, export_bundle

    check_new_bundle_folder(args.out, args.bundle)
    try:
        with atomic_path(args.out) as tmp:
            claim_output_dir(tmp, "bundle-export", inputs=[args.bundle], resume=False)
            meta = export_bundle(args.bundle, tmp, recipe=args.recipe)
    except (OutputError, BundleError) as e:
        raise UserError(str(e)) from None
    print(f"exported {meta['kind']} bundle (step {meta['step']}) -> {args.out}; "
          f"weights sha256 {meta['weights_sha256'][:12]}")
    return 0
