"""Fine-tuning: a run started from a trained bundle (`init_from`) begins from its weights, on a
larger window if asked, and records where it started."""

import dataclasses

import numpy as np
import pytest

from ifvit_core import config, params
from ifvit_train.training.config import TrainConfig

# conftest's tiny_bundle was trained with these settings (same held-out split and validation pairs)
TC = TrainConfig(steps=2, batch_size=8, warmup_steps=1, validate_every=0, val_pairs=8,
                 val_prints=8, holdout=0.4, checkpoint_every=2,
                 input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                 margin_warmup_steps=0)


def quiet(s: str) -> None:
    pass


def test_dense_from_a_bundle_starts_from_its_module1(tiny_bundle, tiny_shards, tmp_path):
    from ifvit_train.serving.bundle import load_bundle, read_meta
    from ifvit_train.training.run import train_dense

    src = read_meta(tiny_bundle / "dense")
    meta = train_dense(tiny_shards, tmp_path / "ft", config.tiny(), TC,
                       init_from=tiny_bundle / "dense", log=quiet, progress=False)
    # same held-out pairs, same weights: the new run's first validation is the source's last
    assert meta["initial_validation"] == pytest.approx(
        {k.removeprefix("val_"): v for k, v in src["validation"].items()})
    assert meta["init_from"]["step"] == src["step"]
    # a fresh run (the source's own start, same seed) starts elsewhere
    assert src["initial_validation"] != meta["initial_validation"]
    assert load_bundle(tmp_path / "ft").step == TC.steps


@pytest.mark.slow  # two training runs
def test_dense_on_a_larger_window_records_it_and_match_inherits_it(tiny_bundle, tiny_shards,
                                                                   tmp_path):
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.training.run import train_dense, train_match

    base = config.tiny()
    cfg = base.replace(image_size=96, module2=dataclasses.replace(base.module2, global_size=96))
    meta = train_dense(tiny_shards, tmp_path / "d96", cfg, TC, init_from=tiny_bundle / "match",
                       log=quiet, progress=False)
    assert meta["preprocessing"]["input_size"] == [96, 96]
    m = train_match(tiny_shards, tmp_path / "m96", tmp_path / "d96", TC,
                    init_from=tiny_bundle / "match", log=quiet, progress=False)
    assert m["config"]["module2"]["global_size"] == 96 and m["init_from"]["step"] == TC.steps
    b = load_bundle(tmp_path / "m96")
    assert b.cfg.image_size == 96 and b.meta["preprocessing"]["input_size"] == [96, 96]


def test_match_from_a_module2_bundle_keeps_its_weights(tiny_bundle):
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.mesh import make_mesh
    from ifvit_train.training.module2 import init_match_state

    src = load_bundle(tiny_bundle / "match")
    cfg = src.cfg
    _, state, info = init_match_state(cfg, TC, make_mesh(), src.module1, log=quiet,
                                      init_matcher=src.matcher)
    want = params.flat_state(src.matcher)
    assert info["copied"] == len(want)
    from ifvit_train.training.state import merge_model

    got = params.flat_state(merge_model(_, state.params, state.batch_stats, train=False))
    for k, v in want.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    # another number of classes: everything but the ArcFace centres is kept
    more = cfg.replace(module2=dataclasses.replace(cfg.module2, num_classes=7))
    _, _, info = init_match_state(more, TC, make_mesh(), src.module1, log=quiet,
                                  init_matcher=src.matcher)
    assert info["copied"] == len(want) - 2


def test_init_from_a_module1_bundle_is_refused_for_module2(tiny_bundle, tiny_shards, tmp_path):
    from ifvit_train.serving.bundle import BundleError
    from ifvit_train.training.run import train_match

    with pytest.raises(BundleError):
        train_match(tiny_shards, tmp_path / "m", tiny_bundle / "dense", TC,
                    init_from=tiny_bundle / "dense", log=quiet, progress=False)
    assert not (tmp_path / "m").exists()


def test_data_without_held_out_pairs_is_refused_before_anything_is_written(tiny_bundle, tiny_shards,
                                                                           tmp_path):
    """One held-out finger gives no impostor pair: Module 2 could not be validated."""
    from ifvit_train.training.run import check_match_data, train_match

    one = TC.replace(holdout=1)  # a count: one of the 8 fingers held out
    with pytest.raises(ValueError, match="validation needs >= 2 held-out fingers"):
        check_match_data(tiny_shards, one)
    with pytest.raises(ValueError, match="validation needs >= 2 held-out fingers"):
        train_match(tiny_shards, tmp_path / "m", tiny_bundle / "dense", one, log=quiet,
                    progress=False)
    assert not (tmp_path / "m").exists()
    check_match_data(tiny_shards, TC)  # 3 of 8 fingers held out: fine
