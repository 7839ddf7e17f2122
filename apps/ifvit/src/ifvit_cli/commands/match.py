"""`ifvit match`: 1:1 verification of two prints with their evidence (the correspondences)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ifvit_cli.errors import UserError

HELP = "verify two prints: score, decision, alignment and correspondences (JSON, picture)"
DESCRIPTION = """\
Score two fingerprint images with a Module 2 model bundle (`ifvit train match|all` output).

Each image is read (TIFF/BMP/PNG/JPEG; grey or colour), resampled to 500 ppi (dpi from the file,
or --dpi) and prepared exactly as in training (the model-input window at the print's foreground
centroid). Prints: the fused score, the global and ROI branch cosines, a decision at each threshold
stored in the bundle (calibrated on held-out impostor scores), the alignment (rotation, scale,
translation, RANSAC inliers) and the number of correspondences. --json prints everything, with
every correspondence (Module 1 and both branches) in the pixel coordinates of YOUR two files.
--viz draws both prints side by side with the Module 1 correspondences coloured by confidence."""
EPILOG = """\
examples:
  ifvit match --model runs/m/match 101_1.tif 101_2.tif
  ifvit match --model runs/m/match a.png b.png --json > result.json
  ifvit match --model runs/m/match a.png b.png --viz matches.png
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image0", type=Path, help="first print (image file)")
    p.add_argument("image1", type=Path, help="second print (image file)")
    p.add_argument("--model", type=Path, required=True,
                   help="Module 2 model bundle (no model is shipped yet: train one with `ifvit train all`)")
    p.add_argument("--dpi", type=float, default=None, help="resolution of both files (default: metadata, else 500)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--viz", type=Path, default=None, help="write a PNG of the correspondences")
    p.add_argument("--force", action="store_true", help="overwrite an existing --viz file")


def run(args: argparse.Namespace) -> int:
    from ifvit_data.imagefile import ImageReadError
    from ifvit_data.outputs import OutputError, check_output_file

    for path in (args.image0, args.image1):
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    if args.viz is not None:
        if args.viz.suffix.lower() != ".png":
            raise UserError(f"--viz {args.viz}: give a .png path")
        try:
            check_output_file(args.viz, inputs=[args.image0, args.image1, args.model], force=args.force)
        except OutputError as e:
            raise UserError(str(e)) from None
    from ifvit_train.bundle import BundleError, load_bundle
    from ifvit_train.infer import Verifier

    try:
        verifier = Verifier(load_bundle(args.model, require="match"))
        a, b = verifier.prepare(args.image0, args.dpi), verifier.prepare(args.image1, args.dpi)
    except (BundleError, ImageReadError, ValueError) as e:
        raise UserError(str(e)) from None
    result = verifier.verify(a, b)
    if args.viz is not None:
        from ifvit_cli.viz import plot_matches
        import numpy as np

        m = result["correspondences"]["module1"]
        pts0 = np.array([[c["x0"], c["y0"]] for c in m]).reshape(-1, 2)
        pts1 = np.array([[c["x1"], c["y1"]] for c in m]).reshape(-1, 2)
        conf = np.array([c["confidence"] for c in m])
        plot_matches(a.image / 255.0, b.image / 255.0, pts0, pts1, conf, args.viz,
                     title=f"score {result['score']:.3f}, {len(m)} Module 1 correspondences")
        result["viz"] = str(args.viz)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    al = result["alignment"]
    dec = ", ".join(f"{k}: {'accept' if v else 'reject'}" for k, v in result["decision"].items())
    n = {k: len(v) for k, v in result["correspondences"].items()}
    print(f"score {result['score']:.4f} (global {result['cos_global']:.4f}, ROI {result['cos_local']:.4f})")
    print(f"decision {dec or 'no thresholds in the bundle'}")
    print(f"alignment {'ok' if al['ok'] else 'failed (identity used)'}: rotation {al['rotation_deg']:.1f} deg, "
          f"scale {al['scale']:.3f}, translation ({al['translation'][0]:.1f}, {al['translation'][1]:.1f}) px, "
          f"{al['inliers']} inliers")
    print(f"correspondences: Module 1 {n['module1']}, global branch {n['global']}, ROI branch {n['local']}"
          + (f"; picture {args.viz}" if args.viz else "; --json lists them in your images' pixels"))
    return 0
