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
does nothing.

--realism full (default) is generator 2.0: partial and off-centre contact, strong plastic
distortion, dry/wet ridge fragmentation, creases, scratches, FVC2002 ridge density. --realism plain
turns those off or back to generator 1.x values (less translation and contact shift, larger
contact, 1.x distortion and ridge period, no fragmentation, creases or scratches), for an ablation
of what the realism is worth; what it cannot turn off (flow variety, skin grain, contact-edge
thinning, sensor grey levels) is listed in `ifvit_data.synth.config`. The manifest's config records
the preset ("realism"), so changing it over an existing set needs --force like any other flag.

Never overwrites: --out must be a new or empty folder, or an earlier `ifvit synth` output (it
carries a .ifvit-output.json marker); a folder with other files, or with a synthetic set of other
flags, is refused unless --force (which replaces files of the names synth writes and deletes no
others, except the images of the earlier synthetic set that the new one does not have). The
--contact-sheet file is never replaced without --force. Ctrl-C stops the workers and exits 130;
images are renamed into place only when complete."""
EPILOG = """examples:
  ifvit synth --out data/synth --fingers 100 --impressions 8 --seed 0
  ifvit synth --out /tmp/s --fingers 4 --impressions 4 --seed 1 --size 388x374 \\
      --contact-sheet /tmp/s.png
  ifvit synth --out data/plain --fingers 300 --impressions 8 --seed 0 --realism plain
  ifvit synth --out data/synth --fingers 100 --impressions 8 --seed 1 --force   # replace a set
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
        "--realism",
        choices=("full", "plain"),
        default="full",
        help="full: generator 2.0's realistic impressions (default); plain: realism features off "
        "or at generator 1.x values (see above)",
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
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out that is not this synthetic set, and replace an existing "
        "--contact-sheet (files of other names are never deleted)",
    )


def _parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"--size {text!r}: expected HxW such as 300x300")
    h, w = int(m.group(1)), int(m.group(2))
    if not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise UserError(f"--size {text!r}: height and width must be between 32 and 4096 pixels")
    return h, w


MAX_FINGERS = 1_000_000
MAX_IMPRESSIONS = 1_000
MAX_SEED = 2**63 - 1
MAX_IMAGES = 10_000_000


def _validate(args: argparse.Namespace) -> tuple[int, int]:
    """Checks every flag and the output paths before anything is written; returns the size."""
    if not 1 <= args.fingers <= MAX_FINGERS:
        raise UserError(f"--fingers {args.fingers}: must be between 1 and {MAX_FINGERS:,}")
    if not 1 <= args.impressions <= MAX_IMPRESSIONS:
        raise UserError(
            f"--impressions {args.impressions}: must be between 1 and {MAX_IMPRESSIONS}"
        )
    if args.fingers * args.impressions > MAX_IMAGES:
        raise UserError(
            f"--fingers {args.fingers} x --impressions {args.impressions}: more than "
            f"{MAX_IMAGES:,} images; generate the set in parts (different --out and --seed)"
        )
    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed {args.seed}: must be an integer between 0 and 2**63 - 1")
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise UserError(f"--workers {args.workers}: must be between 1 and 256")
    size = _parse_size(args.size)
    from ifvit_data.outputs import check_output_file

    if args.contact_sheet is not None:
        sheet: Path = args.contact_sheet
        if sheet.suffix.lower() != ".png":
            raise UserError(f"--contact-sheet {sheet}: give a file name ending in .png")
        if args.out.resolve() in sheet.resolve().parents:
            raise UserError(
                f"--contact-sheet {sheet}: is inside --out {args.out}; put it elsewhere"
            )
        check_output_file(sheet, inputs=[args.out], force=args.force)
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
    from ifvit_data.synth.dataset import MANIFEST_NAME

    cfg = SynthConfig.preset(args.realism, size=size)
    out: Path = args.out
    manifest_path = out / MANIFEST_NAME
    total = args.fingers * args.impressions
    t0 = time.perf_counter()
    bars: list[tqdm] = []  # created at the first progress report, after the output checks

    def progress(done: int, _total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="img", desc="synth", leave=False))
        bars[0].update(done - bars[0].n)

    try:
        generate_dataset(
            out, args.fingers, args.impressions, args.seed, cfg,
            workers=args.workers, progress=progress, force=args.force,
        )
    finally:
        for bar in bars:
            bar.close()
    dt = time.perf_counter() - t0
    if args.contact_sheet is not None:
        _contact_sheet(out, args.fingers, args.impressions, args.contact_sheet)
    extra = f", contact sheet {args.contact_sheet}" if args.contact_sheet else ""
    print(
        f"synth: {total} images ({args.fingers} fingers x {args.impressions} impressions, "
        f"{size[0]}x{size[1]}, realism {cfg.realism}) in {out} in {dt:.1f} s; "
        f"manifest {manifest_path}{extra}"
    )
    return 0
