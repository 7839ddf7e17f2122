"""`ifvit ingest`: a folder of fingerprint images -> ArrayRecord shards + manifest.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError

HELP = "images -> ArrayRecord shards + manifest.json"
DESCRIPTION = """\
Read a fingerprint dataset folder (FVC, NIST SD4/SD300/SD301/SD302, or subject/... folders),
resample every print to 500 ppi 8-bit gray and write sharded ArrayRecord files plus manifest.json
(schema version, counts, fields, shards, per-record finger/impression index).
Files read: .tif .tiff .bmp .png .wsq (fvc), .png (nist-*), and for folder also .jpg .jpeg .pgm;
WSQ is decoded by the `wsq` package (NIST NBIS). Other files are counted as ignored.
Unreadable files, implausible resolutions and sizes are reported and skipped with the reason (or
abort with --strict); the counts are printed. Re-running with the same input is a no-op.

Never overwrites: --out may not be the input, inside it or contain it; it must be a new or empty
folder, or an earlier `ifvit ingest` output (recognised by its .ifvit-output.json marker, not by
a manifest.json). --force writes into another non-empty folder, replacing only files named like
the ones ingest writes (manifest.json, records-*.array_record) and deleting none of the others.
Shards are renamed into place when complete and the manifest is written last; Ctrl-C exits 130 and
leaves the previous output intact."""
EPILOG = """examples:
  ifvit ingest --input data/FVC2002 --layout fvc --out shards/fvc2002
  ifvit ingest --input sd302 --layout nist-sd302 --out shards/sd302 --records-per-shard 2048
  ifvit ingest --input scans --layout folder --dpi 1000 --out shards/scans --strict
  ifvit ingest --input data/FVC2002 --layout fvc --out existing_folder --force
"""

LAYOUT_CHOICES = ("fvc", "nist-sd4", "nist-sd300", "nist-sd301", "nist-sd302", "folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the flags of `ifvit ingest`."""
    parser.add_argument(
        "--input", required=True, type=Path, help="dataset folder (searched recursively)"
    )
    parser.add_argument(
        "--layout", required=True, choices=LAYOUT_CHOICES, help="file naming convention"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output folder for shards + manifest.json"
    )
    parser.add_argument(
        "--dpi",
        type=float,
        default=None,
        help="resolution of every input image (default: file metadata, the file name, else 500)",
    )
    parser.add_argument("--strict", action="store_true", help="abort on the first unreadable file")
    parser.add_argument(
        "--records-per-shard",
        type=int,
        default=1024,
        metavar="N",
        help="records per ArrayRecord file (default 1024)",
    )
    parser.add_argument(
        "--pattern",
        default=None,
        help="regex replacing the layout's file-name pattern (named groups subject, "
        "finger, frgp, impression, ppi)",
    )
    parser.add_argument(
        "--encoding",
        choices=("raw", "png"),
        default="raw",
        help="pixel storage: raw (default; compressed by ArrayRecord, about PNG size, "
        "~7x faster to read) or png",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out that is not an ifvit ingest output (other files are "
        "kept)",
    )


def run(args: argparse.Namespace) -> int:
    """Runs the ingest; returns 0 on success (skipped files are reported, not fatal)."""
    from tqdm import tqdm

    from ifvit_data.imagefile import check_dpi
    from ifvit_data.ingest import ingest
    from ifvit_data.readers import DatasetError
    from ifvit_data.shards import ShardError

    if args.dpi is not None and (reason := check_dpi(args.dpi, "--dpi")) is not None:
        raise UserError(f"{reason}; give the scan resolution of the images, e.g. --dpi 500")
    if not 1 <= args.records_per_shard <= 1_000_000:
        raise UserError(f"--records-per-shard {args.records_per_shard}: must be 1 to 1,000,000")
    bars: list[tqdm] = []  # created at the first record, after the input and output checks

    def on_record(_rec: dict) -> None:
        if not bars:
            bars.append(tqdm(unit="img", desc="ingest", disable=args.quiet, leave=False))
        bars[0].update(1)

    try:
        result, reader = ingest(
            args.input,
            args.layout,
            args.out,
            dpi=args.dpi,
            strict=args.strict,
            records_per_shard=args.records_per_shard,
            pattern=args.pattern,
            encoding=args.encoding,
            on_record=on_record,
            force=args.force,
        )
    except (DatasetError, ShardError) as e:
        raise UserError(str(e)) from None
    finally:
        for bar in bars:
            bar.close()
    m = result.manifest
    c = m["counts"]
    for rel, reason in reader.skipped.files:
        print(f"skipped {rel}: {reason}")
    state = "already up to date" if result.reused else "wrote"
    print(
        f"ifvit ingest: {state} {args.out}: {c['records']} records, {c['fingers']} fingers, "
        f"{c['subjects']} subjects in {len(m['shards'])} shard(s); skipped {c['skipped']} "
        f"bad file(s), ignored {c['ignored']} non-image file(s)"
    )
    return 0
