"""`ifvit synth`: SFinGe-style synthetic fingerprints in an FVC-style folder with a manifest."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from ifvit_cli.errors import UserError

HELP = "generate synthetic fingerprints (FVC naming, manifest)"
DESCRIPTION = """\
Generate synthetic fingerprints (SFinGe-style: orientation model, Gabor ridge growth, impressions
with plastic distortion, noise, rotation and translation). Writes {finger}_{impression}.png
(8-bit gray, 500 dpi, fingers and impressions numbered from 1) and manifest.json (seed, config,
class, singular points and the master-to-image affine of every image). Output depends only on
the seed and the flags, not on --workers. Re-running with the same flags over a complete output
does nothing."""
EPILOG = """examples:
  ifvit synth --out data/synth --fingers 100 --impressions 8 --seed 0
  ifvit synth --out /tmp/s --fingers 4 --impressions 4 --seed 1 --size 388x374 \\
      --contact-sheet /tmp/s.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the flags of `ifvit synth`."""
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--fingers", required=True, type=int, metavar="N", help="fingers (>= 1)")
    parser.add_argument(
        "--impressions", required=True, type=int, metavar="K", help="impressions per finger (>= 1)"
    )
    parser.add_argument("--seed", required=True, type=int, metavar="S", help="dataset seed (>= 0)")
    parser.add_argument(
        "--size", default="300x300", metavar="HxW", help="sensor size in pixels (default 300x300)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N", help="processes (default: CPU count)"
    )
    parser.add_argument(
        "--contact-sheet",
        type=Path,
        default=None,
        metavar="PATH",
        help="also save a PNG grid of up to 16 images (4 fingers x 4 impressions)",
    )


def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"--size {text!r}: expected HxW such as 300x300")
    h, w = int(m.group(1)), int(m.group(2))
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise UserError(f"--size {text!r}: height and width must be between 32 and 4096 pixels")
    return h, w


def _validate(args: argparse.Namespace) -> tuple[int, int]:
    """Checks every flag before anything is written; returns the size."""
    if args.fingers < 1:
        raise UserError(f"--fingers {args.fingers}: must be at least 1")
    if args.impressions < 1:
        raise UserError(f"--impressions {args.impressions}: must be at least 1")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed}: must be a non-negative integer")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers {args.workers}: must be at least 1")
    size = _parse_size(args.size)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder; choose a folder path")
    if args.contact_sheet is not None:
        sheet: Path = args.contact_sheet
        if sheet.is_dir():
            raise UserError(f"--contact-sheet {sheet}: is a folder; give a .png file path")
        if not sheet.parent.is_dir():
            raise UserError(f"--contact-sheet {sheet}: folder {sheet.parent} does not exist")
    return size


def _contact_sheet(out: Path, fingers: int, impressions: int, path: Path) -> None:
    import numpy as np
    from PIL import Image

    from ifvit_data.synth import contact_sheet

    nf, ni = min(4, fingers), min(4, impressions)
    imgs = []
    for f in range(1, nf + 1):
        for k in range(1, ni + 1):
            with Image.open(out / f"{f}_{k}.png") as im:
                imgs.append(np.asarray(im.convert("L")))
    contact_sheet(imgs, ni, path)


def run(args: argparse.Namespace) -> int:
    """Generates the dataset; returns the exit code."""
    size = _validate(args)
    from tqdm import tqdm

    from ifvit_data.synth import SynthConfig, generate_dataset
    from ifvit_data.synth.dataset import MANIFEST_NAME, check_output

    cfg = SynthConfig(size=size)
    out: Path = args.out
    manifest_path = out / MANIFEST_NAME
    try:
        check_output(out, args.fingers, args.impressions, args.seed, cfg)
    except FileExistsError as e:
        raise UserError(f"--out {out}: {e}; choose an empty folder or the same flags") from e
    total = args.fingers * args.impressions
    t0 = time.perf_counter()
    with tqdm(total=total, unit="img", desc="synth", leave=False) as bar:

        def progress(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        try:
            generate_dataset(
                out, args.fingers, args.impressions, args.seed, cfg,
                workers=args.workers, progress=progress,
            )
        except (FileExistsError, NotADirectoryError, PermissionError) as e:
            raise UserError(f"--out {out}: {e}; choose another folder") from e
    dt = time.perf_counter() - t0
    if args.contact_sheet is not None:
        _contact_sheet(out, args.fingers, args.impressions, args.contact_sheet)
    extra = f", contact sheet {args.contact_sheet}" if args.contact_sheet else ""
    print(
        f"synth: {total} images ({args.fingers} fingers x {args.impressions} impressions, "
        f"{size[0]}x{size[1]}) in {out} in {dt:.1f} s; manifest {manifest_path}{extra}"
    )
    return 0
