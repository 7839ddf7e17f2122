"""`ifvit inspect BUNDLE`: what a model bundle holds and how it was trained."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ifvit_cli.errors import UserError

HELP = "show a model bundle: config, step, parameter groups, data, provenance"
DESCRIPTION = "Print what a model bundle (an `ifvit train` workdir) holds, without loading weights."
EPILOG = """\
examples:
  ifvit inspect runs/m/match
  ifvit inspect runs/m/dense --json
  ifvit inspect                      # the shipped model: how it was trained, its thresholds
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, nargs="?", default=None,
                   help="the bundle folder (default: the model shipped with ifvit)")
    p.add_argument("--json", action="store_true", help="print bundle.json as is")


def run(args: argparse.Namespace) -> int:
    from ifvit_cli.model import model_path
    from ifvit_train.serving.bundle import BundleError, read_meta
    from ifvit_train.serving.summary import bundle_summary

    args.bundle = model_path(args.bundle)
    try:
        m = read_meta(args.bundle)
    except BundleError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps(m, indent=1, sort_keys=True))
        return 0
    print("\n".join(bundle_summary(args.bundle, m)))
    return 0
