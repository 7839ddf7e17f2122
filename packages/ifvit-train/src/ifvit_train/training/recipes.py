"""Training recipes: every recommended way to train IFViT, in one place, as data.

A recipe is a sequence of stages; each stage is one `ifvit train dense` or `ifvit train match` run
into its own bundle folder, `WORKDIR/<stage name>`. A stage lists only what differs from the
defaults: `TrainConfig`'s defaults are the recommended values (they are the `default` recipe), the
model is a preset (optionally at another window size), and the loss is the model config's
(`ifvit_core.config.LossConfig`) with the stage's changes. Command-line flags override only what
they give, in every stage.

    recipe = get_recipe("shipped")
    for stage in recipe.stages:
        tc = stage.train_config(steps=...)        # TrainConfig with the overrides
        cfg = stage.model_config()                # dense: the preset at the stage's window size

Who runs them: `ifvit train all --recipe NAME` runs every stage in order (`default`: dense, then
match); `ifvit train dense|match` runs the recipe's first stage of that kind (default recipe:
`default`); `ifvit demo` runs `demo`; `scripts/train_shipped_model.sh` runs `shipped`. Every bundle
records the recipe and stage it was trained by (`training_recipe` in bundle.json).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ifvit_core.config import IFViTConfig, LossConfig, get_preset
from ifvit_train.training.config import TrainConfig


@dataclass(frozen=True)
class PerSteps:
    """A setting that follows the stage's step count: `min(cap, steps // divisor)`."""

    divisor: int
    cap: int

    def of(self, steps: int) -> int:
        return min(self.cap, steps // self.divisor)


# The learning-rate warm-up of every recipe: a tenth of the run, at most 100 steps.
WARMUP = PerSteps(10, 100)


@dataclass(frozen=True)
class Stage:
    """One training run of a recipe.

    name: its bundle folder under the recipe's workdir. kind: 'dense' (Module 1) or 'match'
    (Module 2). train: `TrainConfig` fields that differ from its defaults (a `PerSteps` value
    follows the stage's final step count). preset, image_size: dense stages' network (match stages
    take their Module 1's). loss: `LossConfig` changes (match stages). from_dense: match: the stage
    whose Module 1 it uses. init_from: the earlier stage it fine-tunes.
    """

    name: str
    kind: Literal["dense", "match"]
    train: Mapping[str, Any] = field(default_factory=dict)
    preset: str = "small"
    image_size: int | None = None
    loss: Mapping[str, Any] = field(default_factory=dict)
    from_dense: str | None = None
    init_from: str | None = None

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The stage's TrainConfig with `overrides` (TrainConfig fields; None = not given).

        Raises ValueError for an unknown field or an invalid value."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(self.train) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise ValueError(f"stage {self.name!r}: unknown training settings {unknown}")
        values = {**{k: v for k, v in self.train.items() if not isinstance(v, PerSteps)}, **given}
        steps = values.get("steps", TrainConfig.__dataclass_fields__["steps"].default)
        for k, v in self.train.items():
            if isinstance(v, PerSteps) and k not in given:
                values[k] = v.of(steps)
        return TrainConfig(**values)

    def model_config(self, preset: str | None = None, image_size: int | None = None,
                     base: IFViTConfig | None = None) -> IFViTConfig:
        """A dense stage's network: `base` (the config of the bundle it fine-tunes) or the preset,
        at the stage's window size (`preset`, `image_size`: flags, None = not given)."""
        cfg = base if base is not None else get_preset(preset or self.preset)
        size = image_size or self.image_size
        if size is None:
            return cfg
        return cfg.replace(image_size=size,
                           module2=dataclasses.replace(cfg.module2, global_size=size))

    def loss_config(self, base: LossConfig, **overrides: Any) -> LossConfig | None:
        """A match stage's loss: `base` (its Module 1 bundle's) with the stage's changes and
        `overrides` (None = not given); None when nothing changes (the trainer then uses base)."""
        changes = {**self.loss, **{k: v for k, v in overrides.items() if v is not None}}
        return dataclasses.replace(base, **changes) if changes else None


@dataclass(frozen=True)
class Recipe:
    """A named sequence of stages (`doc`: the command and the result it is expected to reach).

    synth: the synthetic data it is made for (`ifvit synth` fingers and impressions)."""

    name: str
    doc: str
    stages: tuple[Stage, ...]
    synth: Mapping[str, int] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"recipe {self.name!r} has no stage {name!r}")

    def first(self, kind: str) -> Stage:
        """The recipe's first stage of `kind` (what `ifvit train dense|match --recipe` runs)."""
        for s in self.stages:
            if s.kind == kind:
                return s
        raise KeyError(f"recipe {self.name!r} has no {kind} stage")

    def record(self, stage: Stage) -> dict[str, str]:
        """What a bundle records of the recipe that trained it (`training_recipe`)."""
        return {"name": self.name, "stage": stage.name}


DEFAULT = Recipe(
    name="default",
    doc="""`ifvit train all --data SHARDS --workdir W`: Module 1 for 400 steps on 128-px windows of
    prints shrunk by 1.6 (corrupted copies shifted by up to 24 px and pairs of two impressions
    with exact correspondences), then Module 2 for 400 steps from it. The recommended start on
    synthetic shards; the values are TrainConfig's defaults.""",
    stages=(
        Stage("dense", "dense", {"warmup_steps": WARMUP}),
        Stage("match", "match", {"warmup_steps": WARMUP}, from_dense="dense"),
    ),
)

DEMO = Recipe(
    name="demo",
    doc="""`ifvit demo`: 30 synthetic fingers x 4 impressions, Module 1 for 300 steps with ridge
    enhancement, Module 2 for 150 steps with ArcFace at s=30 and L_E at weight 1 (s=64, weight
    0.1 barely moved the held-out EER in a few hundred CPU steps). With enhancement, impression
    pairs and shifted windows pay off within 300 steps (real DB1_B, Module 1 alone: 43.4% EER
    with corrupted copies only, 21.1% with both; measured when the demo adopted them). About 10
    minutes on 2 CPU cores; expected: held-out synthetic EER well below the untrained network's
    (docs/demo.md).""",
    stages=(
        Stage("dense", "dense", {"steps": 300, "warmup_steps": PerSteps(5, 50), "enhance": True,
                                 "margin_warmup_steps": 0, "validate_every": 0}),
        Stage("match", "match", {"steps": 150, "warmup_steps": PerSteps(5, 50), "enhance": True,
                                 "margin_warmup_steps": PerSteps(2, 100), "validate_every": 0},
              loss={"arcface_scale": 30.0, "lambda_embed": 1.0}, from_dense="dense"),
    ),
    synth={"fingers": 30, "impressions": 4},
)

_SHIPPED_BASE = {"steps": 1500, "holdout": 30.0, "validate_every": 500, "checkpoint_every": 250,
                 "warmup_steps": WARMUP}
_SHIPPED_256 = {"steps": 400, "batch_size": 4, "learning_rate": 3e-4, "max_translation": 48.0,
                "holdout": 30.0, "validate_every": 200, "checkpoint_every": 50,
                "warmup_steps": WARMUP}
_SHIPPED_256_MATCH = {"batch_size": 4, "learning_rate": 3e-4, "margin_warmup_steps": 0,
                      "holdout": 30.0, "checkpoint_every": 50, "warmup_steps": WARMUP}

SHIPPED = Recipe(
    name="shipped",
    doc="""`bash scripts/train_shipped_model.sh` (its networks; the script then fits the linear
    necks on real prints and calibrates): 300 synthetic fingers x 8 impressions; Module 1 and
    Module 2 on 128-px windows (1500 steps each), both fine-tuned on 256-px windows (whole
    prints), Module 1 retrained with ridge enhancement (128 then 256 px) and Module 2 fine-tuned
    on it. About 2 hours on an idle 2-core CPU. Result (after the necks and calibration):
    docs/accuracy.md, FVC2002 DB1_B decision-score EER 2.25%.""",
    stages=(
        Stage("dense", "dense", _SHIPPED_BASE),
        Stage("match", "match", {**_SHIPPED_BASE, "margin_warmup_steps": 300},
              loss={"lambda_embed": 1.0, "arcface_scale": 30.0}, from_dense="dense"),
        Stage("dense256", "dense", _SHIPPED_256, image_size=256, init_from="match"),
        Stage("match256", "match", {**_SHIPPED_256_MATCH, "steps": 300, "validate_every": 150},
              from_dense="dense256", init_from="match"),
        Stage("dense_enh", "dense", {**_SHIPPED_BASE, "enhance": True}),
        Stage("dense_enh256", "dense", {**_SHIPPED_256, "enhance": True}, image_size=256,
              init_from="dense_enh"),
        Stage("match_enh256", "match",
              {**_SHIPPED_256_MATCH, "steps": 400, "validate_every": 200},
              from_dense="dense_enh256", init_from="match256"),
    ),
    synth={"fingers": 300, "impressions": 8},
)

RECIPES = {r.name: r for r in (DEFAULT, DEMO, SHIPPED)}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; ValueError naming the known ones otherwise."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None
