"""Scale-out: 8 simulated devices give the same parameters as 1 device (fp32 tolerance)."""

import jax
import numpy as np

from ifvit_core import config
from ifvit_train.config import TrainConfig
from ifvit_train.dense import init_dense_state, make_dense_step
from ifvit_train.mesh import make_mesh, shard_batch


def _batch(n, size, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.random((n, size, size, 1)).astype(np.float32)
    l_len = (size // 8) ** 2
    i = np.tile(np.arange(l_len, dtype=np.int32), (n, 1))
    # image1 = image0 (every cell matches itself): the loss is far from the P clamp, so every
    # step has non-zero gradients.
    return {"image0": img, "image1": img.copy(), "gt_i": i, "gt_j": i.copy(),
            "gt_valid": np.ones((n, l_len), bool)}


def _train(devices, tc, batch, steps=3):
    cfg = config.tiny()
    mesh = make_mesh(devices=devices, data=len(devices))
    graphdef, state = init_dense_state(cfg, tc, mesh)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    m = {"loss": float("nan")}
    for _ in range(steps):
        state, m = step(state, shard_batch(batch, mesh))
    # Copies: on CPU device_get may alias buffers that later computations reuse.
    return jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(state.params)), float(m["loss"])


def test_eight_devices_match_one_device():
    assert jax.device_count() == 8
    tc = TrainConfig(learning_rate=1e-3, warmup_steps=1, steps=10)
    batch = _batch(8, 64)
    p8, l8 = _train(jax.devices(), tc, batch)
    p1, l1 = _train(jax.devices()[:1], tc, batch)
    np.testing.assert_allclose(l8, l1, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(p8), jax.tree.leaves(p1)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6)


def test_gradient_accumulation_and_bf16_run():
    batch = _batch(8, 64)
    p_acc, loss = _train(jax.devices(), TrainConfig(accum_steps=2, warmup_steps=1, steps=10), batch,
                         steps=2)
    p0, _ = _train(jax.devices(), TrainConfig(accum_steps=2, warmup_steps=1, steps=10), batch, steps=0)
    moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p_acc), jax.tree.leaves(p0))]
    assert any(moved)  # two micro-batches = one update
    p1, _ = _train(jax.devices(), TrainConfig(accum_steps=2, warmup_steps=1, steps=10), batch, steps=1)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p0)))
    _, lb = _train(jax.devices(), TrainConfig(compute_dtype="bfloat16", warmup_steps=1), batch, 2)
    assert np.isfinite(lb)
