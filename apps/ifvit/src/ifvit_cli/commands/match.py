"""`ifvit match`: 1:1 verification of two prints with their evidence (the correspondences)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_cli.model import add_model_argument, load_model
from ifvit_cli.model import model_path as bundle_path

MAX_BATCH = 256  # pairs per compiled call: 256 whole-print pairs hold ~0.5 GiB of windows
HELP = "verify two prints: score, decision, alignment and correspondences (JSON, picture)"
DESCRIPTION = """\
Score two fingerprint images with a Module 2 model bundle (`ifvit train match|all` output).

Each image is read (TIFF/BMP/PNG/JPEG/PGM, grey or colour; WSQ via the `wsq` package), resampled
to 500 ppi (dpi from the file, or --dpi) and prepared exactly as in training (the model-input window
at the print's foreground centroid). Prints: the score (the fused cosine of the global and ROI
branches; in a bundle made by `ifvit calibrate`, weighted by Module 1's RANSAC inliers n as
(1 + cosine) / 2 * n / (n + k)), both branch cosines, a decision at each threshold stored in the
bundle (calibrated on held-out impostor scores), the alignment (rotation, scale, translation, RANSAC
inliers) and the number of correspondences. --json prints everything, with every correspondence
(Module 1 and both branches) in the pixel coordinates of YOUR two files; each Module 1
correspondence says whether RANSAC kept it ("inlier") and its "residual_px", the distance in
image 1's pixels from where the fitted alignment puts its image-0 point. --viz draws both prints
side by side with the Module 1 inliers coloured by confidence and the outliers dashed red, and
image 1 aligned onto image 0 with the overlap (global branch) and the ROI outlined.

Many pairs: --pairs FILE --out scores.csv scores every pair listed in FILE (one pair per line,
two image paths separated by whitespace or a comma, "double quotes" around a path with spaces,
commas or #; UTF-8 with or without BOM; relative paths are relative to FILE's folder; '#' starts a
comment), each image prepared once and --batch pairs per compiled call. scores.csv has
one row per pair: the fused score, both branch cosines, RANSAC inliers, the alignment, the
decision at each bundle threshold and each print's quality. An unreadable image fails its pairs
(empty score), not the run.

Every image gets a quality check first (`ifvit_data.quality`: is there a fingerprint at all?). An
image below the floor (blank, uniform, noise, text, a photo) is a failure to acquire: it is never
scored; one pair says so in one line and exits 2 (--json: the result has "acquired": false for
that print and no score), --pairs leaves its pairs' scores empty.
Without --model the shipped small model is used."""
EPILOG = """\
examples:
  ifvit match --model runs/m/match 101_1.tif 101_2.tif
  ifvit match --model runs/m/match a.png b.png --json > result.json
  ifvit match --model runs/m/match a.png b.png --viz matches.png
  ifvit match --pairs pairs.txt --out scores.csv          # the shipped model, many pairs
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image0", type=Path, nargs="?", help="first print (image file)")
    p.add_argument("image1", type=Path, nargs="?", help="second print (image file)")
    add_model_argument(p)
    p.add_argument("--pairs", type=Path, default=None,
                   help="text file listing many pairs (see above)")
    p.add_argument("--out", type=Path, default=None, help="with --pairs: the scores.csv to write")
    p.add_argument("--batch", type=int, default=8,
                   help="with --pairs: pairs per compiled call (default 8)")
    p.add_argument("--dpi", type=float, default=None,
                   help="resolution of both files (default: metadata, else 500)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--viz", type=Path, default=None, help="write a PNG of the correspondences")
    p.add_argument("--force", action="store_true", help="overwrite an existing --viz / --out file")


def read_pairs(path: Path) -> list[tuple[Path, Path]]:
    """The pairs of a --pairs file (`ifvit_data.pairlist`), bad files as one-line errors."""
    from ifvit_data.pairlist import PairListError, read_pair_list

    try:
        return read_pair_list(path)
    except PairListError as e:
        raise UserError(f"--pairs {e}") from None


def run_pairs(args: argparse.Namespace) -> int:
    from ifvit_data.outputs import OutputError, atomic_write_text, check_output_file

    if args.image0 is not None or args.viz is not None or args.json:
        raise UserError("--pairs scores a list into --out; "
                        "do not also give images, --viz or --json")
    if args.out is None or args.out.suffix.lower() != ".csv":
        raise UserError("--pairs needs --out FILE.csv for the scores")
    if not 1 <= args.batch <= MAX_BATCH:
        raise UserError(f"--batch {args.batch}: give 1 to {MAX_BATCH} pairs per compiled call "
                        "(memory grows with it; the default 8 is fast on a CPU)")
    if not args.pairs.is_file():
        raise UserError(f"--pairs {args.pairs}: no such file")
    pairs = read_pairs(args.pairs)
    files = sorted({p for pair in pairs for p in pair})
    from ifvit_data.imagefile import image_file_problem

    bad = {f: f"{f}: {why}" for f in files if (why := image_file_problem(f)) is not None}
    src = bundle_path(args.model)
    try:  # refused before the model loads
        check_output_file(args.out, inputs=[args.pairs, src, *files], force=args.force)
    except OutputError as e:
        raise UserError(str(e)) from None
    verifier, model_path = load_model(src)
    import numpy as np
    from tqdm import tqdm

    from ifvit_train.serving.infer import FailureToAcquire
    from ifvit_train.serving.pairs import score_pairs, scores_csv

    prepared, failed, quality = [], {}, []
    for f in tqdm(files, desc="prepare", unit="image"):
        if f in bad:  # fails its pairs, not the run
            prepared.append(None)
            failed[f] = bad[f]
            quality.append(np.nan)
            continue
        try:
            prepared.append(verifier.prepare(f, args.dpi))
            quality.append(prepared[-1].quality.quality)
        except (OSError, ValueError) as e:
            prepared.append(None)
            failed[f] = str(e)
            quality.append(e.quality.quality if isinstance(e, FailureToAcquire) else np.nan)
    index = {f: i for i, f in enumerate(files)}
    idx = np.array([[index[a], index[b]] for a, b in pairs])
    with tqdm(total=len(pairs), desc="score", unit="pair") as bar:
        scores = score_pairs(verifier, prepared, idx, args.batch, progress=bar.update)
    q = np.asarray(quality, np.float64)
    scores["quality0"], scores["quality1"] = q[idx[:, 0]], q[idx[:, 1]]
    text = scores_csv([str(a) for a, _ in pairs], [str(b) for _, b in pairs], scores,
                         thresholds=verifier.thresholds)
    atomic_write_text(args.out, text)
    for why in failed.values():
        print(f"failed: {why}")
    print(f"{len(pairs)} pairs ({len(failed)} images unreadable or not acquired) -> {args.out}; "
          f"{float(scores['seconds']) * 1e3 / max(len(pairs), 1):.0f} ms per pair")
    return 0


def run(args: argparse.Namespace) -> int:
    from ifvit_data.imagefile import ImageReadError
    from ifvit_data.outputs import OutputError, check_output_file
    from ifvit_data.quality import QUALITY_FLOOR

    if args.pairs is not None:
        return run_pairs(args)
    if args.image0 is None or args.image1 is None:
        raise UserError("give two image files (or --pairs FILE --out scores.csv)")
    if args.out is not None:
        raise UserError("--out is for --pairs; one pair prints its result (use --json)")
    from ifvit_data.imagefile import image_file_problem

    for path in (args.image0, args.image1):
        if (problem := image_file_problem(path)) is not None:
            raise UserError(f"{path}: {problem}")
    if args.viz is not None:
        if args.viz.suffix.lower() != ".png":
            raise UserError(f"--viz {args.viz}: give a .png path")
        try:
            check_output_file(args.viz,
                              inputs=[args.image0, args.image1, *filter(None, [args.model])],
                              force=args.force)
        except OutputError as e:
            raise UserError(str(e)) from None
    from ifvit_train.serving.bundle_meta import BundleError, read_meta  # no jax: refusals are quick
    from ifvit_train.serving.prepare import prepare_for_bundle

    src = bundle_path(args.model)
    try:  # the bundle's description and both prints before the model loads (a refusal is quick)
        meta = read_meta(src)
        if meta["kind"] != "match":
            load_model(src)  # its one-line refusal of a Module 1 bundle
        a, b = (prepare_for_bundle(meta, p, args.dpi, require_print=False)
                for p in (args.image0, args.image1))
    except (BundleError, ImageReadError, ValueError) as e:
        raise UserError(str(e)) from None
    except (KeyError, TypeError) as e:
        raise UserError(f"{src / 'bundle.json'}: bad preprocessing record ({e!r}); the bundle is "
                        "damaged: re-copy or re-export it (`ifvit export`)") from None
    if not (a.quality.acquired and b.quality.acquired):  # a failure to acquire is never scored
        return _not_acquired(args, a, b)
    verifier, _ = load_model(src)
    result = verifier.verify(a, b)
    if args.viz is not None:
        from ifvit_train.serving.match_picture import plot_verification

        plot_verification(a.image / 255.0, b.image / 255.0, result, args.viz,
                          title=f"{args.image0.name} vs {args.image1.name}:")
        result["viz"] = str(args.viz)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    al = result["alignment"]
    dec = ", ".join(f"{k}: {'accept' if v else 'reject'}" for k, v in result["decision"].items())
    n = {k: len(v) for k, v in result["correspondences"].items()}
    from ifvit_train.serving.match_picture import score_text

    print(score_text(result, 4))
    print(f"decision {dec or 'no thresholds in the bundle'}")
    q = result["prints"]
    print(f"print quality {q['image0']['quality']:.3f} and {q['image1']['quality']:.3f} "
          f"(both acquired: above the floor {QUALITY_FLOOR:g})")
    print(f"alignment {'ok' if al['ok'] else 'failed (identity used)'}: rotation "
          f"{al['rotation_deg']:.1f} deg, scale {al['scale']:.3f}, translation "
          f"({al['translation'][0]:.1f}, {al['translation'][1]:.1f}) px, {al['inliers']} inliers")
    kept = sum(c.get("inlier", False) for c in result["correspondences"]["module1"])
    print(f"correspondences: Module 1 {n['module1']} ({kept} RANSAC inliers), global branch "
          f"{n['global']}, ROI branch "
          f"{n['local']}"
          + (f"; picture {args.viz}" if args.viz else "; --json lists them in your images' pixels"))
    return 0


def _not_acquired(args: argparse.Namespace, a, b) -> int:
    """No score: one line on stderr naming the print(s) that are not fingerprints and why, and with
    --json also the result on stdout with "acquired": false for them; exit 2 either way."""
    prints = {"image0": a.quality.to_dict(), "image1": b.quality.to_dict()}
    if args.json:
        print(json.dumps({"image0": str(a.path), "image1": str(b.path), "acquired": False,
                          "score": None, "decision": None, "prints": prints}, indent=1))
    bad = [p for p in (a, b) if not p.quality.acquired]
    raise UserError(f"{bad[0].path}: not acquired as a fingerprint: {bad[0].quality.reason}"
                    + (f" (and {bad[1].path})" if len(bad) > 1 else "")
                    + "; no score is given")
