"""`ifvit calibrate`: a bundle's decision score and thresholds fitted to validation prints."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import add_model_argument, check_new_bundle_folder, model_path

HELP = "fit a bundle's thresholds (and Module 1 evidence weight) to your validation prints"
DESCRIPTION = """\
Write a copy of a Module 2 bundle whose decision thresholds (FMR 1% / 0.1% / 0.01%) and decision
score are calibrated on `ifvit evaluate` outputs of YOUR validation prints (your sensors), instead
of the synthetic held-out fingers the model was trained with. Nothing is trained; the weights are
the same.

The decision score is IFViT's fused cosine weighted by Module 1's geometric evidence,
score = (1 + cosine) / 2 * n / (n + k), n = RANSAC inliers of the dense matches (k = 0: the paper's
score, the cosine alone). k is the value of the grid 0, 2.5, 5, ..., 640 with the lowest mean EER
over the given evaluations, or --evidence-k. Each evaluation must have been made with this --model
(a verification protocol: baselines, fvc or all-pairs). Never calibrate on the prints you report
accuracy on. bundle.json records the sets, the EER of every k and the choice (`ifvit inspect`).
--out must not exist yet (or be an empty folder); it is written atomically."""
EPILOG = """\
examples:
  ifvit evaluate --data val/sensorA --protocol baselines --out eval/A     # the shipped model
  ifvit evaluate --data val/sensorB --protocol baselines --out eval/B
  ifvit calibrate --eval eval/A eval/B --out models/calibrated
  ifvit match --model models/calibrated a.png b.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_argument(p)
    p.add_argument("--eval", type=Path, nargs="+", required=True, metavar="DIR",
                   help="`ifvit evaluate --model MODEL` output folders of validation prints")
    p.add_argument("--out", type=Path, required=True, help="new folder for the calibrated bundle")
    p.add_argument("--evidence-k", type=float, default=None,
                   help="fix k (>= 0; 0 = the paper's score) instead of choosing it on the grid")


def run(args: argparse.Namespace) -> int:
    from ifvit_data.outputs import OutputError, atomic_path, claim_output_dir
    from ifvit_train.evaluation.calibrate import CalibrationError, calibrate_bundle
    from ifvit_train.serving.bundle import BundleError

    src = model_path(args.model)
    if args.evidence_k is not None and not args.evidence_k >= 0:
        raise UserError(f"--evidence-k {args.evidence_k}: must be a number >= 0")
    check_new_bundle_folder(args.out, src)
    try:
        with atomic_path(args.out) as tmp:
            claim_output_dir(tmp, "bundle-calibrate", inputs=[src, *args.eval], resume=False)
            meta = calibrate_bundle(src, tmp, args.eval, evidence_k=args.evidence_k)
    except (OutputError, BundleError, CalibrationError) as e:
        raise UserError(str(e)) from None
    cal = meta["calibration"]
    k = f"{cal['evidence_k']:g}"
    print("mean EER by evidence k: " + ", ".join(f"{g} {100 * v:.2f}%"
                                                for g, v in cal["mean_eer_by_k"].items()))
    for s in cal["sets"]:
        eer = 100 * s["eer_by_k"][k]
        print(f"  {s['evaluation']}: {s['genuine']} genuine / {s['impostor']} impostor pairs, EER "
              f"{eer:.2f}% at k {k}")
    th = ", ".join(f"{k} {v:.4f}" for k, v in meta["thresholds"].items() if isinstance(v, float))
    print(f"calibrated bundle -> {args.out}: evidence k {cal['evidence_k']:g} "
          f"({cal['chosen_by']}); thresholds {th}")
    return 0
