"""Neck whitening, leave one set out: does a whitening fitted on other sensors' prints transfer?

Run:  uv run python benchmarks/whitening_loso.py --model BUNDLE [--real DIR] [--out loso.json]
      (BUNDLE: a Module 2 bundle before whitening, e.g. an `ifvit export` output; the shipped model
      before it was whitened is in git: `git worktree add /tmp/pre 67df637`, then --model
      /tmp/pre/packages/ifvit-train/src/ifvit_train/serving/shipped_models/ifvit-small. Default: the
      shipped model, which is whitened already, so its "neck" column is its own whitening. The four
      FVC training sets under ../shared/data/real, read at their sensors' dpi, and the two
      Neurotechnology sets (`folder` layout) if present; 400 pairs per set)

For each of the sets, the whitening (`ifvit_train.training.whiten`, eps 1e-3) is fitted on the OTHER
sets' pairs and the held-out set's pairs are scored with the bundle's own BatchNorm neck, with the
PCA whitening (no labels) and with the within-finger whitening (`--pairs-neck within-finger`, the
sets' finger labels; a finger is a finger of one set): EER (%) of the global-branch, ROI-branch
and fused cosines (α of the bundle). The pairs are those `ifvit whiten` samples (the 'baselines'
protocol, seeded), so the genuine share is the protocol's (about 1 in 8). FVC2002 DB1_B is not
among the sets: it is the evaluation set.

`--smoke`: two synthetic sets (6 fingers x 3 impressions each) made in a temp folder, 40 pairs.
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
from ifvit_train.evaluation.metrics import verification_report
from ifvit_train.serving.infer import Verifier
from ifvit_train.training.whiten import (
    BRANCHES,
    batchnorm_neck,
    fit_whitening,
    fit_within_finger,
    neck_features,
    sample_pairs,
    stacked,
)

SETS = (("fvc2002_db2_b", 569.0, "fvc"), ("fvc2002_db3_b", None, "fvc"),
        ("fvc2004_db2_b", None, "fvc"), ("fvc2004_db3_b", 512.0, "fvc"),
        ("neurotech_crossmatch", None, "folder"), ("neurotech_uareu", None, "folder"))
NECKS = ("shipped", "whitened", "within-finger")


def cosines(f: dict[str, np.ndarray], neck) -> dict[str, np.ndarray]:
    """Per branch, the cosine of each pair's image 0 and image 1 vectors after `neck`."""
    out = {}
    for b in BRANCHES:
        z0, z1 = (neck(b, f[f"{b}{s}"]) for s in "01")
        out[b] = np.sum(z0 * z1, axis=1) / (np.linalg.norm(z0, axis=1)
                                            * np.linalg.norm(z1, axis=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="Module 2 bundle (default: shipped)")
    ap.add_argument("--real", type=Path, default=Path("../shared/data/real"),
                    help="folder holding the four FVC training sets")
    ap.add_argument("--pairs", type=int, default=400, help="pairs per set (default 400)")
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers to FILE.json")
    ap.add_argument("--smoke", action="store_true", help="two tiny synthetic sets")
    args = ap.parse_args()
    if args.smoke:
        args.pairs = 40
    if args.pairs < 1:
        ap.error(f"--pairs {args.pairs}: must be >= 1")
    check_json_out(ap, args.out)
    bundle, model = load_model_or_exit(ap, args.model)
    v = Verifier(bundle)
    alpha = bundle.cfg.module2.fusion_alpha
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="whiten_loso_") as tmp:
        root = args.real
        sets = list(SETS[:4]) + [s for s in SETS[4:] if (root / s[0]).is_dir()]  # FVC: needed
        if args.smoke:
            from ifvit_data.synth import SynthConfig, generate_dataset

            root, sets = Path(tmp), [("s1", None, "fvc"), ("s2", None, "fvc")]
            for i, (name, _, _) in enumerate(sets):
                generate_dataset(root / name, 6, 3, 100 + i, SynthConfig(size=(300, 300)),
                                 workers=1)
        missing = [n for n, _, _ in sets if not (root / n).is_dir()]
        if missing:
            ap.error(f"--real {root}: no {', '.join(missing)} in it")
        feats, labels, fingers = {}, {}, {}
        for i, (name, dpi, layout) in enumerate(sets):
            ps = load_prints(v, root / name, layout, dpi=dpi)
            pairs = sample_pairs(ps, args.pairs, i)
            feats[name] = neck_features(v, ps, pairs)
            finger = np.array([f"{name}/{e.finger}" for e in ps.entries])
            kept = pairs[feats[name]["kept"]]
            labels[name] = (finger[kept[:, 0]] == finger[kept[:, 1]]).astype(np.int32)
            fingers[name] = np.concatenate([finger[kept[:, 0]], finger[kept[:, 1]]])  # stacked
    rows = {}
    for name, _, _ in sets:
        others = [n for n, _, _ in sets if n != name]
        w = {b: fit_whitening(np.concatenate([stacked(feats[n], b) for n in others]))
             for b in BRANCHES}
        same = np.concatenate([fingers[n] for n in others])
        wf = {b: fit_within_finger(np.concatenate([stacked(feats[n], b) for n in others]), same,
                                   1e-3) for b in BRANCHES}

        def shipped(b, h):
            return batchnorm_neck(getattr(bundle.matcher, f"{b}_branch"), h)

        def whitened(b, h, w=w):
            return (h - w[b].mean) @ w[b].matrix

        def within(b, h, w=wf):
            return (h - w[b].mean) @ w[b].matrix

        g = labels[name] > 0
        row = {"genuine": int(g.sum()), "impostor": int((~g).sum())}
        for tag, neck in zip(NECKS, (shipped, whitened, within), strict=True):
            c = cosines(feats[name], neck)
            c["fused"] = alpha * c["global"] + (1 - alpha) * c["local"]
            row[tag] = {k: float(verification_report(s[g], s[~g]).eer) for k, s in c.items()}
        rows[name] = row
    print(f"leave one set out, {args.pairs} pairs per set; model {model}")
    print("| held-out set | genuine / impostor | global: neck -> PCA -> within-finger | ROI | "
          "fused |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        cells = " | ".join(" -> ".join(f"{100 * r[n][k]:.1f}" for n in NECKS)
                           for k in ("global", "local", "fused"))
        print(f"| {name} | {r['genuine']} / {r['impostor']} | {cells} |")
    mean = {n: float(np.mean([r[n]["fused"] for r in rows.values()])) for n in NECKS}
    print("| mean fused | | | | " + " -> ".join(f"{100 * mean[n]:.2f}" for n in NECKS) + " |")
    seconds = time.perf_counter() - t0
    print(f"total {seconds:.0f} s; load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    if args.out is not None:
        from ifvit_data.outputs import atomic_write_text

        atomic_write_text(args.out, json.dumps({"model": str(model), "rows": rows,
                                                "seconds": seconds}, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
