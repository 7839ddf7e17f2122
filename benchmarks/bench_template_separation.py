"""How well per-image templates separate genuine from impostor pairs, against the pairwise score.

Run:  uv run python benchmarks/bench_template_separation.py \
        --model runs/demo/model/match --data runs/demo/synth --fingers 2,4,10,11,21,26

Every print of the chosen fingers (the bundle's held-out fingers, FVC naming `F_I.png`) is prepared
as in training (`ifvit_train.serving.infer.prepare_image`). For each single-image mode of
`ifvit_core.ifvit.embed_images` ('self', 'mirror', 'skip') the template cosine of every pair is
computed; the pairwise IFViT score (`Verifier.verify`: Module 1 alignment + Module 2 on the overlap
and ROI) is computed on the same pairs. Printed per score: genuine / impostor means, EER, AUC
(probability that a genuine pair outscores an impostor pair) and d' = (mu_g - mu_i) / sqrt((var_g +
var_i) / 2); plus the rank-1 rate of a 1:N search with impression 1 of each finger as the gallery.

`--smoke [--model BUNDLE]` (default: the shipped model): 3 synthetic fingers x 2 impressions
written to a temp folder (or `--data`, all fingers), every score of the table: checks that it runs.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core.ifvit import embed_images
from ifvit_core.ifvit.template import MODES
from ifvit_data.synth import SynthConfig, generate_dataset
from ifvit_train.evaluation.metrics import verification_report
from ifvit_train.serving.bundle import load_bundle
from ifvit_train.serving.infer import Verifier, prepare_image
from ifvit_train.serving.shipped import shipped_bundle


def separation(gen: np.ndarray, imp: np.ndarray) -> dict[str, float]:
    auc = float((gen[:, None] > imp[None, :]).mean() + 0.5 * (gen[:, None] == imp[None, :]).mean())
    dprime = float((gen.mean() - imp.mean()) / np.sqrt((gen.var() + imp.var()) / 2 + 1e-12))
    return {"genuine": float(gen.mean()), "impostor": float(imp.mean()),
            "eer": verification_report(gen, imp).eer, "auc": auc, "dprime": dprime}


def rank1(sim: np.ndarray, fingers: np.ndarray, imps: np.ndarray) -> float:
    """Gallery = impression 1 of each finger, probes = the other impressions."""
    g, p = np.flatnonzero(imps == 1), np.flatnonzero(imps != 1)
    best = g[np.argmax(sim[np.ix_(p, g)], axis=1)]
    return float((fingers[best] == fingers[p]).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None, help="Module 2 bundle (required)")
    ap.add_argument("--data", type=Path, default=None, help="prints, FVC naming (required)")
    ap.add_argument("--fingers", default="2,4,10,11,21,26", help="held-out finger numbers")
    ap.add_argument("--no-pairwise", action="store_true", help="templates only (fast)")
    ap.add_argument("--smoke", action="store_true",
                    help="3 synthetic fingers x 2 impressions; --model defaults to the shipped one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="template_separation_") as tmp:
        if args.smoke:
            if args.model is None:
                args.model = shipped_bundle()
            if args.data is None:
                generate_dataset(Path(tmp) / "synth", 3, 2, 0, SynthConfig(), workers=1)
                args.data, args.fingers = Path(tmp) / "synth", "1,2,3"
        for name in ("model", "data"):
            if getattr(args, name) is None:
                ap.error(f"--{name} is required (or --smoke)")
        run(args)


def run(args: argparse.Namespace) -> None:
    """Prints the table for the bundle `args.model` on the prints `args.data`."""
    bundle = load_bundle(args.model, require="match")
    size = int(bundle.meta["preprocessing"]["input_size"][0])
    wanted = {int(f) for f in args.fingers.split(",")}
    files = sorted((p for p in args.data.glob("*_*.png") if int(p.stem.split("_")[0]) in wanted),
                   key=lambda p: tuple(int(t) for t in p.stem.split("_")))
    prepared = [prepare_image(p, size) for p in files]
    fingers = np.array([int(p.stem.split("_")[0]) for p in files])
    imps = np.array([int(p.stem.split("_")[1]) for p in files])
    pairs = list(itertools.combinations(range(len(files)), 2))
    same = np.array([fingers[i] == fingers[j] for i, j in pairs])
    print(f"{len(files)} prints of {len(wanted)} fingers: {same.sum()} genuine, "
          f"{(~same).sum()} impostor pairs; bundle {args.model} (step {bundle.step})")
    images = jnp.asarray(np.stack([p.window for p in prepared])[..., None])
    masks = jnp.asarray(np.stack([p.mask for p in prepared]))
    rows = {}
    for mode in MODES:
        fn = nnx.jit(lambda m, x, k, mode=mode: embed_images(bundle.cfg, m, x, k, mode=mode))
        jax.block_until_ready(fn(bundle.matcher, images, masks))
        t = time.perf_counter()
        out = jax.device_get(fn(bundle.matcher, images, masks))
        dt = time.perf_counter() - t
        sims = {k: np.asarray(out[k]) @ np.asarray(out[k]).T
                for k in ("template", "z_global", "z_local")}
        s = np.array([sims["template"][i, j] for i, j in pairs])
        rows[f"template/{mode}"] = {**separation(s[same], s[~same]),
                                    "rank1": rank1(sims["template"], fingers, imps),
                                    "ms_per_print": 1e3 * dt / len(files)}
        for part in ("z_global", "z_local"):
            s = np.array([sims[part][i, j] for i, j in pairs])
            rows[f"  {part}/{mode}"] = separation(s[same], s[~same])
    if not args.no_pairwise:
        ver = Verifier(bundle)
        ver.verify(prepared[0], prepared[1])
        t = time.perf_counter()
        res = [ver.verify(prepared[i], prepared[j]) for i, j in pairs]
        dt = time.perf_counter() - t
        s = np.array([r["score"] for r in res])
        sim = np.eye(len(files))
        for (i, j), v in zip(pairs, s, strict=True):
            sim[i, j] = sim[j, i] = v
        rows["pairwise IFViT"] = {**separation(s[same], s[~same]),
                                  "rank1": rank1(sim, fingers, imps),
                                  "ms_per_pair": 1e3 * dt / len(pairs)}
    print(f"{'score':<22}{'gen':>7}{'imp':>7}{'EER':>7}{'AUC':>7}{'d_':>7}{'rank1':>7}  time")
    for name, r in rows.items():
        tm = (f"{r['ms_per_print']:.1f} ms/print" if "ms_per_print" in r else
              f"{r['ms_per_pair']:.1f} ms/pair" if "ms_per_pair" in r else "")
        r1 = f"{r['rank1']:7.3f}" if "rank1" in r else " " * 7
        print(f"{name:<22}{r['genuine']:7.3f}{r['impostor']:7.3f}{r['eer']:7.3f}{r['auc']:7.3f}"
              f"{r['dprime']:7.2f}{r1}  {tm}")


if __name__ == "__main__":
    main()
