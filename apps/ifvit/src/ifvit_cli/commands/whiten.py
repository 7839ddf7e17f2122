"""`ifvit whiten`: a bundle's embedding neck re-estimated on unlabelled prints of your sensors."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import add_model_argument, check_new_bundle_folder, load_model

HELP = "adapt a bundle's embeddings and templates to your sensors (whitening)"
DESCRIPTION = """\
Write a copy of a Module 2 bundle whose embedding necks are re-estimated on prints of YOUR sensors.

1. Pairwise neck: the pre-neck embeddings of pairs of the given folders (no identity label is
   used) give each branch a mean and a PCA whitening, folded into the network (same architecture,
   same speed). Module 2's cosines then spread over the embedding instead of collapsing onto a few
   directions, which is what makes the fused cosine work on sensors the model was not trained on
   (docs/accuracy.md). The thresholds and the evidence weight of the source were fitted to the old
   cosines and are dropped: run `ifvit calibrate` on the new bundle. With --pairs-neck
   within-finger the folders' finger labels are used as in step 2 (slightly better on held-out
   sets when the folders hold several impressions per finger; docs/accuracy.md).
2. Template neck (1:N templates only): every print of the folders alone, with its finger label
   from the layout (a finger of one folder is one identity), gives a whitening by the
   within-finger covariance, so what differs between impressions of one finger weighs least in
   the template cosine; the templates then weigh the global branch 0.85 (the single print's ROI is
   another part of the finger in each impression). Both defaults were chosen by leaving one
   training set out (docs/search.md).

--templates-only fits step 2 alone: pairwise scores, thresholds and calibration are kept. Never
give the prints you report accuracy on. bundle.json records every folder by name and file hash
(`ifvit inspect`). --out must not exist yet (or be an empty folder); it is written atomically."""
EPILOG = """\
examples:
  ifvit whiten --data train/sensorA --data train/sensorB --out models/whitened
  ifvit whiten --data fvc2002_db2_b --dpi 569 --data fvc2002_db3_b --dpi 0 --out models/w
  ifvit whiten --templates-only --data train/sensorA --out models/with-templates
  ifvit evaluate --model models/whitened --data val/sensorA --protocol baselines --out eval/A
  ifvit calibrate --model models/whitened --eval eval/A --out models/ready
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p)
    p.add_argument("--data", type=Path, action="append", required=True, metavar="DIR",
                   help="a folder of prints of your sensor (repeat for several); at least two "
                        "fingers with two impressions each")
    p.add_argument("--layout", action="append", default=None,
                   help="file naming of the --data folders (default fvc): once for every --data, "
                        "or once per --data in the same order (e.g. --data A --layout fvc --data "
                        "B --layout folder)")
    p.add_argument("--dpi", type=float, action="append", default=None,
                   help="sensor resolution of the prints (default: the files' own, else 500): "
                        "once for every --data, or once per --data in the same order; 0 = the "
                        "files' own (e.g. --data A --dpi 569 --data B --dpi 0)")
    p.add_argument("--pairs", type=int, default=400, metavar="N",
                   help="pairs per folder (default 400: 800 vectors per folder and branch)")
    p.add_argument("--eps", type=float, default=1e-3,
                   help="eigenvalue floor relative to the largest (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="pair sampling seed (default 0)")
    p.add_argument("--pairs-neck", choices=("pca", "within-finger"), default="pca",
                   help="how the pairwise neck is fitted: pca (no labels, default) or "
                        "within-finger (uses the layout's finger labels)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--templates-only", action="store_true",
                       help="fit the template neck alone (keeps pairwise scores and thresholds)")
    which.add_argument("--no-templates", action="store_true",
                       help="fit the pairwise neck alone (no template neck)")
    p.add_argument("--template-eps", type=float, default=0.1,
                   help="the template neck's eigenvalue floor, relative to the largest "
                        "(default 0.1)")
    p.add_argument("--template-alpha", type=float, default=0.85,
                   help="the templates' global-branch weight, 0-1 (default 0.85)")
    p.add_argument("--out", type=Path, required=True, help="new folder for the whitened bundle")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ifvit_data.outputs import OutputError, atomic_path, claim_output_dir
    from ifvit_data.readers import DatasetError, scan

    if args.pairs < 1 or not 0 < args.eps < 1 or args.seed < 0:
        raise UserError(f"--pairs {args.pairs} / --eps {args.eps} / --seed {args.seed}: give "
                        "pairs >= 1, 0 < eps < 1 and seed >= 0")
    if not 0 < args.template_eps < 1 or not 0 <= args.template_alpha <= 1:
        raise UserError(f"--template-eps {args.template_eps} / --template-alpha "
                        f"{args.template_alpha}: give 0 < eps < 1 and 0 <= alpha <= 1")
    dpis = args.dpi or [0.0]
    if len(dpis) not in (1, len(args.data)) or any(not (d == 0 or 100 <= d <= 5000) for d in dpis):
        raise UserError(f"--dpi {' '.join(f'{d:g}' for d in dpis)}: give one value for all "
                        f"--data or one per --data ({len(args.data)}), each 0 (the files' own) or "
                        "100-5000")
    dpis = dpis * len(args.data) if len(dpis) == 1 else dpis
    layouts = args.layout or ["fvc"]
    if len(layouts) not in (1, len(args.data)):
        raise UserError(f"--layout {' '.join(layouts)}: give one for all --data or one per "
                        f"--data ({len(args.data)})")
    layouts = layouts * len(args.data) if len(layouts) == 1 else layouts
    if len({d.resolve() for d in args.data}) < len(args.data):
        raise UserError("--data: the same folder is given twice; give each folder once")
    for d, layout in zip(args.data, layouts, strict=True):
        if not d.is_dir():
            raise UserError(f"--data {d}: not a folder; pass the folder that holds the prints")
        try:
            scan(d, layout)
        except DatasetError as e:
            raise UserError(str(e)) from None
    verifier, src = load_model(args.model)
    check_new_bundle_folder(args.out, src)
    from tqdm import tqdm

    from ifvit_train.evaluation import evaluate as ev
    from ifvit_train.training import whiten as wh

    sets = []
    for d, dpi, layout in zip(args.data, dpis, layouts, strict=True):
        with tqdm(desc=f"prepare {d.name}", unit="print", disable=args.quiet) as bar:
            sets.append(ev.load_prints(verifier, d, layout, dpi=dpi or None,
                                       progress=bar.update))
    try:
        with tqdm(desc="embed pairs, then prints", unit="item", disable=args.quiet) as bar:
            fit, record = wh.whiten(
                verifier, sets, 0 if args.templates_only else args.pairs, args.eps, args.seed,
                progress=bar.update, dpis=dpis,
                template_eps=None if args.no_templates else args.template_eps,
                template_alpha=args.template_alpha, pairs_method=args.pairs_neck)
        with atomic_path(args.out) as tmp:
            claim_output_dir(tmp, "bundle-whiten", inputs=[src, *args.data], resume=False)
            meta = wh.whiten_bundle(verifier.bundle, fit, record, tmp)
    except (OutputError, ValueError) as e:
        raise UserError(str(e)) from None
    if fit.pairs is not None:
        print(f"pairwise neck whitened on {record['vectors_per_branch']} vectors per branch from "
              + ", ".join(f"{s['data']} ({s['pairs']} pairs)" for s in record["sets"]))
    if fit.templates is not None:
        t = record["templates"]
        print(f"template neck fitted on {t['prints']} prints of {t['fingers']} fingers "
              f"(template alpha {t['alpha']:g})")
    print(f"-> {args.out}; weights sha256 {meta['weights_sha256'][:12]}")
    if fit.pairs is not None:
        print(f"thresholds dropped (fitted to the old cosines): run `ifvit calibrate --model "
              f"{args.out} --eval ...` before using its decisions")
    return 0
