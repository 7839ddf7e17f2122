"""Module 1 with the fine stage trained: gradients reach it, its end-point error drops, bundles
ship it enabled."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core import config
from ifvit_core.loftr.fine import fine_offset_target
from ifvit_train.config import TrainConfig
from ifvit_train.dense import init_dense_state, make_dense_step
from ifvit_train.mesh import make_mesh, shard_batch
from ifvit_train.partition import group_of, path_key
from ifvit_train.state import merge_model


def shifted_pairs(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """image1 = image0 moved by a random whole-pixel shift (0..12 px per axis): exact GT with
    sub-cell offsets, so the fine stage has something to refine."""
    rng = np.random.default_rng(seed)
    pad = 16
    yy, xx = np.mgrid[0:size + 2 * pad, 0:size + 2 * pad]
    w = size // 8
    out = {k: [] for k in ("image0", "image1", "gt_i", "gt_j", "gt_valid", "gt_pts1")}
    for _ in range(n):
        theta, f = rng.uniform(0, np.pi), rng.uniform(0.1, 0.14)
        big = 0.5 + 0.5 * np.cos(2 * np.pi * f * (xx * np.cos(theta) + yy * np.sin(theta))
                                 + 0.002 * (xx - size / 2) ** 2)
        big = np.clip(big + 0.1 * rng.standard_normal(big.shape), 0, 1).astype(np.float32)
        dx, dy = rng.integers(0, 13, 2)
        out["image0"].append(big[pad:pad + size, pad:pad + size, None])
        out["image1"].append(big[pad - dy:pad - dy + size, pad - dx:pad - dx + size, None])
        i = np.arange(w * w)
        p1 = np.stack([i % w, i // w], 1) * 8.0 + [dx, dy]  # content at p0 is at p0 + (dx, dy)
        c1 = np.round(p1 / 8).astype(int)
        ok = (c1 < w).all(1)
        order = np.argsort(~ok, kind="stable")  # valid first (contract)
        out["gt_i"].append(np.where(ok, i, 0)[order])
        out["gt_j"].append(np.where(ok, c1[:, 1] * w + c1[:, 0], 0)[order])
        out["gt_valid"].append(ok[order])
        out["gt_pts1"].append(np.where(ok[:, None], p1, 0)[order])
    dt = {"gt_i": np.int32, "gt_j": np.int32, "gt_valid": bool, "gt_pts1": np.float32}
    return {k: np.stack(v).astype(dt.get(k, np.float32)) for k, v in out.items()}


def fine_epe_px(graphdef, state, batch, cfg) -> float:
    """Mean end-point error (px) of the fine position on the GT matches inside the window (eval)."""
    model = merge_model(graphdef, state.params, state.batch_stats, train=False)
    w = cfg.image_size // 8
    out = model.forward_fine_at(jnp.asarray(batch["image0"]), jnp.asarray(batch["image1"]),
                                jnp.asarray(batch["gt_i"]), jnp.asarray(batch["gt_j"]))
    t = np.asarray(fine_offset_target(jnp.asarray(batch["gt_pts1"]), jnp.asarray(batch["gt_j"]), w,
                                      cfg.loftr.fine.window))
    inside = batch["gt_valid"] & (np.abs(t).max(-1) < 1)
    err = np.linalg.norm(np.asarray(out["fine_coords"]) - t, axis=-1)[inside] * 4.0  # 4 px per unit
    return float(err.mean())


def _changed_groups(before, after) -> set[str]:
    changed = set()
    flat_a = dict(jax.tree_util.tree_leaves_with_path(before))
    for p, leaf in jax.tree_util.tree_leaves_with_path(after):
        if not np.array_equal(np.asarray(leaf), np.asarray(flat_a[p])):
            changed.add(group_of(path_key(p)))
    return changed


def test_fine_training_updates_fine_groups_and_lowers_fine_error():
    cfg = config.tiny()
    tc = TrainConfig(learning_rate=3e-3, warmup_steps=1, steps=40, train_fine=True)
    mesh = make_mesh()
    graphdef, state = init_dense_state(cfg, tc, mesh)
    before = jax.device_get(state.params)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    train, held = shifted_pairs(8, cfg.image_size, 0), shifted_pairs(8, cfg.image_size, 1)
    epe0 = fine_epe_px(graphdef, state, held, cfg)
    batch = shard_batch(train, mesh)
    state, m = step(state, batch)
    # coarse and fine groups both train (LoFTR trains them jointly); Module 2's heads do not exist
    assert _changed_groups(before, jax.device_get(state.params)) == {"trunk", "fpn_half", "fine"}
    assert float(m["L_fine"]) > 0 and float(m["loss"]) > float(m["L_dense"])
    for _ in range(29):
        state, m = step(state, batch)
    epe1 = fine_epe_px(graphdef, state, held, cfg)
    print(f"held-out fine EPE: untrained {epe0:.2f} px -> trained {epe1:.2f} px "
          f"(cell corner: {float(m['coarse_epe_px']):.2f} px on the training batch)")
    assert np.isfinite(float(m["loss"]))
    assert epe1 < 0.8 * epe0, (epe0, epe1)
