"""`ifvit train dense|match|all`: Module 1 / Module 2 training into resumable model bundles."""

from __future__ import annotations

import argparse
from pathlib import Path

from ifvit_cli.errors import UserError
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.recipes import RECIPES

TC = TrainConfig()  # the recommended values: the `default` recipe

HELP = "train Module 1 (dense), Module 2 (match) or both (all) into a model bundle"
DESCRIPTION = """\
Train IFViT on ArrayRecord shards (`ifvit ingest` output). Fingers are split into training and
held-out fingers (--holdout); held-out fingers are never trained on and give the validation numbers.

  dense  Module 1 (LoFTR dense registration) on corrupted + rotated copies with exact ground truth;
         validation: match precision/recall and registration error on held-out fingers. With
         --train-fine also the fine stage (validation adds coarse vs fine end-point error).
  match  Module 2 (global + ROI branches, L_D + L_E + ArcFace) from a bundle's Module 1 (a Module 1
         bundle, or a Module 2 bundle such as the shipped model); the frozen Module 1 aligns every
         pair exactly as at inference; validation: EER on held-out fingers. --data may be given
         several times: each folder is split on its own, its fingers are classes of their own,
         and each pair comes from folder k with probability W_k of --mix (default: in proportion
         to the folders' training prints); validation uses every folder's held-out fingers.
  all    every stage of --recipe in order, stage S into WORKDIR/S (default recipe: dense into
         WORKDIR/dense, then match into WORKDIR/match).

Every setting comes from a recipe (--recipe, default `default`: TrainConfig's defaults, the
recommended values; `ifvit_train.training.recipes` lists them all); a flag overrides it only when
given, in every stage it applies to. `dense` / `match` run the recipe's first stage of that kind.

The workdir becomes a model bundle (bundle.json, Orbax checkpoints, metrics.jsonl,
train_curves.png; see `ifvit inspect`). Rerunning the same command resumes exactly where it stopped
(after a crash, Ctrl-C or kill); a workdir holding another run is refused."""
EPILOG = """\
examples:
  ifvit train all --data shards/ --workdir runs/m --preset small --steps 400
  # the shipped model's networks (seven stages; see scripts/train_shipped_model.sh)
  ifvit train all --recipe shipped --data shards/ --workdir runs/shipped/model
  ifvit train dense --data shards/ --workdir runs/m1 --preset paper --init-loftr loftr.safetensors
  ifvit train match --data shards/ --from-dense runs/m1 --workdir runs/m2 --steps 2000 --accum 4
  # Module 2 on synthetic shards (exact correspondences) and real shards, half the pairs each
  ifvit train match --data synth_shards --data real_shards --mix 0.5,0.5 --from-dense runs/m1 \
      --workdir runs/m2mix
  # fine-tune: Module 1 on whole prints (256-px windows), then Module 2 on real prints
  ifvit train dense --data shards/ --workdir runs/m1_256 --init-from runs/m1 --image-size 256
  ifvit train match --data real_shards/ --from-dense runs/m1_256 --init-from runs/m2 \
      --workdir runs/m2r
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=["dense", "match", "all"], help="what to train")
    p.add_argument("--recipe", default="default", choices=list(RECIPES),
                   help="the settings to start from (default: default; `demo` is `ifvit demo`'s, "
                        "`shipped` the shipped model's); every flag below overrides it")
    p.add_argument("--data", type=Path, required=True, action="append",
                   help="shard folder (ifvit ingest --out); match: repeat it to train on several "
                        "folders at once")
    p.add_argument("--mix", default=None, metavar="W1,W2,...",
                   help="match: one weight >= 0 per --data, the share of training pairs drawn "
                        "from each folder (normalised; default: in proportion to each folder's "
                        "training prints)")
    p.add_argument("--workdir", type=Path, required=True, help="run folder = the model bundle")
    p.add_argument("--preset", default=None, choices=["tiny", "small", "paper"],
                   help="model size for dense/all (default: small, or --init-from's; match takes "
                        "its Module 1's)")
    p.add_argument("--image-size", type=int, default=None,
                   help="dense/all: side of the model-input window in pixels (multiple of 8), for "
                        "Module 1 and Module 2's global branch; large enough (e.g. 256 at "
                        "--downscale 1.6) and Module 1 registers the whole print instead of a "
                        "centre crop (default: the preset's, 128 for small; match takes its "
                        "Module 1's)")
    p.add_argument("--init-from", type=Path,
                   help="fine-tune: dense: start Module 1 from a trained bundle's Module 1 (its "
                        "preset is used); match: start Module 2 from a trained Module 2 bundle "
                        "(ArcFace class centres are re-learnt when the number of fingers differs)")
    p.add_argument("--from-dense", type=Path,
                   help="match: the bundle whose Module 1 to use (a Module 1 bundle, or a Module 2 "
                        "bundle such as the shipped model)")
    p.add_argument("--init-loftr", type=Path,
                   help="dense/all: converted LoFTR weights to start from")
    p.add_argument("--steps", type=int, default=None,
                   help=f"optimizer updates per stage (default: the recipe's; {TC.steps})")
    p.add_argument("--batch", type=int, default=None,
                   help=f"pairs per micro-batch, all devices (default: {TC.batch_size})")
    p.add_argument("--accum", type=int, default=None,
                   help=f"micro-batches per update (default: {TC.accum_steps})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default: {TC.learning_rate:g})")
    p.add_argument("--bf16", action="store_true", default=None,
                   help="bfloat16 compute, float32 master weights")
    p.add_argument("--holdout", type=float, default=None,
                   help="fingers held out for validation: a fraction, or a count >= 1 "
                        f"(of each --data folder; default: {TC.holdout:g})")
    p.add_argument("--max-rotation", type=float, default=None,
                   help=f"rotation range of corrupted-copy pairs in degrees (default: "
                        f"{TC.max_rotation:g})")
    p.add_argument("--downscale", type=float, default=None,
                   help="dense/all: shrink the 500-ppi print by this factor (1-2) "
                        "before taking the model-input window, so it covers more of the "
                        "finger; recorded in the bundle and used by every command that loads it "
                        f"(match takes its Module 1's; default: {TC.input_downscale:g}: the "
                        "128-px window sees ~205 px of the print)")
    p.add_argument("--max-translation", type=float, default=None,
                   help="translation range of corrupted-copy pairs in pixels; > 0 stops Module 1 "
                        f"from mapping every cell to itself by position (default: "
                        f"{TC.max_translation:g})")
    p.add_argument("--impression-pairs", type=float, default=None,
                   help="dense: fraction of pairs made of two different impressions with "
                        "exact ground truth (shards ingested from an `ifvit synth` folder; other "
                        f"shards use corrupted copies only; default: {TC.impression_pairs:g})")
    p.add_argument("--train-fine", action="store_true", default=None,
                   help="dense/all: also train Module 1's fine stage (LoFTR's fine loss on "
                        "ground-truth matches); the bundle then refines matches with it (default: "
                        "coarse only, fine stage off)")
    p.add_argument("--lambda-dense", type=float, default=None,
                   help="Module 2: weight of L_D, the dense-correspondence loss on both branches "
                        "(default: the model config's, 0.5 [PRIOR]; 0 turns it off)")
    p.add_argument("--enhance", action="store_true", default=None,
                   help="dense/all: enhance every model-input window on device "
                        "(orientation field + contextual Gabor filtering, in place of the paper's "
                        "FingerNet); recorded in the bundle and applied by every command "
                        "that loads it (match takes its Module 1's; default: off)")
    p.add_argument("--lambda-embed", type=float, default=None,
                   help="Module 2: weight of L_E (default: the model config's, 0.1 [PRIOR])")
    p.add_argument("--pseudo-labels", type=float, default=None, metavar="CONF",
                   help="match: supervise L_D on genuine pairs without exact correspondences "
                        "(real impressions) with Module 1's own RANSAC inliers of coarse "
                        "confidence >= CONF (0.2 = all its matches; precision measured by "
                        "benchmarks/bench_pseudo_labels.py; default: off)")
    p.add_argument("--lambda-template", type=float, default=None,
                   help="match: weight of ArcFace + L_E on each print's single-print template "
                        "(what `ifvit enroll` stores; default: 0, off)")
    p.add_argument("--lambda-template-consistency", type=float, default=None,
                   help="match: weight of (template cosine - pair cosine)^2 (default: 0, off)")
    p.add_argument("--arcface-scale", type=float, default=None,
                   help="Module 2: ArcFace scale s (default: the model config's, 64 [PRIOR])")
    p.add_argument("--margin-warmup", type=int, default=None,
                   help="Module 2: steps over which the ArcFace margin ramps up from 0 "
                        f"(default: {TC.margin_warmup_steps})")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help=f"steps (default: {TC.checkpoint_every})")
    p.add_argument("--validate-every", type=int, default=None,
                   help=f"steps; 0 = at the end (default: {TC.validate_every})")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed of init, data and RANSAC (default: {TC.seed})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument("--force", action="store_true",
                   help="use a --workdir that holds other files (none of them is deleted)")


def _train_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields the command line gives (flags not given are left out)."""
    given = {"steps": args.steps, "batch_size": args.batch, "accum_steps": args.accum,
             "learning_rate": args.lr, "holdout": args.holdout,
             "compute_dtype": "bfloat16" if args.bf16 else None,
             "max_rotation": args.max_rotation, "max_translation": args.max_translation,
             "input_downscale": args.downscale, "checkpoint_every": args.checkpoint_every,
             "validate_every": args.validate_every, "seed": args.seed,
             "margin_warmup_steps": args.margin_warmup, "pseudo_label_conf": args.pseudo_labels,
             "impression_pairs": args.impression_pairs, "train_fine": args.train_fine,
             "enhance": args.enhance}
    return {k: v for k, v in given.items() if v is not None}


def _loss_overrides(args: argparse.Namespace) -> dict:
    given = {"lambda_dense": args.lambda_dense, "lambda_embed": args.lambda_embed,
             "arcface_scale": args.arcface_scale, "lambda_template": args.lambda_template,
             "lambda_template_consistency": args.lambda_template_consistency}
    return {k: v for k, v in given.items() if v is not None}


def _settings_from_args(args: argparse.Namespace, kind: str | None = None):
    """The TrainConfig of the recipe's first `kind` stage (default: the command's) with the flags
    given; every stage of the recipe is checked for `train all`. One line, exit 2, if invalid."""
    from ifvit_train.training.recipes import get_recipe
    from ifvit_train.training.run_recipe import check_recipe, stage_settings

    recipe = get_recipe(args.recipe)
    kind = kind or ("dense" if args.stage == "all" else args.stage)
    try:
        if args.stage == "all":
            check_recipe(recipe, _train_overrides(args))
        return stage_settings(recipe.first(kind), _train_overrides(args))
    except ValueError as e:
        raise UserError(f"{e}; see ifvit train --help") from None


def _data(args: argparse.Namespace) -> Path | list[Path]:
    """The one --data folder, or the list of several."""
    return args.data[0] if len(args.data) == 1 else args.data


def _data_label(args: argparse.Namespace) -> str:
    return ", ".join(str(d) for d in args.data)


def _mix(args: argparse.Namespace) -> list[float] | None:
    """--mix as floats, checked against the --data folders (one line, exit 2 otherwise)."""
    if args.mix is None:
        return None
    from ifvit_data.mix import normalise_weights

    try:
        weights = [float(w) for w in args.mix.split(",")]
    except ValueError:
        raise UserError(f"--mix {args.mix}: give numbers separated by commas, one per --data "
                        "(e.g. --mix 0.5,0.5)") from None
    try:
        normalise_weights(weights, len(args.data))
    except ValueError as e:
        raise UserError(f"--mix {args.mix}: {e}") from None
    return weights


def _check(args: argparse.Namespace) -> None:
    _settings_from_args(args)  # every setting, before any work
    if len(args.data) > 1 and args.stage != "match":
        raise UserError("several --data folders are for `train match`; `train dense` / `train "
                        "all` take one")
    if args.mix is not None and args.stage != "match":
        raise UserError("--mix is only for `train match` (with several --data folders)")
    for d in args.data:
        if not d.is_dir() or not (d / "manifest.json").is_file():
            raise UserError(f"--data {d}: not a shard folder (no manifest.json); run "
                            f"`ifvit ingest --input IMAGES --layout fvc --out {d}` first")
    _mix(args)
    if args.stage == "match" and args.from_dense is None:
        raise UserError("train match needs --from-dense BUNDLE (the Module 1 bundle)")
    if args.stage != "match" and args.from_dense is not None:
        raise UserError("--from-dense is only for `train match`")
    if args.stage == "dense" and (args.pseudo_labels or args.lambda_template is not None
                                  or args.lambda_template_consistency is not None):
        raise UserError("--pseudo-labels and --lambda-template* are Module 2 settings: for `train "
                        "match` or `train all`")
    if args.stage == "match" and args.train_fine:
        raise UserError("--train-fine is for `train dense` or `train all` (Module 2 keeps the fine "
                        "stage of its --from-dense bundle)")
    for flag, v in (("--lambda-dense", args.lambda_dense), ("--lambda-embed", args.lambda_embed),
                    ("--lambda-template", args.lambda_template),
                    ("--lambda-template-consistency", args.lambda_template_consistency)):
        if v is not None and not v >= 0:
            raise UserError(f"{flag} {v}: a loss weight must be >= 0 (0 turns the loss off)")
    if args.init_from is not None:
        if args.stage == "all":
            raise UserError("--init-from is for `train dense` or `train match` (run them one after "
                            "the other to fine-tune both modules)")
        if args.init_loftr is not None:
            raise UserError("give --init-from or --init-loftr, not both")
        if not (args.init_from / "bundle.json").is_file():
            raise UserError(f"--init-from {args.init_from}: not a model bundle (no bundle.json)")
        _check_preset(args)
    if args.stage == "match" and (args.image_size is not None or args.preset is not None):
        raise UserError("train match takes its model and window size from --from-dense; drop "
                        "--preset / --image-size")
    if args.image_size is not None and (args.image_size < 32 or args.image_size % 8):
        raise UserError(f"--image-size {args.image_size}: must be a multiple of 8, at least 32")
    if args.stage == "match" and args.enhance:
        raise UserError("--enhance is for `train dense` or `train all` (Module 2 takes the "
                        "enhancement of its --from-dense bundle)")
    if args.init_loftr is not None and not args.init_loftr.is_file():
        raise UserError(f"--init-loftr {args.init_loftr}: no such file; convert one with "
                        "`ifvit convert`")
    from ifvit_data.outputs import OutputError, claim_output_dir

    if args.stage == "match" and len(args.data) > 1:
        _check_match_data(args)  # before the --from-dense bundle is loaded
    if args.stage == "all":
        _check_match_data(args)
        # the parent of the two bundles; each bundle claims its own folder
        inputs = [*args.data] + ([args.init_loftr] if args.init_loftr else [])
        try:
            claim_output_dir(args.workdir, "train-all", inputs=inputs, force=args.force)
        except OutputError as e:
            raise UserError(str(e)) from None


def _check_match_data(args: argparse.Namespace) -> None:
    """Refuses data Module 2 cannot train on before Module 1 spends its training time."""
    from ifvit_data.shards import ShardError
    from ifvit_train.training.data import DataFolderError
    from ifvit_train.training.run import check_match_data

    try:
        check_match_data(_data(args), _settings_from_args(args, "match"), _mix(args))
    except ShardError as e:
        raise UserError(str(e)) from None
    except DataFolderError as e:
        raise UserError(f"--data {e}") from None
    except ValueError as e:
        raise UserError(f"--data {_data_label(args)}: {e}") from None


def run(args: argparse.Namespace) -> int:
    _check(args)
    from ifvit_data.outputs import OutputError
    from ifvit_data.shards import ShardError
    from ifvit_train.serving.bundle import BundleError
    from ifvit_train.training.data import DataFolderError
    from ifvit_train.training.loop import TrainingDiverged
    from ifvit_train.training.recipes import get_recipe
    from ifvit_train.training.run_recipe import train_recipe, train_stage

    recipe = get_recipe(args.recipe)
    common = {"train": _train_overrides(args), "loss": _loss_overrides(args),
              "preset": args.preset, "image_size": args.image_size,
              "init_loftr": args.init_loftr, "force": args.force,
              "progress": not args.no_progress}
    try:
        if args.stage == "all":
            train_recipe(recipe, args.data[0], args.workdir, **common,
                         on_stage=lambda s, meta: _report(s, args.workdir / s.name, meta))
        else:
            stage = recipe.first(args.stage)
            meta = train_stage(recipe, stage, _data(args), args.workdir, **common,
                               init_from=args.init_from, from_dense=args.from_dense,
                               mix=_mix(args))
            _report(stage, args.workdir, meta)
    except (BundleError, OutputError, ShardError, TrainingDiverged) as e:
        raise UserError(str(e)) from None
    except DataFolderError as e:
        raise UserError(f"--data {e}") from None
    except ValueError as e:  # data that cannot be trained on (e.g. too few fingers to split)
        raise UserError(f"--data {_data_label(args)}: {e}") from None
    return 0


def _check_preset(args: argparse.Namespace) -> None:
    """--preset must be the network --init-from's bundle holds."""
    from ifvit_core.config import config_from_dict, get_preset
    from ifvit_train.serving.bundle_meta import BundleError, read_meta

    try:
        cfg = config_from_dict(read_meta(args.init_from)["config"])
    except (BundleError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"--init-from {args.init_from}: unreadable bundle.json ({e})") from None
    if args.preset is not None and get_preset(args.preset).loftr.backbone != cfg.loftr.backbone:
        raise UserError(f"--init-from {args.init_from} is not a `{args.preset}` model; drop "
                        "--preset")


def _report(stage, path: Path, meta: dict) -> None:
    name = "Module 1" if stage.kind == "dense" else "Module 2"
    if stage.name not in ("dense", "match"):
        name += f" ({stage.name})"
    def fmt(d: dict | None) -> str:
        return ", ".join(f"{k.removeprefix('val_')} {v:.3f}" for k, v in (d or {}).items())

    print(f"{name}: {meta['step']} steps -> bundle {path}")
    print(f"  validation before training: {fmt(meta.get('initial_validation'))}")
    print(f"  validation after training:  {fmt(meta.get('validation'))}")
