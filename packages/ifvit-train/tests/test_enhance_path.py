"""The optional ridge enhancement as one preprocessing path (`ifvit_train.serving.preprocessing`):
the record, the Module 1 step, `Verifier` and `Embedder` apply it on device; older bundles are
unchanged. (Recording by `ifvit train dense --enhance` and inheritance by `train match` are
exercised end to end in apps/ifvit/tests/test_cli_enhance.py.)"""

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ifvit_core import config
from ifvit_core.enhance import EnhanceConfig, enhance
from ifvit_train.evaluation.evaluate import load_prints
from ifvit_train.serving.bundle import BundleError, load_bundle
from ifvit_train.serving.gallery import Embedder
from ifvit_train.serving.infer import Verifier
from ifvit_train.serving.preprocessing import NO_ENHANCEMENT, describe, enhancement
from ifvit_train.serving.shipped import shipped_bundle
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.records import preprocessing

SHIPPED_DATA = Path(__file__).parent / "data" / "fvc2002_db1_b"
_enhance = jax.jit(enhance, static_argnums=2)


def test_the_record_and_its_parsing():
    cfg = config.tiny()
    on = preprocessing(cfg, TrainConfig(input_downscale=1.5, enhance=True,
                                        steps=1000, warmup_steps=50, max_translation=0.0,
                                        impression_pairs=0.0, margin_warmup_steps=0))
    off = preprocessing(cfg, TrainConfig(input_downscale=1.5,
                                         steps=1000, warmup_steps=50, max_translation=0.0,
                                         impression_pairs=0.0, margin_warmup_steps=0))
    assert off["enhancement"] == "none" and enhancement(off) is None
    assert on["enhancement"]["method"] == "gabor"
    assert on["enhancement"]["ridge_period"] == pytest.approx(9.5 / 1.5)
    assert enhancement(json.loads(json.dumps(on))) == EnhanceConfig.for_downscale(1.5)
    assert enhancement({}) is None  # bundles made before the key existed
    assert "Gabor" in describe(on) and describe(off) == "none"
    with pytest.raises(ValueError, match="expected"):
        enhancement({"enhancement": "fingernet"})
    with pytest.raises(ValueError, match="ridge_period"):
        enhancement({"enhancement": {"method": "gabor", "ridge_period": "wide"}})


def test_a_damaged_enhancement_record_is_refused_at_load(tmp_path):
    import shutil

    dst = tmp_path / "bad"
    shutil.copytree(shipped_bundle(), dst)
    meta = json.loads((dst / "bundle.json").read_text())
    meta["preprocessing"]["enhancement"] = {"method": "gabor", "gain": -1}
    (dst / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="bad config"):
        load_bundle(dst)


def test_dense_step_enhances_its_inputs():
    """step(raw batch, enhance) == step(batch of enhanced images, no enhancement)."""
    from ifvit_train.serving.mesh import make_mesh, shard_batch
    from ifvit_train.training.module1 import init_dense_state, make_dense_step

    cfg, mesh = config.tiny(), make_mesh()
    enh = EnhanceConfig(ridge_period=8.0)
    tc = TrainConfig(warmup_steps=1, enhance=True,
                     steps=1000, input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    s = cfg.image_size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:s, 0:s]
    imgs = np.stack([0.5 + 0.5 * np.cos(2 * np.pi / 8 * (xx * np.cos(t) + yy * np.sin(t)))
                     + 0.3 * rng.standard_normal((s, s)) for t in rng.uniform(0, np.pi, 8)])
    imgs = np.clip(imgs, 0, 1).astype(np.float32)[..., None]
    masks = np.ones((8, s, s), bool)
    masks[:, :, : s // 4] = False
    n = (s // 8) ** 2
    batch = {"image0": imgs, "image1": imgs, "mask0": masks, "mask1": masks,
             "gt_i": np.tile(np.arange(n, dtype=np.int32), (8, 1)),
             "gt_j": np.tile(np.arange(n, dtype=np.int32), (8, 1)),
             "gt_valid": np.ones((8, n), bool)}
    e = np.asarray(_enhance(jnp.asarray(imgs), jnp.asarray(masks), enh))
    assert np.abs(e - imgs).mean() > 0.1  # the enhanced images are not the raw ones
    pre = {**batch, "image0": e, "image1": e}
    losses = {}
    for name, b, kw in (("on", batch, {"enhance": enh}), ("manual", pre, {})):
        graphdef, state = init_dense_state(cfg, tc, mesh)
        step = make_dense_step(graphdef, cfg, tc, mesh, **kw)
        _, m = step(state, shard_batch(b, mesh))
        losses[name] = float(m["loss"])
    assert losses["on"] == pytest.approx(losses["manual"], rel=1e-5)


@pytest.fixture(scope="module")
def shipped():
    """The shipped weights without and with a Gabor record, its 10 test prints, the setting."""
    b = load_bundle(shipped_bundle(), require="match")
    pre = b.meta["preprocessing"]
    enh = EnhanceConfig.for_downscale(float(pre.get("downscale", 1.0)))
    def with_record(e: dict):
        return dataclasses.replace(b, meta={**b.meta, "preprocessing": {**pre, "enhancement": e}})

    plain, on = with_record(NO_ENHANCEMENT), with_record(enh.to_dict() | {"method": "gabor"})
    prints = load_prints(Verifier(plain), SHIPPED_DATA, "fvc").prepared
    return plain, on, enh, prints


def _enhanced_prints(prints, enh):
    x = jnp.asarray(np.stack([p.window for p in prints])[..., None])
    m = jnp.asarray(np.stack([p.mask for p in prints]))
    e = np.asarray(_enhance(x, m, enh))[..., 0]
    return [dataclasses.replace(p, window=w) for p, w in zip(prints, e, strict=True)]


def test_a_none_record_means_no_enhancement(shipped):
    plain, _, _, _ = shipped
    assert Verifier(plain).enhance is None
    assert describe(plain.meta["preprocessing"]) == "none"


def test_verifier_applies_the_bundles_enhancement(shipped):
    plain, on, enh, prints = shipped
    v_on, v_plain = Verifier(on), Verifier(plain)
    assert v_on.enhance == enh
    pairs = [(prints[i], prints[j]) for i, j in ((0, 1), (0, 2), (2, 3), (4, 9))]
    epr = _enhanced_prints(prints, enh)
    epairs = [(epr[i], epr[j]) for i, j in ((0, 1), (0, 2), (2, 3), (4, 9))]
    got = v_on.score_batch(pairs, 4)
    # the composition enhance -> the plain path gives the same scores
    ref = v_plain.score_batch(epairs, 4)
    np.testing.assert_allclose(got["score"], ref["score"], atol=1e-5)
    np.testing.assert_array_equal(got["inliers"], ref["inliers"])
    # and the same weights without the enhancement score differently
    raw = v_plain.score_batch(pairs, 4)
    assert np.max(np.abs(raw["score"] - got["score"])) > 1e-3
    # the single-pair path (`verify`, `ifvit match`) enhances too
    one = v_on.verify(*pairs[0])
    assert one["score"] == pytest.approx(float(got["score"][0]), abs=1e-5)


def test_embedder_applies_the_bundles_enhancement(shipped):
    plain, on, enh, prints = shipped
    got = Embedder(on, batch_size=4).embed(prints[:4])
    ref = Embedder(plain, batch_size=4).embed(_enhanced_prints(prints[:4], enh))
    np.testing.assert_allclose(got, ref, atol=1e-5)
    raw = Embedder(plain, batch_size=4).embed(prints[:4])
    assert np.max(np.abs(raw - got)) > 1e-3
