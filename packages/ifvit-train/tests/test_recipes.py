"""Recipes (`ifvit_train.training.recipes`): each stage's settings are exactly what the commands
used before recipes existed (typed out here from the old `ifvit train` flags, `ifvit demo` and
scripts/train_shipped_model.sh), overrides replace only what they give, and a step-dependent
setting follows the final step count."""

import dataclasses

import pytest

from ifvit_core.config import get_preset
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.recipes import DEFAULT, DEMO, RECIPES, SHIPPED, PerSteps, get_recipe
from ifvit_train.training.run_recipe import check_recipe, stage_settings

# `ifvit train dense|all` with no flags, before recipes (apps/ifvit train.py at 760bd65)
OLD_CLI = dict(steps=400, batch_size=8, accum_steps=1, learning_rate=1e-3, holdout=0.2,
               compute_dtype="float32", max_rotation=30.0, max_translation=24.0,
               input_downscale=1.6, checkpoint_every=100, validate_every=100, seed=0,
               margin_warmup_steps=100, pseudo_label_conf=0.0, impression_pairs=0.5,
               train_fine=False, enhance=False, warmup_steps=40, weight_decay=2e-4,
               grad_clip=0.5, keep_checkpoints=2, val_pairs=64, val_prints=40,
               genuine_ratio=0.5, synthetic_fraction=0.5, data_threads=2, data_workers=0,
               mesh_data=-1, mesh_fsdp=1)


def test_trainconfig_defaults_are_the_old_command_line_defaults():
    assert dataclasses.asdict(TrainConfig()) == OLD_CLI
    assert stage_settings(DEFAULT.first("dense")) == TrainConfig(**OLD_CLI)
    assert stage_settings(DEFAULT.first("match")) == TrainConfig(**OLD_CLI)


def test_warmup_follows_the_steps_given():
    # the old command: warmup_steps=min(100, steps // 10)
    for steps, warm in ((2, 0), (300, 30), (1500, 100), (5000, 100)):
        assert stage_settings(DEFAULT.first("dense"), {"steps": steps}).warmup_steps == warm
    # an explicit value wins over the rule
    given = {"steps": 300, "warmup_steps": 7}
    assert stage_settings(DEFAULT.first("dense"), given).warmup_steps == 7
    assert PerSteps(5, 50).of(300) == 50 and PerSteps(2, 100).of(150) == 75


def test_demo_stages_equal_the_old_demo():
    # the old demo: TrainConfig(steps=300, batch_size=8, learning_rate=1e-3, holdout=0.2, seed=0,
    # warmup_steps=min(50, steps // 5), input_downscale=1.6, enhance=True, impression_pairs=0.5,
    # max_translation=24.0, checkpoint_every=100, validate_every=0), other fields at the old
    # TrainConfig defaults (margin_warmup_steps=0); Module 2: steps 150, warm-up min(50, 150 // 5),
    # margin warm-up min(100, 150 // 2); loss: arcface_scale 30, lambda_embed 1.
    dense = dict(OLD_CLI, steps=300, warmup_steps=50, enhance=True, margin_warmup_steps=0,
                 validate_every=0)
    assert stage_settings(DEMO.stage("dense")) == TrainConfig(**dense)
    match = dict(dense, steps=150, warmup_steps=30, margin_warmup_steps=75)
    assert stage_settings(DEMO.stage("match")) == TrainConfig(**match)
    loss = DEMO.stage("match").loss_config(get_preset("small").loss)
    assert (loss.arcface_scale, loss.lambda_embed) == (30.0, 1.0)
    assert DEMO.synth == {"fingers": 30, "impressions": 4}
    # the demo's --steps 20 --match-steps 10
    assert stage_settings(DEMO.stage("dense"), {"steps": 20}).warmup_steps == 4
    m = stage_settings(DEMO.stage("match"), {"steps": 10})
    assert (m.warmup_steps, m.margin_warmup_steps) == (2, 5)


def test_shipped_stages_equal_the_old_script():
    # scripts/train_shipped_model.sh before recipes: each stage's flags over the old CLI defaults
    base = dict(OLD_CLI, steps=1500, holdout=30.0, validate_every=500, checkpoint_every=250,
                warmup_steps=100)
    w256 = dict(OLD_CLI, steps=400, batch_size=4, learning_rate=3e-4, max_translation=48.0,
                holdout=30.0, validate_every=200, checkpoint_every=50, warmup_steps=40)
    m256 = dict(OLD_CLI, batch_size=4, learning_rate=3e-4, margin_warmup_steps=0, holdout=30.0,
                checkpoint_every=50)
    want = {
        "dense": base,
        "match": dict(base, margin_warmup_steps=300),
        "dense256": w256,
        "match256": dict(m256, steps=300, validate_every=150, warmup_steps=30),
        "dense_enh": dict(base, enhance=True),
        "dense_enh256": dict(w256, enhance=True),
        "match_enh256": dict(m256, steps=400, validate_every=200, warmup_steps=40),
    }
    assert [s.name for s in SHIPPED.stages] == list(want)
    for name, values in want.items():
        assert stage_settings(SHIPPED.stage(name)) == TrainConfig(**values), name
    links = {s.name: (s.from_dense, s.init_from, s.image_size) for s in SHIPPED.stages}
    assert links == {"dense": (None, None, None), "match": ("dense", None, None),
                     "dense256": (None, "match", 256), "match256": ("dense256", "match", None),
                     "dense_enh": (None, None, None),
                     "dense_enh256": (None, "dense_enh", 256),
                     "match_enh256": ("dense_enh256", "match256", None)}
    loss = SHIPPED.stage("match").loss_config(get_preset("small").loss)
    assert (loss.lambda_embed, loss.arcface_scale) == (1.0, 30.0)
    assert SHIPPED.stage("match256").loss_config(get_preset("small").loss) is None
    assert SHIPPED.synth == {"fingers": 300, "impressions": 8}


def test_model_config_window_and_base():
    stage = SHIPPED.stage("dense256")
    cfg = stage.model_config()
    assert cfg.image_size == 256 and cfg.module2.global_size == 256
    assert stage.model_config(image_size=192).image_size == 192
    tiny = get_preset("tiny")
    assert stage.model_config(base=tiny).loftr == tiny.loftr  # fine-tunes its base's network


def test_every_recipe_is_valid_and_bad_overrides_are_refused():
    for r in RECIPES.values():
        check_recipe(r)
        assert r.doc.strip() and r.stages
        for s in r.stages:
            assert s.from_dense is None or s.from_dense in [x.name for x in r.stages]
    with pytest.raises(ValueError, match="steps=0"):
        check_recipe(DEMO, per_stage={"match": {"steps": 0}})
    with pytest.raises(TypeError):
        stage_settings(DEFAULT.first("dense"), {"no_such_setting": 1})
    with pytest.raises(ValueError, match="unknown recipe 'nope'; known: default, demo, shipped"):
        get_recipe("nope")
    # a Module 2 stage never trains Module 1's fine stage
    assert not stage_settings(DEFAULT.first("match"), {"train_fine": True}).train_fine
