"""Running a recipe (`recipes`): one stage, or every stage in order, with the user's overrides.

    metas = train_recipe(get_recipe("shipped"), shards, workdir)       # workdir/<stage> bundles
    meta = train_stage(recipe, recipe.first("dense"), shards, workdir)  # one stage, any folder

What `ifvit train`, `ifvit demo` and `scripts/train_shipped_model.sh` call: a recipe change
changes all three.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ifvit_core.config import config_from_dict
from ifvit_train.serving.bundle_meta import read_meta
from ifvit_train.training.recipes import Recipe, Stage
from ifvit_train.training.run import DataDirs, train_dense, train_match


def stage_settings(stage: Stage, train: Mapping[str, Any] | None = None):
    """The stage's TrainConfig with `train` overrides (None values = not given); a Module 2 stage
    never trains Module 1's fine stage (it keeps its Module 1's). Raises ValueError."""
    tc = stage.train_config(**(train or {}))
    return tc.replace(train_fine=False) if stage.kind == "match" else tc


def train_stage(recipe: Recipe, stage: Stage, data_dir: DataDirs, workdir: str | Path, *,
                train: Mapping[str, Any] | None = None, loss: Mapping[str, Any] | None = None,
                preset: str | None = None, image_size: int | None = None,
                init_from: str | Path | None = None, from_dense: str | Path | None = None,
                init_loftr: str | Path | None = None, mix: Sequence[float] | None = None,
                force: bool = False, log: Callable[[str], None] = print,
                progress: bool = True) -> dict[str, Any]:
    """Trains one stage of `recipe` into `workdir`; returns its bundle.json.

    train / loss: TrainConfig / LossConfig overrides (None values = not given); preset,
    image_size: a dense stage's network (ignored with `init_from`, whose network it fine-tunes,
    except the window size). init_from, from_dense: the bundles the stage starts from (a match
    stage needs from_dense). Raises what `train_dense` / `train_match` raise.
    """
    tc = stage_settings(stage, train)
    record = recipe.record(stage)
    if stage.kind == "dense":
        base = config_from_dict(read_meta(init_from)["config"]) if init_from else None
        cfg = stage.model_config(preset, image_size, base=base)
        return train_dense(data_dir, workdir, cfg, tc, init_loftr=init_loftr, init_from=init_from,
                           force=force, log=log, progress=progress, recipe=record)
    if from_dense is None:
        raise ValueError(f"stage {stage.name!r} trains Module 2: give the Module 1 bundle")
    base_loss = config_from_dict(read_meta(from_dense)["config"]).loss
    return train_match(data_dir, workdir, from_dense, tc,
                       loss=stage.loss_config(base_loss, **(loss or {})), init_from=init_from,
                       mix=mix, force=force, log=log, progress=progress, recipe=record)


def check_recipe(recipe: Recipe, train: Mapping[str, Any] | None = None,
                 per_stage: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Every stage's settings are valid with these overrides (ValueError otherwise), checked
    before any stage runs."""
    for stage in recipe.stages:
        stage_settings(stage, {**(train or {}), **(per_stage or {}).get(stage.name, {})})


def train_recipe(recipe: Recipe, data_dir: DataDirs, workdir: str | Path, *,
                 train: Mapping[str, Any] | None = None,
                 per_stage: Mapping[str, Mapping[str, Any]] | None = None,
                 loss: Mapping[str, Any] | None = None, preset: str | None = None,
                 image_size: int | None = None, init_loftr: str | Path | None = None,
                 force: bool = False, log: Callable[[str], None] = print, progress: bool = True,
                 on_stage: Callable[[Stage, dict[str, Any]], None] | None = None
                 ) -> dict[str, dict[str, Any]]:
    """Every stage of `recipe` in order, stage `s` into `workdir/s.name`; returns {stage name:
    bundle.json}. Each stage resumes (rerun the same call after an interruption).

    train: TrainConfig overrides for every stage; per_stage: {stage name: overrides} on top;
    loss: LossConfig overrides of the match stages; preset: dense stages that start fresh;
    image_size: every dense stage; init_loftr: dense stages that start fresh.
    on_stage(stage, meta): called after each stage.
    """
    check_recipe(recipe, train, per_stage)
    workdir = Path(workdir)
    out = {}
    for stage in recipe.stages:
        meta = train_stage(
            recipe, stage, data_dir, workdir / stage.name,
            train={**(train or {}), **(per_stage or {}).get(stage.name, {})}, loss=loss,
            preset=preset, image_size=image_size,
            init_from=workdir / stage.init_from if stage.init_from else None,
            from_dense=workdir / stage.from_dense if stage.from_dense else None,
            init_loftr=None if stage.init_from else init_loftr, force=force, log=log,
            progress=progress)
        out[stage.name] = meta
        if on_stage is not None:
            on_stage(stage, meta)
    return out
