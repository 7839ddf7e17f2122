"""Module 1 training step on 8 simulated CPU devices: sharding, loss decrease, metrics."""

import jax
import numpy as np
import pytest

from ifvit_core import config
from ifvit_train.serving.mesh import make_mesh, mesh_shape, shard_batch
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.module1 import dense_metrics, init_dense_state, make_dense_step


def test_mesh_shape_arithmetic():
    assert mesh_shape(8) == (8, 1)
    assert mesh_shape(8, fsdp=2) == (4, 2)
    assert mesh_shape(8, data=2, fsdp=-1) == (2, 4)
    with pytest.raises(ValueError, match="does not use"):
        mesh_shape(8, data=3)


def _shift_pairs(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """image1 = image0 shifted by one coarse cell (8 px) right and down; exact coarse GT."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size + 8, 0:size + 8]
    big = []
    for _ in range(n):
        theta, f = rng.uniform(0, np.pi), rng.uniform(0.1, 0.14)
        ridge = 0.5 + 0.5 * np.cos(2 * np.pi * f * (xx * np.cos(theta) + yy * np.sin(theta))
                                   + 0.002 * (xx - size / 2) ** 2)
        big.append(ridge + 0.1 * rng.standard_normal(ridge.shape))
    big = np.clip(np.stack(big), 0, 1).astype(np.float32)
    image0 = big[:, 8:, 8:][..., None]
    image1 = big[:, : size, : size][..., None]  # content at p0 moves to p0 + (8, 8)
    w = size // 8
    l_len = w * w
    i = np.arange(l_len)
    r, c = i // w, i % w
    ok = (r + 1 < w) & (c + 1 < w)
    gt_i = np.where(ok, i, 0)
    gt_j = np.where(ok, (r + 1) * w + (c + 1), 0)
    order = np.argsort(~ok, kind="stable")  # valid first (contract)

    def tile(a: np.ndarray) -> np.ndarray:
        return np.tile(a[order][None], (n, 1))

    return {"image0": image0, "image1": image1, "gt_i": tile(gt_i).astype(np.int32),
            "gt_j": tile(gt_j).astype(np.int32), "gt_valid": tile(ok)}


def test_dense_step_is_sharded_and_learns():
    assert jax.device_count() == 8, "conftest sets 8 simulated host devices"
    cfg = config.tiny()
    tc = TrainConfig(learning_rate=3e-3, warmup_steps=1, steps=40,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    mesh = make_mesh()
    graphdef, state = init_dense_state(cfg, tc, mesh)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    batch = shard_batch(_shift_pairs(8, cfg.image_size, 0), mesh)
    assert len(batch["image0"].sharding.device_set) == 8
    losses = []
    for _ in range(12):
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
    assert int(state.step) == 12
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses
    assert float(m["num_gt"]) == 8 * 49  # 7x7 cells of the 8x8 grid have a partner
    # the fine stage and the 1/2 FPN branch are unused by the coarse loss: frozen, not decayed
    before = init_dense_state(cfg, tc, mesh)[1]

    def get(s, name: str):  # params["loftr_fine"] or params["backbone"]["layer2_outconv"]
        top, _, sub = name.partition("/")
        return s.params[top][sub] if sub else s.params[top]

    for name in ("loftr_fine", "fine_preprocess", "backbone/layer1_outconv2_0",
                 "backbone/layer2_outconv"):
        a = jax.tree.leaves(get(state, name))
        b = jax.tree.leaves(get(before, name))
        assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))
    moved = jax.tree.leaves(state.params.loftr_coarse)[0]
    assert not np.array_equal(np.asarray(moved),
                              np.asarray(jax.tree.leaves(before.params.loftr_coarse)[0]))


def test_shard_batch_rejects_indivisible_batch():
    mesh = make_mesh()
    with pytest.raises(ValueError, match="not divisible by the 8 local devices"):
        shard_batch({"x": np.zeros((6, 2))}, mesh)


def test_dense_metrics_hand_case():
    out = {"valid": np.array([[True, True, True, False]]), "j_ids": np.array([[2, 0, 3, 1]])}
    batch = {"gt_i": np.array([[0, 1, 0, 0]]), "gt_j": np.array([[2, 1, 0, 0]]),
             "gt_valid": np.array([[True, True, False, False]])}
    m = jax.tree.map(float, dense_metrics(out, batch))
    # cell 0 -> 2 correct; cell 1 predicted 0 but GT 1: wrong; cell 2 has no GT (e.g. off the
    # foreground): a predicted match there is wrong too. 1 of 3 predictions right; 2 GT matches.
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == 0.5 and m["matches_per_pair"] == 3


def test_init_from_converted_loftr_file(tmp_path):
    """--init-loftr: Module 1 starts from a converted file (written here without torch)."""
    from flax import nnx

    from ifvit_convert.io import save_converted
    from ifvit_core import params
    from ifvit_core.loftr import LoFTR

    cfg = config.tiny()
    donor = LoFTR(cfg.loftr, rngs=nnx.Rngs(7))
    flat = params.flat_state(donor)
    meta = {"format": "ifvit-loftr-params", "format_version": 1, "pos_enc": cfg.loftr.pos_enc}
    path = save_converted(tmp_path / "loftr_tiny.safetensors", flat, meta)
    mesh = make_mesh()
    tc = TrainConfig(steps=1000, warmup_steps=50, input_downscale=1.0, max_translation=0.0,
                     impression_pairs=0.0, margin_warmup_steps=0)
    _, state = init_dense_state(cfg, tc, mesh, init_loftr=path)
    got = np.asarray(state.params.loftr_coarse.layers_1.mlp_0.kernel[...])
    np.testing.assert_array_equal(got, flat["loftr_coarse/layers_1/mlp_0/kernel"])
    stats = np.asarray(state.batch_stats.backbone.bn1.mean[...])
    np.testing.assert_array_equal(stats, flat["backbone/bn1/mean"])
