"""Module 1 with the fine stage trained: gradients reach it, its end-point error drops, bundles
ship it enabled."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ifvit_core import config
from ifvit_core.loftr.fine import fine_offset_target
from ifvit_train.serving.mesh import make_mesh, shard_batch
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.module1 import init_dense_state, make_dense_step
from ifvit_train.training.partition import group_of, path_key
from ifvit_train.training.state import merge_model


def _texture(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, n] float32 in [0, 1]: smoothed white noise, locally unique (ridges are periodic, and a
    5x5 fine window on a periodic pattern has several equally good positions)."""
    x = rng.standard_normal((n, n))
    k = np.exp(-0.5 * (np.arange(-4, 5) / 1.5) ** 2)
    for axis in (0, 1):
        x = np.apply_along_axis(lambda r: np.convolve(r, k / k.sum(), mode="same"), axis, x)
    return np.clip(0.5 + x / (4 * x.std()), 0, 1).astype(np.float32)


def shifted_pairs(n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """image1 = image0 moved by a random whole-pixel shift (0..12 px per axis): exact GT with
    sub-cell offsets, so the fine stage has something to refine."""
    rng = np.random.default_rng(seed)
    pad = 16
    w = size // 8
    out = {k: [] for k in ("image0", "image1", "gt_i", "gt_j", "gt_valid", "gt_pts1")}
    for _ in range(n):
        big = _texture(rng, size + 2 * pad)
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


@nnx.jit
def _fine_at(model, image0, image1, gt_i, gt_j):
    return {"fine_coords": model.forward_fine_at(image0, image1, gt_i, gt_j)["fine_coords"]}


def fine_epe_px(graphdef, state, batch, cfg) -> float:
    """Mean end-point error (px) of the fine position on the GT matches inside the window (eval)."""
    model = merge_model(graphdef, state.params, state.batch_stats, train=False)
    w = cfg.image_size // 8
    # one jitted call, not op-by-op: the eager path aborted XLA (SIGABRT inside an eager BatchNorm
    # op) in 2 of 3 full CI runs on Python 3.11 with two suites in parallel; never reproduced alone
    out = _fine_at(model, jnp.asarray(batch["image0"]), jnp.asarray(batch["image1"]),
                   jnp.asarray(batch["gt_i"]), jnp.asarray(batch["gt_j"]))
    t = np.asarray(fine_offset_target(jnp.asarray(batch["gt_pts1"]), jnp.asarray(batch["gt_j"]), w,
                                      cfg.loftr.fine.window))
    inside = batch["gt_valid"] & (np.abs(t).max(-1) < 1)
    err = np.linalg.norm(np.asarray(out["fine_coords"]) - t, axis=-1)[inside] * 4.0  # 4 px per unit
    return float(err.mean())


def corner_epe_px(batch, cfg) -> float:
    """The same error without refinement: the matched cell's corner (what coarse-only gives)."""
    t = np.asarray(fine_offset_target(jnp.asarray(batch["gt_pts1"]), jnp.asarray(batch["gt_j"]),
                                      cfg.image_size // 8, cfg.loftr.fine.window))
    inside = batch["gt_valid"] & (np.abs(t).max(-1) < 1)
    return float((np.linalg.norm(t, axis=-1)[inside] * 4.0).mean())


def _changed_groups(before, after) -> set[str]:
    changed = set()
    flat_a = dict(jax.tree_util.tree_leaves_with_path(before))
    for p, leaf in jax.tree_util.tree_leaves_with_path(after):
        if not np.array_equal(np.asarray(leaf), np.asarray(flat_a[p])):
            changed.add(group_of(path_key(p)))
    return changed


def _copy(tree):
    # on CPU device_get may alias the buffers the donating step then overwrites
    return jax.tree.map(lambda x: np.array(x, copy=True), jax.device_get(tree))


def test_fine_training_reaches_fine_groups_and_lowers_fine_error():
    """Without weight decay AdamW moves exactly the parameters with a non-zero gradient."""
    cfg = config.tiny()
    tc = TrainConfig(learning_rate=1e-2, warmup_steps=1, steps=60, train_fine=True,
                     weight_decay=0.0,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    mesh = make_mesh()
    graphdef, state = init_dense_state(cfg, tc, mesh)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    batches = [shard_batch(shifted_pairs(8, cfg.image_size, s), mesh) for s in (0, 1, 2)]
    held = shifted_pairs(16, cfg.image_size, 9)
    epe0 = fine_epe_px(graphdef, state, held, cfg)
    before = _copy(state.params)
    state, m = step(state, batches[0])
    # coarse and fine stages train jointly (as LoFTR); Module 2's heads do not exist here
    assert _changed_groups(before, jax.device_get(state.params)) == {"trunk", "fpn_half", "fine"}
    assert float(m["L_fine"]) > 0 and float(m["loss"]) > float(m["L_dense"])
    for k in range(1, 60):
        state, m = step(state, batches[k % 3])
    epe1 = fine_epe_px(graphdef, state, held, cfg)
    corner = corner_epe_px(held, cfg)
    print(f"held-out fine EPE: untrained {epe0:.2f} px -> trained {epe1:.2f} px "
          f"(no refinement, the cell corner: {corner:.2f} px)")
    assert np.isfinite(float(m["loss"]))
    assert epe1 < 0.8 * epe0 and epe1 < corner, (epe0, epe1, corner)


def test_dense_loss_alone_never_reaches_the_fine_groups():
    """With w_f = 0 the fine stage runs but only L_D has a gradient: the fine stage and the 1/2 FPN
    branch stay put (at this init L_D's probabilities may sit at its clamp, so the trunk may not
    move either)."""
    mesh = make_mesh()
    tc = TrainConfig(weight_decay=0.0, warmup_steps=1, train_fine=True,
                     steps=1000, input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    cfg = config.tiny()
    cfg = cfg.replace(loss=dataclasses.replace(cfg.loss, fine_weight=0.0))
    graphdef, state = init_dense_state(cfg, tc, mesh)
    before = _copy(state.params)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    state, m = step(state, shard_batch(shifted_pairs(8, 64, 0), mesh))
    assert float(m["L_fine"]) > 0
    assert _changed_groups(before, jax.device_get(state.params)) <= {"trunk"}


@pytest.mark.slow  # a training run
def test_bundle_records_trained_fine_stage_and_inference_uses_it(tiny_shards, tmp_path):
    from ifvit_core.ifvit.verify import register_pair
    from ifvit_train.serving.bundle import load_bundle, read_meta
    from ifvit_train.training.run import train_dense

    cfg = config.tiny()
    tc = TrainConfig(steps=3, batch_size=8, checkpoint_every=3, validate_every=0, val_pairs=8,
                     holdout=0.25, warmup_steps=1, train_fine=True,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    meta = train_dense(tiny_shards, tmp_path / "m1", cfg, tc, progress=False, log=lambda s: None)
    assert meta["stages"]["fine"] == "trained"
    disk = read_meta(tmp_path / "m1")
    assert disk["config"]["loftr"]["fine"]["enabled"] is True
    assert disk["train"]["train_fine"] is True
    # coarse vs fine end-point error, before and after training
    assert {"coarse_epe_px", "fine_epe_px"} <= set(meta["initial_validation"])
    assert {"val_coarse_epe_px", "val_fine_epe_px"} <= set(meta["validation"])
    b = load_bundle(tmp_path / "m1")
    assert b.cfg.loftr.fine.enabled
    # the loaded fine weights are the trained ones, not a fresh initialisation
    fresh = init_dense_state(cfg, tc, make_mesh())[1].params
    got = nnx.state(b.module1, nnx.Param)
    assert _changed_groups(jax.device_get(fresh), jax.device_get(got)) >= {"fine", "fpn_half"}
    img = jnp.asarray(shifted_pairs(2, cfg.image_size, 3)["image0"])
    mask = jnp.ones(img.shape[:3], bool)
    dense, _, _ = register_pair(b.cfg, b.module1, jax.random.key(0), img, img, mask, mask)
    assert "mkpts1_f" in dense and "fine_valid" in dense


def test_bundle_meta_enables_fine_only_when_trained_and_old_runs_still_resume():
    from ifvit_train.training.records import canonical_settings, new_meta

    cfg, tc = config.tiny(), TrainConfig(steps=1000, warmup_steps=50, input_downscale=1.0,
                                         max_translation=0.0, impression_pairs=0.0,
                                         margin_warmup_steps=0)
    params = {"w": np.zeros(3)}
    off = new_meta("dense", cfg, tc, {}, {}, params)
    on = new_meta("dense", cfg, tc.replace(train_fine=True), {}, {}, params, fine_trained=True)
    m2 = new_meta("match", cfg, tc, {}, {}, params,
                  fine_trained=True)  # from a fine-trained Module 1
    assert off["stages"]["fine"] == "untrained" and not off["config"]["loftr"]["fine"]["enabled"]
    assert on["stages"]["fine"] == "trained" and on["config"]["loftr"]["fine"]["enabled"]
    assert m2["stages"]["fine"] == "trained" and m2["config"]["loftr"]["fine"]["enabled"]
    # a bundle.json written before `train_fine` / `fine_weight` existed describes the same run
    old = {**off, "train": {k: v for k, v in off["train"].items() if k != "train_fine"}}
    old["config"] = {**off["config"], "loss": {k: v for k, v in off["config"]["loss"].items()
                                               if k != "fine_weight"}}
    assert canonical_settings(old) == canonical_settings(off) != canonical_settings(on)
