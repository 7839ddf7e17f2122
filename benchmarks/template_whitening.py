"""The template neck, leave one set out: how to whiten single-print templates, chosen without the
evaluation set.

Run:  uv run python benchmarks/template_whitening.py [--model BUNDLE] [--real DIR] [--out t.json]
      (default: the shipped model; the sets under ../shared/data/real: the four FVC training sets
      at their sensors' dpi, and the two Neurotechnology sets (`folder` layout) if present)

Templates (`ifvit_core.ifvit.embed_images`) embed one print alone. `ifvit whiten` gives them a
linear neck fitted with finger labels (`ifvit_train.training.whiten.fit_within_finger`: the
within-finger covariance is whitened, eigenvalues floored at eps x the largest) and a global-branch
weight α (the single print's ROI, at its foreground centroid, is another part of the finger in each
impression). For each set, the neck is fitted on the OTHER sets' prints (a finger = a finger of
one set) and the held-out set is scored by:
- rank-1: closed-set identification, gallery = each finger's first impression, probes = the rest;
- EER: the template dot product of every pair of prints as a 1:1 score.
Rows: the bundle's own templates ("no template neck", α of the bundle's pairs) and every eps x α
of the grid. The defaults of `ifvit whiten` are the row with the lowest mean EER (all pairs: less
noisy than rank-1 over some fifty probes). FVC2002 DB1_B is never among the sets. If the bundle
has a template neck already, it is ignored here (the fit starts from the pairwise neck's output).

`--smoke`: three synthetic sets (12 fingers x 4 impressions) made in a temp folder, one row.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import check_json_out, load_model_or_exit

from ifvit_train.evaluation.evaluate import load_prints
from ifvit_train.evaluation.metrics import cmc, verification_report
from ifvit_train.serving.infer import Verifier
from ifvit_train.training.whiten import BRANCHES, batchnorm_neck, fit_within_finger, single_features

SETS = (("fvc2002_db2_b", 569.0, "fvc"), ("fvc2002_db3_b", None, "fvc"),
        ("fvc2004_db2_b", None, "fvc"), ("fvc2004_db3_b", 512.0, "fvc"),
        ("neurotech_crossmatch", None, "folder"), ("neurotech_uareu", None, "folder"))
EPS = (1e-3, 1e-2, 1e-1)
ALPHAS = (0.5, 0.7, 0.85, 1.0)


def scores(t: np.ndarray, fingers: np.ndarray, impressions: np.ndarray) -> tuple[float, float]:
    """(rank-1, all-pairs EER) of unit templates `t` [N, D] of prints of `fingers` [N]."""
    first = {f: impressions[fingers == f].min() for f in np.unique(fingers)}
    gal = np.array([impressions[k] == first[fingers[k]] for k in range(len(t))])
    rank1 = cmc(t[~gal] @ t[gal].T, fingers[~gal], fingers[gal], 1).rank(1)
    iu = np.triu_indices(len(t), k=1)
    s, same = (t @ t.T)[iu], fingers[iu[0]] == fingers[iu[1]]
    return float(rank1), float(verification_report(s[same], s[~same]).eer)


def template(z: dict[str, np.ndarray], alpha: float) -> np.ndarray:
    u = {b: z[b] / np.linalg.norm(z[b], axis=1, keepdims=True) for b in BRANCHES}
    return np.concatenate([np.sqrt(alpha) * u["global"], np.sqrt(1 - alpha) * u["local"]], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="Module 2 bundle (default: shipped)")
    ap.add_argument("--real", type=Path, default=Path("../shared/data/real"),
                    help="folder holding the training sets")
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers to FILE.json")
    ap.add_argument("--smoke", action="store_true", help="three tiny synthetic sets, one row")
    args = ap.parse_args()
    check_json_out(ap, args.out)
    bundle, model = load_model_or_exit(ap, args.model)
    v = Verifier(bundle)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    grid = [(None, bundle.cfg.module2.fusion_alpha)] + [(e, a) for e in EPS for a in ALPHAS]
    with tempfile.TemporaryDirectory(prefix="template_loso_") as tmp:
        root, sets = args.real, [s for s in SETS if (args.real / s[0]).is_dir()]
        if args.smoke:
            from ifvit_data.synth import SynthConfig, generate_dataset

            root, sets, grid = Path(tmp), [(f"s{i}", None, "fvc") for i in range(3)], grid[:1]
            grid.append((1e-1, 1.0))
            for i, (name, _, _) in enumerate(sets):
                generate_dataset(root / name, 12, 4, 200 + i, SynthConfig(size=(200, 200)),
                                 workers=1)
        if len(sets) < 2:
            ap.error(f"--real {root}: fewer than two of {', '.join(s[0] for s in SETS)} in it")
        data = {}
        for name, dpi, layout in sets:
            ps = load_prints(v, root / name, layout, dpi=dpi)
            f = single_features(v, ps)
            data[name] = {"z": {b: batchnorm_neck(getattr(bundle.matcher, f"{b}_branch"), f[b])
                                for b in BRANCHES},
                          "fingers": np.array([f"{name}/{ps.entries[k].finger}"
                                               for k in f["kept"]]),
                          "impressions": np.array([ps.entries[k].impression for k in f["kept"]])}
    rows = []
    for eps, alpha in grid:
        cells = {}
        for name in data:
            d = data[name]
            if eps is None:
                z = d["z"]
            else:
                others = [n for n in data if n != name]
                labels = np.concatenate([data[n]["fingers"] for n in others])
                z = {}
                for b in BRANCHES:
                    w = fit_within_finger(np.concatenate([data[n]["z"][b] for n in others]),
                                          labels, eps)
                    z[b] = (d["z"][b] - w.mean) @ w.matrix
            cells[name] = scores(template(z, alpha), d["fingers"], d["impressions"])
        rows.append({"eps": eps, "alpha": alpha, "sets": cells,
                     "rank1": float(np.mean([c[0] for c in cells.values()])),
                     "eer": float(np.mean([c[1] for c in cells.values()]))})
    best = min(rows[1:], key=lambda r: r["eer"])
    print(f"template neck, leave one set out; model {model}; rank-1 % / EER % per held-out set")
    print("| template neck | α | " + " | ".join(data) + " | mean |")
    print("|---|---|" + "---|" * (len(data) + 1))
    for r in rows:
        name = "none" if r["eps"] is None else f"eps {r['eps']:g}"
        mark = " (lowest mean EER)" if r is best else ""
        print(f"| {name}{mark} | {r['alpha']:g} | "
              + " | ".join(f"{100 * a:.1f} / {100 * b:.1f}" for a, b in r["sets"].values())
              + f" | {100 * r['rank1']:.1f} / {100 * r['eer']:.1f} |")
    seconds = time.perf_counter() - t0
    print(f"total {seconds:.0f} s; load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    if args.out is not None:
        from ifvit_data.outputs import atomic_write_text

        atomic_write_text(args.out, json.dumps({"model": str(model), "rows": rows,
                                                "best": {"eps": best["eps"],
                                                         "alpha": best["alpha"]},
                                                "seconds": seconds}, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
