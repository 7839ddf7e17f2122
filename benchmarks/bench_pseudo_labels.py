"""Pseudo-label precision: how often Module 1's own matches name the right cell of a Module 2
branch, measured where the truth is known.

Run:  uv run python benchmarks/bench_pseudo_labels.py [--model BUNDLE] [--out labels.json]
      (defaults: the shipped model, 16 fingers x 4 impressions, 96 genuine training pairs, seed
      20261208, confidence floors 0.2, 0.4, 0.6: 0.2 is Module 1's own match threshold)

Real genuine pairs have no exact correspondences, so `ifvit train match --pseudo-labels CONF`
supervises L_D with Module 1's own RANSAC inliers of coarse confidence >= CONF
(`ifvit_core.ifvit.targets.pseudo_ground_truth`), carried into each branch's token grid exactly as
exact ground truth is (`module2_targets`). This script measures those labels on synthetic pairs
whose truth is known: prints written by the generator into a temp folder (`ifvit synth`
settings, 300x300, 500 dpi), ingested, and sampled by the Module 2 training pipeline
(`ifvit_train.training.data.pair_config`: the bundle's window size and downscale; genuine pairs of
two different impressions only, so each carries the generator's exact map). Each batch goes through
the training step's path (the bundle's enhancement, `register_pair`); per branch and per floor:

* labels/pair: pseudo-labelled cells per pair (pairs RANSAC did not align get none);
* right: the pseudo label's cell is the true cell, over the labels whose cell has a true
  counterpart (the truth is `module2_targets` of the exact map; one-to-one as in training);
* within 1 cell: the true cell is one of the 8 neighbours or itself;
* no truth: share of labels on a cell without a true counterpart (outside the other impression's
  contact region, or dropped by the one-to-one rule): a wrong label, counted apart.

`--smoke`: 4 fingers x 2 impressions, one batch, checks that it runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _common import check_json_out, load_model_or_exit
from flax import nnx

from ifvit_core.ifvit import module2_targets, register_pair
from ifvit_core.ifvit.targets import pseudo_ground_truth
from ifvit_data.ingest import ingest
from ifvit_data.pipeline import MatchPairConfig, make_iterator, module2_dataset
from ifvit_data.shards import RecordSource
from ifvit_data.synth import SynthConfig, generate_dataset
from ifvit_data.synth.records import synth_correspondence
from ifvit_train.serving.preprocessing import enhance_inputs, enhancement
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.data import pair_config

BRANCHES = ("global", "local")


def label_graph(cfg: Any, enh: Any, floors: tuple[float, ...]):
    """`(module1, key, batch arrays) ->` the true branch targets, per floor the pseudo ones
    (`{branch}_gt_{i,j,valid}` [B, Lb] each; none where RANSAC did not align) and `ok` [B]."""

    @functools.partial(jax.jit, static_argnums=0)
    def run(graphdef, state, key, i0, i1, k0, k1, gt_i, gt_valid, gt_pts1):
        m1 = nnx.merge(graphdef, state)
        i0, i1 = enhance_inputs(enh, i0, k0), enhance_inputs(enh, i1, k1)
        dense, ali, inputs = register_pair(cfg, m1, key, i0, i1, k0, k1)
        raw_hw = i0.shape[1:3]
        true = module2_targets(gt_i, gt_valid, gt_pts1, raw_hw, ali.A01, inputs)
        out = {"ok": ali.ok, "true": true}
        for f in floors:
            guess = module2_targets(*pseudo_ground_truth(dense, ali.inliers, f), raw_hw,
                                    ali.A01, inputs)
            out[f"pseudo_{f:g}"] = {k: jnp.where(ali.ok[:, None], v, False) if "valid" in k
                                    else v for k, v in guess.items()}
        return out

    def call(module1: nnx.Module, *args: Any) -> dict[str, Any]:
        return run(*nnx.split(module1), *args)

    return call


def tally(out: dict[str, Any], floors: tuple[float, ...], widths: dict[str, int]
          ) -> dict[str, dict[str, np.ndarray]]:
    """Counts per floor and branch: labels, labels with truth, right, within one cell."""
    res: dict[str, dict[str, np.ndarray]] = {}
    for f in floors:
        p = out[f"pseudo_{f:g}"]
        for b in BRANCHES:
            pv, tv = np.asarray(p[f"{b}_gt_valid"]), np.asarray(out["true"][f"{b}_gt_valid"])
            pj, tj = np.asarray(p[f"{b}_gt_j"]), np.asarray(out["true"][f"{b}_gt_j"])
            w = widths[b]
            both = pv & tv
            near = (np.abs(pj % w - tj % w) <= 1) & (np.abs(pj // w - tj // w) <= 1)
            res.setdefault(f"{f:g}", {})[b] = np.array(
                [pv.sum(), both.sum(), (both & (pj == tj)).sum(), (both & near).sum()], np.int64)
    return res


def measure(bundle: Any, shards: Path, batches: int, batch_size: int, floors: tuple[float, ...],
            seed: int) -> dict[str, Any]:
    cfg, pre = bundle.cfg, bundle.meta["preprocessing"]
    tc = TrainConfig(input_downscale=float(pre.get("downscale", 1.0)), seed=seed)
    source = RecordSource(shards)
    ds = module2_dataset(source, MatchPairConfig(pair=pair_config(tc, cfg.image_size),
                                               genuine_ratio=0.999, synthetic_fraction=0.0),
                         seed=seed, batch_size=batch_size, num_epochs=None,
                         correspondence=synth_correspondence(find_synth(shards)))
    it = make_iterator(ds)
    run = label_graph(cfg, enhancement(pre), floors)
    totals: dict[str, dict[str, np.ndarray]] = {}
    pairs, aligned = 0, 0
    for k in range(batches):
        b = next(it)
        keep = (np.asarray(b["is_genuine"]) > 0) & np.asarray(b["gt_valid"]).any(axis=1)
        args = [jnp.asarray(b[key]) for key in ("image0", "image1", "mask0", "mask1", "gt_i",
                                                "gt_valid", "gt_pts1")]
        out = jax.device_get(run(bundle.module1, jax.random.fold_in(jax.random.key(seed), k),
                                 *args))
        out = jax.tree.map(functools.partial(_rows, keep=keep), out)
        # training windows are square, so are both branch grids
        widths = {br: int(np.sqrt(out["true"][f"{br}_gt_i"].shape[1])) for br in BRANCHES}
        for f, per in tally(out, floors, widths).items():
            for br, c in per.items():
                totals.setdefault(f, {}).setdefault(br, np.zeros(4, np.int64))
                totals[f][br] += c
        pairs += int(keep.sum())
        aligned += int(np.asarray(out["ok"]).sum())
    rows = {}
    for f, per in totals.items():
        for br, (n, known, right, near) in per.items():
            rows[f"{f}/{br}"] = {
                "floor": float(f), "branch": br, "labels": int(n),
                "labels_per_pair": n / max(pairs, 1),
                "right": right / known if known else None,
                "within_1_cell": near / known if known else None,
                "no_truth": (n - known) / n if n else None}
    return {"pairs": pairs, "aligned": aligned, "rows": rows}


def _rows(x: Any, keep: np.ndarray) -> np.ndarray:
    return np.asarray(x)[keep]


def find_synth(shards: Path) -> Path:
    from ifvit_data.synth.records import find_synth_dir

    d = find_synth_dir(shards)
    if d is None:
        raise SystemExit(f"{shards}: not ingested from a synth folder")
    return d


def table(res: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    lines = ["| floor | branch | labels/pair | right cell | within 1 cell | no truth |",
             "|---|---|---|---|---|---|"]
    for r in res["rows"].values():
        lines.append(f"| {r['floor']:g} | {r['branch']} | {r['labels_per_pair']:.1f} | "
                     f"{pct(r['right'])} | {pct(r['within_1_cell'])} | {pct(r['no_truth'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="bundle (default: shipped)")
    ap.add_argument("--fingers", type=int, default=16, metavar="N", help="fingers (default 16)")
    ap.add_argument("--impressions", type=int, default=4, metavar="K",
                    help="impressions per finger (default 4)")
    ap.add_argument("--batches", type=int, default=12, metavar="N",
                    help="batches of 8 pairs (default 12)")
    ap.add_argument("--floors", default="0.2,0.4,0.6", help="confidence floors (default "
                    "0.2,0.4,0.6)")
    ap.add_argument("--seed", type=int, default=20261208, metavar="S", help="synth and pair seed")
    ap.add_argument("--out", type=Path, default=None, help="also write the numbers to FILE.json")
    ap.add_argument("--smoke", action="store_true", help="4 fingers x 2 impressions, 1 batch")
    args = ap.parse_args()
    if args.smoke:
        args.fingers, args.impressions, args.batches = 4, 2, 1
    try:
        floors = tuple(float(x) for x in args.floors.split(","))
    except ValueError:
        ap.error(f"--floors {args.floors}: give numbers separated by commas, e.g. 0.05,0.2")
    if not all(0 <= f < 1 for f in floors):
        ap.error(f"--floors {args.floors}: each floor must be in [0, 1)")
    if args.fingers < 2 or args.impressions < 2 or args.batches < 1 or args.seed < 0:
        ap.error("--fingers >= 2, --impressions >= 2, --batches >= 1 and --seed >= 0")
    check_json_out(ap, args.out)
    bundle, model = load_model_or_exit(ap, args.model, require=None)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_pseudo_") as tmp:
        synth, shards = Path(tmp) / "synth", Path(tmp) / "shards"
        generate_dataset(synth, args.fingers, args.impressions, args.seed,
                         SynthConfig.preset("full", size=(300, 300)), workers=1)
        ingest(synth, "fvc", shards, dpi=500.0)
        res = measure(bundle, shards, args.batches, 8, floors, args.seed)
    res.update({"model": str(model), "fingers": args.fingers, "impressions": args.impressions,
                "seed": args.seed, "seconds": time.perf_counter() - t0,
                "load_average_1min": [load, os.getloadavg()[0]]})
    print(f"{res['pairs']} genuine impression pairs with exact truth ({args.fingers} fingers x "
          f"{args.impressions} impressions, seed {args.seed}), {res['aligned']} aligned by "
          f"Module 1; model {model}")
    print(table(res))
    print(f"total {res['seconds']:.1f} s; load average {load:.2f} -> {os.getloadavg()[0]:.2f}")
    if args.out is not None:
        from ifvit_data.outputs import atomic_write_text

        atomic_write_text(args.out, json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
