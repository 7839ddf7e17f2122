"""`ifvit enroll`: a folder of prints -> a gallery of per-print templates (for `ifvit identify`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import add_model_argument, model_path

HELP = "prints -> a gallery of per-print templates for 1:N search"
DESCRIPTION = """\
Enrol every print of a folder into a gallery with a Module 2 model bundle: each file is prepared
as in training (500 ppi, the model window at the foreground centroid) and turned into one
fixed-length template from that print alone (single-image mode of both Module 2 branches,
`ifvit_core.ifvit.embed_images`). Identities come from the file names (--layout fvc: F_I.png,
identity F; --layout folder: subject/.../file, identity = parent folder).

The gallery folder holds gallery.json (format, model hash, preprocessing, one entry per print with
its file path and quality) and the templates as a .npy file (no pickle). Unreadable files are
skipped and counted, and so are prints below the quality floor (`ifvit_data.quality`: blank,
uniform, noise, not a fingerprint: a failure to acquire) unless --allow-low-quality. Never
overwrites: --out must be a new or empty folder; an earlier gallery or any other
folder needs --force (other files are kept). Search it with `ifvit identify`."""
EPILOG = """examples:
  ifvit enroll --model runs/m/match --data prints/ --out gallery/
  ifvit enroll --model runs/m/match --data people/ --layout folder --out gallery/ --batch 16
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p)
    p.add_argument("--data", type=Path, required=True,
                   help="folder of prints (searched recursively)")
    p.add_argument("--layout", choices=("fvc", "folder"), default="fvc",
                   help="file naming: fvc (F_I.png, default) or folder (subject/.../file)")
    p.add_argument("--out", type=Path, required=True, help="new gallery folder")
    p.add_argument("--dpi", type=float, default=None,
                   help="resolution of every file (default: metadata, else 500)")
    p.add_argument("--batch", type=int, default=8, help="prints per forward pass (default 8)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder or replace a gallery")
    p.add_argument("--allow-low-quality", action="store_true",
                   help="enrol prints below the quality floor too (default: skipped as failures "
                        "to acquire; gallery.json marks them \"acquired\": false)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ifvit_data.readers import DatasetError, scan

    if args.batch < 1:
        raise UserError(f"--batch {args.batch}: must be at least 1")
    if args.dpi is not None:
        from ifvit_data.imagefile import check_dpi

        if (reason := check_dpi(args.dpi, "--dpi")) is not None:
            raise UserError(f"{reason}; give the scan resolution, e.g. --dpi 500")
    try:
        entries, skipped = scan(args.data, args.layout)
    except DatasetError as e:
        raise UserError(str(e)) from None
    if not entries:
        raise UserError(f"{args.data}: no print named like the {args.layout} layout "
                        f"({len(skipped.files)} other image files); check --layout")
    from ifvit_data.outputs import OutputError, check_output_dir
    from ifvit_train.serving.bundle_meta import BundleError, read_meta

    try:
        args.model = model_path(args.model)
        read_meta(args.model)
        check_output_dir(args.out, "gallery", inputs=[args.data, args.model],
                         force=args.force, resume=False)  # as `gallery.enroll` claims it
    except (BundleError, OutputError) as e:
        raise UserError(str(e)) from None
    from ifvit_train.serving.bundle import load_bundle  # jax: after every quick refusal
    from ifvit_train.serving.gallery import Enrolee, GalleryError, enroll

    try:
        bundle = load_bundle(args.model, require="match")
    except BundleError as e:
        raise UserError(str(e)) from None
    from tqdm import tqdm

    bar: list[tqdm] = []  # made at the first file, after the output folder was accepted

    def progress(done: int) -> None:
        if not bar:
            bar.append(tqdm(total=len(entries), desc="enroll", unit="print", disable=args.quiet,
                            leave=False))
        bar[0].update(done - bar[0].n)

    try:
        gallery, bad = enroll(bundle, [Enrolee(e.path, e.subject, e.impression) for e in entries],
                              args.out, inputs=[args.data, args.model], dpi=args.dpi,
                              batch_size=args.batch, force=args.force,
                              allow_low_quality=args.allow_low_quality, progress=progress)
    except GalleryError as e:
        raise UserError(str(e)) from None
    finally:
        if bar:
            bar[0].close()
    n_ids = len({e["subject"] for e in gallery.entries})
    print(f"{args.out}: {len(gallery)} templates of {n_ids} identities "
          f"({gallery.templates.shape[1]} values each), model "
          f"{gallery.meta['model']['sha256'][:12]}")
    for path, reason in bad[:5]:
        print(f"skipped {path}: {reason}")
    if len(bad) > 5:
        print(f"... {len(bad) - 5} more skipped")
    return 0
