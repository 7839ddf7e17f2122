"""Evidence on real prints: match pictures of genuine and impostor pairs of every real set.

Run:  uv run python benchmarks/evidence_gallery.py --out gallery/ [--model BUNDLE] [--real DIR]
      [--dpi-figure 120]
      (default: the shipped model; every set under ../shared/data/real that is there)

For each set, two seeded pairs (`--seed`, default 0): a genuine pair (impressions 1 and a random
other impression of a random finger) and an impostor pair (first impressions of two random
fingers). Each gets the picture of `ifvit match --viz` (`ifvit_train.serving.match_picture`: Module
1's RANSAC inliers and outliers, the aligned overlay, the overlap and ROI the branches saw) and a
row in `pairs.json`: scores, inliers, outliers, and the share of Module 1's inlier points that fall
on each print's foreground (a correspondence on background is not evidence). Prints' dpi as in
`whitening_loso.py`. `--smoke`: two synthetic sets made in a temp folder, one pair each.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import load_model_or_exit

from ifvit_train.serving.infer import Verifier
from ifvit_train.serving.match_picture import plot_verification

SETS = (("fvc2002_db1_b", None, "fvc"), ("fvc2002_db2_b", 569.0, "fvc"),
        ("fvc2002_db3_b", None, "fvc"), ("fvc2004_db2_b", None, "fvc"),
        ("fvc2004_db3_b", 512.0, "fvc"), ("neurotech_crossmatch", None, "folder"),
        ("neurotech_uareu", None, "folder"))


def on_foreground(points: np.ndarray, mask: np.ndarray, to_window: np.ndarray) -> float:
    """Share of file-pixel `points` [N, 2] that land on the prepared window's foreground."""
    if len(points) == 0:
        return float("nan")
    w = points @ to_window[:2, :2].T + to_window[:2, 2]
    x, y = np.round(w[:, 0]).astype(int), np.round(w[:, 1]).astype(int)
    inside = (x >= 0) & (y >= 0) & (x < mask.shape[1]) & (y < mask.shape[0])
    hit = np.zeros(len(points), bool)
    hit[inside] = mask[y[inside], x[inside]]
    return float(hit.mean())


def main() -> None:
    from ifvit_data.outputs import atomic_write_text, check_output_dir, claim_output_dir
    from ifvit_data.readers import scan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="new folder for the pictures")
    ap.add_argument("--model", type=Path, default=None, help="Module 2 bundle (default: shipped)")
    ap.add_argument("--real", type=Path, default=Path("../shared/data/real"),
                    help="folder holding the real sets")
    ap.add_argument("--seed", type=int, default=0, help="pair choice seed (default 0)")
    ap.add_argument("--dpi-figure", type=int, default=120, help="picture resolution (default 120)")
    ap.add_argument("--smoke", action="store_true", help="two tiny synthetic sets")
    ap.add_argument("--force", action="store_true",
                    help="write into a non-empty --out that is not an evidence gallery (its files "
                         "are kept; this script's own names inside it are replaced)")
    args = ap.parse_args()
    inputs = [p for p in (args.model, args.real) if p is not None]
    try:  # refused before the model loads
        check_output_dir(args.out, "evidence-gallery", inputs=inputs, force=args.force)
    except ValueError as e:
        ap.error(str(e))
    bundle, model = load_model_or_exit(ap, args.model)
    try:
        out = claim_output_dir(args.out, "evidence-gallery", inputs=[model, args.real],
                               force=args.force)
    except ValueError as e:
        ap.error(str(e))
    v = Verifier(bundle)
    load, t0 = os.getloadavg()[0], time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="evidence_") as tmp:
        root, sets = args.real, [s for s in SETS if (args.real / s[0]).is_dir()]
        if args.smoke:
            from ifvit_data.synth import SynthConfig, generate_dataset

            root, sets = Path(tmp), [("s1", None, "fvc"), ("s2", None, "fvc")]
            for i, (name, _, _) in enumerate(sets):
                generate_dataset(root / name, 3, 2, 300 + i, SynthConfig(size=(300, 300)),
                                 workers=1)
        if not sets:
            ap.error(f"--real {root}: none of {', '.join(s[0] for s in SETS)} in it")
        for i, (name, dpi, layout) in enumerate(sets):
            entries, _ = scan(root / name, layout)
            rng = np.random.default_rng(args.seed + i)
            fingers = sorted({e.finger for e in entries})
            by = {(e.finger, e.impression): e for e in entries}
            f = fingers[rng.integers(len(fingers))]
            imps = sorted(k for (g, k) in by if g == f)
            other = imps[1 + rng.integers(len(imps) - 1)]
            f0, f1 = (fingers[k] for k in rng.choice(len(fingers), 2, replace=False))
            picks = (("genuine", by[(f, imps[0])], by[(f, other)]),
                     ("impostor", by[(f0, min(k for (g, k) in by if g == f0))],
                      by[(f1, min(k for (g, k) in by if g == f1))]))
            for kind, e0, e1 in picks:
                a, b = (v.prepare(e.path, dpi) for e in (e0, e1))
                res = v.verify(a, b)
                m = res["correspondences"]["module1"]
                inl = [c for c in m if c.get("inlier")]
                p0 = np.array([[c["x0"], c["y0"]] for c in inl]).reshape(-1, 2)
                p1 = np.array([[c["x1"], c["y1"]] for c in inl]).reshape(-1, 2)
                png = out / f"{name}_{kind}.png"
                title = (f"{name} {kind}: {Path(e0.path).relative_to(root / name)} vs "
                         f"{Path(e1.path).relative_to(root / name)}:")
                plot_verification(a.image / 255.0, b.image / 255.0, res, png, title=title,
                                  dpi=args.dpi_figure)
                rows.append({"set": name, "kind": kind, "image0": str(e0.path.name),
                             "image1": str(e1.path.name), "picture": png.name,
                             "score": res["score"], "cosine": res["cosine"],
                             "inliers": len(inl), "outliers": len(m) - len(inl),
                             "inliers_on_foreground0": on_foreground(p0, a.mask, a.to_window),
                             "inliers_on_foreground1": on_foreground(p1, b.mask, b.to_window)})
                r = rows[-1]
                print(f"{name:22s} {kind:8s} score {r['score']:.3f} cosine {r['cosine']:.3f} "
                      f"inliers {r['inliers']:4d} outliers {r['outliers']:4d} on foreground "
                      f"{r['inliers_on_foreground0']:.2f} / {r['inliers_on_foreground1']:.2f}"
                      f" -> {png}", flush=True)
    seconds = time.perf_counter() - t0
    atomic_write_text(out / "pairs.json", json.dumps({"model": str(model), "rows": rows,
                                                      "seconds": seconds}, indent=1) + "\n")
    print(f"{len(rows)} pictures in {seconds:.0f} s; load average {load:.2f} -> "
          f"{os.getloadavg()[0]:.2f}; {out / 'pairs.json'}")


if __name__ == "__main__":
    main()
