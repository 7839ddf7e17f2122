"""The --model flag shared by match, evaluate, enroll and identify: a bundle, or the shipped one."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError


def add_model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, default=None,
                   help="Module 2 model bundle (`ifvit train match|all` or `ifvit export` output; "
                        "default: the shipped small model, see `ifvit inspect`)")


def model_path(path: Path | None) -> Path:
    """The bundle folder to use: `path`, else the shipped model."""
    if path is not None:
        return path
    from ifvit_train.serving.shipped import shipped_bundle

    shipped = shipped_bundle()
    if shipped is None:
        raise UserError("no --model given and this installation has no shipped model; "
                        "pass --model (train one with `ifvit train all`)")
    return shipped


def load_model(path: Path | None, untrained: bool = False):
    """(Verifier, bundle path) of a Module 2 bundle; one-line UserError when it cannot be used.

    untrained: score with the network Module 2 training started from
    (`ifvit_train.serving.bundle.untrained`).
    """
    from ifvit_train.serving.bundle import BundleError, load_bundle
    from ifvit_train.serving.bundle import untrained as reset
    from ifvit_train.serving.infer import Verifier

    path = model_path(path)
    try:
        b = load_bundle(path, require="match")
        return Verifier(reset(b) if untrained else b), path
    except (BundleError, ValueError) as e:
        raise UserError(str(e)) from None


def check_new_bundle_folder(out: Path, src: Path) -> None:
    """--out of a command that writes a new bundle from `src`: must be new (or an empty folder) and
    outside `src`; a one-line UserError otherwise (nothing is ever overwritten)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: exists and is not an empty folder; give a new folder "
                        "(nothing is overwritten)")
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise UserError(f"--out {out}: inside the source bundle; give a folder elsewhere")
