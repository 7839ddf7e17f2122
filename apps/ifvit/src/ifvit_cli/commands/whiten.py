"""`ifvit whiten`: a bundle's embedding neck re-estimated on unlabelled prints of your sensors."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import add_model_argument, check_new_bundle_folder, load_model

HELP = "adapt a bundle's embeddings to your sensors from unlabelled prints (PCA whitening)"
DESCRIPTION = """\
Write a copy of a Module 2 bundle whose embedding neck is re-estimated on prints of YOUR sensors:
the pre-neck embeddings of pairs of the given folders (no identity label is used) give each branch
a mean and a PCA whitening, folded into the network (same architecture, same speed). Module 2's
cosines then spread over the embedding instead of collapsing onto a few directions, which is what
makes the fused cosine and the 1:N templates work on sensors the model was not trained on
(docs/accuracy.md). The thresholds and the evidence weight of the source were fitted to the old
cosines and are dropped: run `ifvit calibrate` on the new bundle. Never give the prints you report
accuracy on. bundle.json records every folder by name and file hash (`ifvit inspect`). --out must
not exist yet (or be an empty folder); it is written atomically."""
EPILOG = """\
examples:
  ifvit whiten --data train/sensorA --data train/sensorB --out models/whitened
  ifvit whiten --data fvc2002_db2_b --dpi 569 --data fvc2002_db3_b --dpi 0 --out models/w
  ifvit evaluate --model models/whitened --data val/sensorA --protocol baselines --out eval/A
  ifvit calibrate --model models/whitened --eval eval/A --out models/ready
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p)
    p.add_argument("--data", type=Path, action="append", required=True, metavar="DIR",
                   help="a folder of prints of your sensor (repeat for several); at least two "
                        "fingers with two impressions each")
    p.add_argument("--layout", default="fvc", help="file naming of every --data (default fvc)")
    p.add_argument("--dpi", type=float, action="append", default=None,
                   help="sensor resolution of the prints (default: the files' own, else 500): "
                        "once for every --data, or once per --data in the same order; 0 = the "
                        "files' own (e.g. --data A --dpi 569 --data B --dpi 0)")
    p.add_argument("--pairs", type=int, default=400, metavar="N",
                   help="pairs per folder (default 400: 800 vectors per folder and branch)")
    p.add_argument("--eps", type=float, default=1e-3,
                   help="eigenvalue floor relative to the largest (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="pair sampling seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="new folder for the whitened bundle")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ifvit_data.outputs import OutputError, atomic_path, claim_output_dir
    from ifvit_data.readers import DatasetError, scan

    if args.pairs < 1 or not 0 < args.eps < 1 or args.seed < 0:
        raise UserError(f"--pairs {args.pairs} / --eps {args.eps} / --seed {args.seed}: give "
                        "pairs >= 1, 0 < eps < 1 and seed >= 0")
    dpis = args.dpi or [0.0]
    if len(dpis) not in (1, len(args.data)) or any(not (d == 0 or 100 <= d <= 5000) for d in dpis):
        raise UserError(f"--dpi {' '.join(f'{d:g}' for d in dpis)}: give one value for all "
                        f"--data or one per --data ({len(args.data)}), each 0 (the files' own) or "
                        "100-5000")
    dpis = dpis * len(args.data) if len(dpis) == 1 else dpis
    if len({d.resolve() for d in args.data}) < len(args.data):
        raise UserError("--data: the same folder is given twice; give each folder once")
    for d in args.data:
        if not d.is_dir():
            raise UserError(f"--data {d}: not a folder; pass the folder that holds the prints")
        try:
            scan(d, args.layout)
        except DatasetError as e:
            raise UserError(str(e)) from None
    verifier, src = load_model(args.model)
    check_new_bundle_folder(args.out, src)
    from tqdm import tqdm

    from ifvit_train import evaluate as ev
    from ifvit_train import whiten as wh

    sets = []
    for d, dpi in zip(args.data, dpis, strict=True):
        with tqdm(desc=f"prepare {d.name}", unit="print", disable=args.quiet) as bar:
            sets.append(ev.load_prints(verifier, d, args.layout, dpi=dpi or None,
                                       progress=bar.update))
    try:
        with tqdm(desc="embed", unit="pair", disable=args.quiet) as bar:
            whitening, record = wh.whiten(verifier, sets, args.pairs, args.eps, args.seed,
                                          progress=bar.update, dpis=dpis)
        with atomic_path(args.out) as tmp:
            claim_output_dir(tmp, "bundle-whiten", inputs=[src, *args.data], resume=False)
            meta = wh.whiten_bundle(verifier.bundle, whitening, record, tmp)
    except (OutputError, ValueError) as e:
        raise UserError(str(e)) from None
    w = meta["whitened"]
    print(f"whitened on {w['vectors_per_branch']} vectors per branch from "
          + ", ".join(f"{s['data']} ({s['pairs']} pairs)" for s in w["sets"])
          + f" -> {args.out}; weights sha256 {meta['weights_sha256'][:12]}")
    print(f"thresholds dropped (fitted to the old cosines): run `ifvit calibrate --model "
          f"{args.out} --eval ...` before using its decisions")
    return 0
