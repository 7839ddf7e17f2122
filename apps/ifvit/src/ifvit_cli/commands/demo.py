"""`ifvit demo`: the embedded default run, end to end on synthetic fingerprints, on the CPU."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ifvit_cli.errors import UserError
from ifvit_train.training.recipes import DEMO

_DENSE, _MATCH = DEMO.stage("dense"), DEMO.stage("match")
_TC = _DENSE.train_config()  # the recipe's Module 1 settings: the defaults shown below

HELP = "the embedded default run on synthetic prints (no downloads)"
DESCRIPTION = """\
Runs IFViT end to end on synthetic fingerprints (nothing is downloaded):

  1. synth  - N synthetic fingers x K impressions (SFinGe-style), FVC naming, 500 ppi, contact sheet
  2. ingest - the folder -> ArrayRecord shards + manifest.json
  3. train  - Module 1 (dense registration) then Module 2 (global + ROI branches): the `demo`
              recipe, exactly as `ifvit train all --recipe demo`: bundles in OUT/model/dense
              and OUT/model/match
  4. report - held-out fingers (never trained on): Module 1 match precision / recall and
              registration error, Module 2 verification EER, each before and after training
  5. evaluate - FVC protocol on the held-out synthetic fingers and on real prints (FVC2002 DB1_B,
              `../shared/data/real/fvc2002_db1_b` when present, or --real): EER / FMR100 of the
              trained model, the same network with no training, with Module 2 untrained, and
              Module 1 alone; a DET curve and one match picture per set

Everything lands in --out: report.json, report.md, the bundles and their train_curves.png, det_*.png
and match_*.png. Every training stage resumes: rerunning after an interruption continues."""
EPILOG = """\
examples:
  ifvit demo                                   # small preset, ~10 minutes on 2 CPU cores
  ifvit demo --out /tmp/d --preset tiny --fingers 8 --steps 20 --match-steps 10   # smoke run
"""


REAL_DEFAULT = Path("../shared/data/real/fvc2002_db1_b")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"),
                   help="output folder (default: runs/demo)")
    p.add_argument("--preset", default=_DENSE.preset, choices=["tiny", "small", "paper"],
                   help=f"model size (default: {_DENSE.preset}; paper is slow on a CPU)")
    p.add_argument("--fingers", type=int, default=DEMO.synth["fingers"],
                   help=f"synthetic fingers (default: {DEMO.synth['fingers']})")
    p.add_argument("--impressions", type=int, default=DEMO.synth["impressions"],
                   help=f"impressions per finger (default: {DEMO.synth['impressions']})")
    p.add_argument("--holdout", type=float, default=_TC.holdout,
                   help=f"fraction of fingers kept for evaluation (default: {_TC.holdout:g})")
    p.add_argument("--steps", type=int, default=_TC.steps,
                   help=f"Module 1 training steps (default: {_TC.steps})")
    p.add_argument("--match-steps", type=int, default=_MATCH.train_config().steps,
                   help=f"Module 2 training steps (default: {_MATCH.train_config().steps})")
    p.add_argument("--batch", type=int, default=_TC.batch_size,
                   help=f"pairs per step (default: {_TC.batch_size})")
    p.add_argument("--lr", type=float, default=_TC.learning_rate,
                   help=f"peak learning rate (default: {_TC.learning_rate:g})")
    p.add_argument("--seed", type=int, default=_TC.seed,
                   help=f"seed of everything (default: {_TC.seed})")
    p.add_argument("--downscale", type=float, default=_TC.input_downscale,
                   help="print -> model-input shrink factor, 1-2 (default: "
                        f"{_TC.input_downscale:g}: the 128-px window sees ~205 px of the print)")
    p.add_argument("--real", type=Path, default=None,
                   help="folder of real prints in FVC naming to evaluate on (default: "
                        f"{REAL_DEFAULT} when it exists)")
    p.add_argument("--no-real", action="store_true", help="skip the real-print evaluation")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out that is not a demo output (its files are "
                        "kept; the demo's own names inside it are replaced)")
    p.add_argument("--impression-pairs", type=float, default=_TC.impression_pairs,
                   help="share of Module 1 pairs made of two different impressions of a "
                        "finger, with the generator's exact correspondences; the rest "
                        f"are corrupted copies of one print (default: {_TC.impression_pairs:g})")
    p.add_argument("--max-translation", type=float, default=_TC.max_translation,
                   help="largest shift (px) between the two windows of a Module 1 pair "
                        f"(default: {_TC.max_translation:g})")
    p.add_argument("--enhance", action=argparse.BooleanOptionalAction, default=_TC.enhance,
                   help="ridge enhancement (orientation field + Gabor filtering, on "
                        "device) of every model input, as `ifvit train dense --enhance` "
                        f"(default: {'on' if _TC.enhance else 'off'})")


def run(args: argparse.Namespace) -> int:
    if args.fingers < 4 or args.impressions < 2:
        raise UserError("--fingers must be at least 4 and --impressions at least 2 "
                        "(validation needs two held-out fingers with two impressions each)")
    if not 0.0 < args.holdout < 1.0:
        raise UserError(f"--holdout must be in (0, 1), got {args.holdout}")
    if args.steps < 1 or args.match_steps < 1 or args.batch < 1:
        raise UserError("--steps, --match-steps and --batch must be positive")
    if not 0 <= args.seed < 2**32:
        raise UserError(f"--seed {args.seed}: must be an integer between 0 and {2**32 - 1}")
    real = None if args.no_real else (args.real
                                      or (REAL_DEFAULT if REAL_DEFAULT.is_dir() else None))
    if real is not None and not real.is_dir():
        raise UserError(f"--real {real}: not a folder; pass a folder of FVC-named prints "
                        "or --no-real")
    from ifvit_train.training.run_recipe import check_recipe

    try:  # every training setting is checked before any work
        check_recipe(DEMO, _overrides(args), _per_stage(args))
    except ValueError as e:
        raise UserError(f"{e}; see ifvit demo --help") from None
    from ifvit_data.outputs import OutputError, atomic_write_text, claim_output_dir

    try:  # the output-safety policy: never a folder of the user's files, checked before any work
        out = claim_output_dir(args.out, "demo", force=args.force)
    except OutputError as e:
        raise UserError(str(e)) from None

    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from ifvit_data.ingest import ingest
    from ifvit_data.synth import SynthConfig, contact_sheet, generate_dataset
    from ifvit_train.serving.bundle import write_json_atomic

    t0 = time.time()
    synth_dir, shard_dir = out / "synth", out / "shards"
    n = args.fingers * args.impressions
    print(f"[1/5] {n} synthetic prints in {synth_dir}", flush=True)
    with tqdm(total=n, desc="synth", unit="print") as bar:
        generate_dataset(synth_dir, args.fingers, args.impressions, args.seed, SynthConfig(),
                         progress=lambda done, _total: bar.update(done - bar.n))
    shown = [synth_dir / f"{f}_{i}.png" for f in range(1, min(args.fingers, 4) + 1)
             for i in range(1, min(args.impressions, 4) + 1)]
    contact_sheet([np.asarray(Image.open(p).convert("L")) for p in shown],
                  min(args.impressions, 4), out / "synthetic_prints.png")
    print(f"[2/5] shards in {shard_dir}", flush=True)
    ingest(synth_dir, "fvc", shard_dir)
    print(f"[3/5] training Module 1 ({args.preset}) for {args.steps} steps, then Module 2 for "
          f"{args.match_steps} steps", flush=True)
    try:
        dense, match = _run_stages(args, shard_dir, out)
    except ValueError as e:  # e.g. a holdout that leaves no training or validation fingers
        raise UserError(f"{e}; change --fingers / --holdout") from None
    report: dict[str, Any] = {
        "command": "ifvit demo", "args": {k: str(v) for k, v in vars(args).items()},
        "module1": {"before": dense["initial_validation"], "after": dense["validation"],
                    "seconds": dense["train_seconds"]},
        "module2": {"before": match["initial_validation"], "after": match["validation"],
                    "seconds": match["train_seconds"]},
        "heldout_fingers": match["data"]["heldout_fingers"],
    }
    print("[4/5] evaluating on the held-out synthetic fingers"
          + (f" and on {real}" if real else ""), flush=True)
    report["evaluation"] = _evaluate(out, synth_dir, real, report["heldout_fingers"])
    report["seconds"] = round(time.time() - t0, 1)
    write_json_atomic(out / "report.json", report)
    md = _report_md(report, args)
    atomic_write_text(out / "report.md", md)
    print("[5/5] report\n" + md)
    return 0


def _evaluate(out: Path, synth_dir: Path, real: Path | None, heldout: list[int]) -> dict[str, Any]:
    """compare_with_baselines on each set, a DET curve and one genuine match picture per set."""
    from ifvit_data.readers import scan
    from ifvit_train.evaluation.evaluate import compare_with_baselines
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.infer import Verifier
    from ifvit_train.serving.match_picture import plot_verification

    bundle = load_bundle(out / "model" / "match", require="match")
    verifier = Verifier(bundle)
    sets = {"synthetic": (synth_dir, heldout)} | ({"real": (real, None)} if real else {})
    result = {}
    for name, (root, fingers) in sets.items():
        result[name] = compare_with_baselines(bundle, root, fingers=fingers,
                                              det_png=out / f"det_{name}.png")
        entries = [e for e in scan(Path(root), "fvc")[0] if fingers is None or e.finger in fingers]
        a = entries[0]
        b = next(e for e in entries[1:] if e.finger == a.finger)
        pa, pb = verifier.prepare(a.path, a.name_ppi), verifier.prepare(b.path, b.name_ppi)
        plot_verification(pa.image / 255.0, pb.image / 255.0, verifier.verify(pa, pb),
                          out / f"match_{name}.png", title=f"{a.rel} vs {b.rel}:")
    return result


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The demo's flags as TrainConfig fields of both stages (what the `demo` recipe leaves to
    them)."""
    return {"batch_size": args.batch, "learning_rate": args.lr, "holdout": args.holdout,
            "seed": args.seed, "input_downscale": args.downscale, "enhance": args.enhance,
            "impression_pairs": args.impression_pairs, "max_translation": args.max_translation}


def _per_stage(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    return {"dense": {"steps": args.steps}, "match": {"steps": args.match_steps}}


def _run_stages(args: argparse.Namespace, shard_dir: Path, out: Path) -> tuple[dict, dict]:
    """The `demo` recipe (`ifvit_train.training.recipes.DEMO`) with the demo's flags."""
    from ifvit_train.training.run_recipe import train_recipe

    metas = train_recipe(DEMO, shard_dir, out / "model", train=_overrides(args),
                         per_stage=_per_stage(args), preset=args.preset)
    return metas["dense"], metas["match"]


def _report_md(r: dict[str, Any], args: argparse.Namespace) -> str:
    def v(d: dict[str, Any], k: str) -> float:
        return d.get(k, d.get(f"val_{k}", float("nan")))

    m1b, m1a = r["module1"]["before"], r["module1"]["after"]
    m2b, m2a = r["module2"]["before"], r["module2"]["after"]
    rows = [
        ("Module 1 match precision (all predicted matches)", "precision", m1b, m1a, "{:.3f}"),
        ("Module 1 match recall", "recall", m1b, m1a, "{:.3f}"),
        ("Module 1 registration: median rotation error (deg)", "rotation_error_deg", m1b, m1a,
         "{:.2f}"),
        ("Module 1 registration: median corner error (px)", "corner_error_px", m1b, m1a, "{:.2f}"),
        ("Module 2 verification EER (all held-out pairs)", "eer", m2b, m2a, "{:.1%}"),
        ("Module 2 mean score, genuine pairs", "genuine_mean", m2b, m2a, "{:.3f}"),
        ("Module 2 mean score, impostor pairs", "impostor_mean", m2b, m2a, "{:.3f}"),
    ]
    lines = ["# IFViT-JAX demo report", "",
             f"{args.fingers} synthetic fingers x {args.impressions} impressions; held-out fingers "
             f"{r['heldout_fingers']} (never trained on). Preset {args.preset}.", "",
             "| held-out metric | before training | after training |", "|---|---|---|"]
    lines += [f"| {name} | {fmt.format(v(b, k))} | {fmt.format(v(a, k))} |"
              for name, k, b, a, fmt in rows]
    lines += ["", "'Before' for Module 2 is the network right after Module 1's trunk was "
              "copied into both branches (fresh embedding heads).", ""]
    if r.get("evaluation"):
        lines += ["FVC protocol (`ifvit evaluate`), EER / FMR100. 'No training': the "
                  "same network at its random initialisation (what this run started "
                  "from); 'Module 2 untrained': the trained Module 1 with Module 2 as its "
                  "training started (Module 1's trunk in both branches, fresh heads); 'Module 1 "
                  "alone': RANSAC inliers of the trained Module 1.", "",
                  "| set | pairs (genuine / impostor) | trained | no training | Module 2 untrained "
                  "| Module 1 alone |", "|---|---|---|---|---|---|"]

        def cell(e: dict[str, Any], row: str) -> str:
            return f"{e['rows'][row]['eer']:.1%} / {e['rows'][row]['fmr100']:.1%}"

        for name, e in r["evaluation"].items():
            what = ("held-out synthetic fingers" if name == "synthetic"
                    else f"real: {Path(e['data']).name}")
            lines.append(f"| {what} | {e['pairs']['genuine']} / {e['pairs']['impostor']} | "
                         f"{cell(e, 'trained')} | {cell(e, 'scratch')} | {cell(e, 'untrained')} | "
                         f"{cell(e, 'module1')} |")
        lines += ["", "Pictures: det_*.png (DET curves), match_*.png (one genuine pair per set).",
                  ""]
    lines += [
              f"Training: Module 1 {r['module1']['seconds']:.0f} s, Module 2 "
              f"{r['module2']['seconds']:.0f} s; total {r['seconds']:.0f} s. Bundles: model/dense, "
              "model/match (`ifvit inspect`).",
              ""]
    return "\n".join(lines)
