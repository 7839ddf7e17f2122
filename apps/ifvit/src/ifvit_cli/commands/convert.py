"""`ifvit convert`: LoFTR PyTorch checkpoint -> IFViT-JAX weights (safetensors + JSON sidecar).

The work is done by the ifvit-convert package (`ifvit_convert.cli.convert_command`), which needs
the `convert` extra (it pulls torch). This module only declares the flags and maps the package's
one-line errors to `UserError`.
"""

from __future__ import annotations

import argparse

from ifvit_cli.errors import UserError

HELP = "LoFTR PyTorch checkpoint -> IFViT-JAX weights"
DESCRIPTION = (
    "Convert a LoFTR PyTorch checkpoint (the Lightning .ckpt LoFTR releases, e.g. "
    "outdoor_ds.ckpt, or a bare state dict such as kornia's) into IFViT-JAX parameters: "
    "a torch-free .safetensors (or .npz) file plus a JSON sidecar (<out>.json) recording the "
    "model config, position-encoding variant, checkpoint kind, matching type and the source "
    "sha256. Every checkpoint key must be used exactly once and every model parameter filled, "
    "otherwise nothing is written. The output paths are checked before the checkpoint is read: an "
    "existing file is never replaced without --force, and the checkpoint itself never. Needs the "
    "`convert` extra (torch, and kornia for --verify)."
)
EPILOG = """example:
  ifvit convert --ckpt weights/outdoor_ds.ckpt --out weights/loftr_outdoor.safetensors --verify

then start Module 1 from it (torch-free):
  ifvit train dense --init-loftr weights/loftr_outdoor.safetensors ...

install the extra first:  uv sync --extra convert   (or: pip install 'ifvit[convert]')"""

_INSTALL = "`uv sync --extra convert` in the workspace, or `pip install 'ifvit[convert]'`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the flags of `ifvit convert`."""
    parser.add_argument(
        "--ckpt", required=True, help="LoFTR checkpoint (.ckpt Lightning file or state dict)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output weights file, .safetensors (default when no suffix) or .npz; sidecar "
             "is <out>.json",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also run kornia's PyTorch LoFTR and the converted JAX model on a random "
        "pair and print max abs differences; exit 1 if they differ (kornia comes with "
        "the `convert` extra; without it, exit 2 before converting)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing output file and its sidecar",
    )
    parser.add_argument(
        "--prefix",
        default=None,
        help="key prefix to strip (default: detected; 'matcher.' for LoFTR's Lightning files, "
             "'' for bare)",
    )
    parser.add_argument(
        "--kind",
        choices=("outdoor", "indoor", "unknown"),
        default=None,
        help="what the checkpoint was trained on, recorded in the sidecar (default: from "
        "the file name; weights alone cannot tell)",
    )
    parser.add_argument(
        "--pos-enc",
        choices=("buggy", "fixed"),
        default=None,
        help="position-encoding variant the checkpoint was trained with (default: 'fixed' "
        "for LoFTR's *_new files, else 'buggy' as outdoor_ds.ckpt)",
    )
    parser.add_argument(
        "--preset",
        default="paper",
        help="ifvit-core preset whose dimensions the weights must fit (default: paper = LoFTR's)",
    )
    parser.add_argument(
        "--verify-size",
        type=int,
        nargs=2,
        default=(128, 128),
        metavar=("H", "W"),
        help="size of the random verification pair, multiples of 8 (default: 128 128)",
    )


def run(args: argparse.Namespace) -> int:
    """Runs the conversion; returns the exit code (1 when --verify finds a difference)."""
    try:
        from ifvit_convert.cli import convert_command
        from ifvit_convert.errors import ConversionError, TorchMissingError
    except ImportError as e:
        raise UserError(
            f"`ifvit convert` needs the ifvit-convert package and torch ({e}); install "
            f"with {_INSTALL}"
        ) from None
    if any(v % 8 or not 32 <= v <= 2048 for v in args.verify_size):
        raise UserError(
            f"--verify-size {args.verify_size[0]} {args.verify_size[1]}: use multiples of 8 "
            "between 32 and 2048"
        )
    try:
        return convert_command(
            args.ckpt,
            args.out,
            verify=args.verify,
            prefix=args.prefix,
            kind=args.kind,
            pos_enc=args.pos_enc,
            preset=args.preset,
            verify_size=tuple(args.verify_size),
            force=args.force,
        )
    except TorchMissingError:  # ifvit-convert installed without its torch extra
        raise UserError(
            f"{args.ckpt}: reading a PyTorch checkpoint needs torch, which is not installed; "
            f"install with {_INSTALL}"
        ) from None
    except ConversionError as e:
        raise UserError(str(e)) from None
