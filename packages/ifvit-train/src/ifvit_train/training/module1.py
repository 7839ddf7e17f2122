"""Module 1 (dense registration) training step: L_D on the dual-softmax matrix (+ LoFTR's fine
loss with `TrainConfig.train_fine`), sharded.

    graphdef, state = init_dense_state(cfg, tc, mesh)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    state, metrics = step(state, shard_batch(batch, mesh))

By default only the coarse path is trained (group `trunk`; see `ifvit_train.training.partition`) and
the bundle records `fine: untrained` and disables the fine stage, so inference never uses a fine
head that was not trained. With `train_fine` the groups `fpn_half` and `fine` train too, on
`L_D + w_f·L_fine` (`LossConfig.fine_weight`), and the bundle ships the fine stage enabled.

The fine stage is trained on ground-truth coarse matches (`fine_rows`), not on the predicted ones:
LoFTR's fine loss only counts matches whose exact target lies inside the fine window, i.e. correct
coarse matches, and every correct coarse match is a ground-truth match; taking K of the
ground-truth matches gives the same supervision with a fixed shape under jit and does not depend
on how good the (still training) coarse matcher is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from ifvit_core import losses, params
from ifvit_core.config import IFViTConfig
from ifvit_core.enhance import EnhanceConfig
from ifvit_core.loftr import LoFTR
from ifvit_core.loftr.fine import fine_offset_target, num_fine_rows, window_radius_px
from ifvit_core.loftr.model import FINE_STRIDE, STRIDE
from ifvit_train.serving.mesh import batch_sharding, replicated
from ifvit_train.serving.preprocessing import enhance_inputs
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.optim import make_optimizer
from ifvit_train.training.state import TrainState, cast_floating, merge_model, split_model

DENSE_TRAINABLE = ("trunk",)
FINE_TRAINABLE = ("trunk", "fpn_half", "fine")
DENSE_BATCH_KEYS = ("image0", "image1", "gt_i", "gt_j", "gt_valid")
FINE_BATCH_KEYS = DENSE_BATCH_KEYS + ("gt_pts1",)


def dense_trainable(tc: TrainConfig) -> tuple[str, ...]:
    """Parameter groups the Module 1 trainer updates (the optimizer state's structure follows)."""
    return FINE_TRAINABLE if tc.train_fine else DENSE_TRAINABLE


def dense_batch_keys(tc: TrainConfig) -> tuple[str, ...]:
    """Batch keys the Module 1 step reads (`gt_pts1`, the exact image-1 point, only for the fine
    loss; the foregrounds `mask0`, `mask1` only when the inputs are enhanced)."""
    keys = FINE_BATCH_KEYS if tc.train_fine else DENSE_BATCH_KEYS
    return keys + (("mask0", "mask1") if tc.enhance else ())


def fine_rows(gt_valid: jax.Array, k: int, key: jax.Array) -> jax.Array:
    """[B, K] indices of ground-truth entries for the fine stage: a uniformly random subset of the
    valid entries (all of them when there are at most K), then padding (invalid) entries.

    gt_valid: [B, M] bool; k <= M static; key: PRNG key (the trainer folds in the step).
    """
    score = jnp.where(gt_valid, jax.random.uniform(key, gt_valid.shape), -1.0)
    return jax.lax.top_k(score, k)[1].astype(jnp.int32)


def init_dense_state(
    cfg: IFViTConfig,
    tc: TrainConfig,
    mesh: Mesh,
    *,
    init_flat: dict | None = None,
    init_loftr: str | Path | None = None,
) -> tuple[nnx.GraphDef, TrainState]:
    """Builds Module 1 and its optimizer state, replicated over `mesh`.

    Args:
      init_flat: optional '/'-keyed weights loaded strictly before the optimizer state is created.
      init_loftr: optional converted LoFTR file (`ifvit convert` output, e.g. from outdoor_ds.ckpt);
        its position-encoding variant must match `cfg.loftr.pos_enc` (`ifvit_convert` checks).
        Loading needs no torch.
    """
    model = LoFTR(cfg.loftr, rngs=nnx.Rngs(tc.seed))
    if init_flat is not None:
        params.load_flat_state(model, init_flat)
    if init_loftr is not None:
        from ifvit_convert.io import init_from_converted

        init_from_converted(model, init_loftr)
    graphdef, state = split_model(model, make_optimizer(tc, dense_trainable(tc)))
    return graphdef, jax.device_put(state, replicated(mesh))


def dense_metrics(out: dict, batch: dict) -> dict[str, jax.Array]:
    """Match quality against ground truth, counted as a user would.

    precision = correct predicted matches / *all* predicted matches (a match on a cell without
    ground truth — off the foreground, outside the other image, or on an impostor pair — is wrong);
    recall = correct predicted matches / ground-truth matches.
    """
    gt_valid = batch["gt_valid"]
    b, l_len = out["valid"].shape
    gt_j_of_i = jnp.full((b, l_len), -1, jnp.int32)
    gt_j_of_i = jax.vmap(lambda g, i, j, v: g.at[jnp.where(v, i, l_len)].set(j, mode="drop"))(
        gt_j_of_i, batch["gt_i"], batch["gt_j"], gt_valid
    )
    pred = out["valid"]
    correct = pred & (out["j_ids"] == gt_j_of_i)
    return {
        "precision": jnp.sum(correct) / jnp.maximum(jnp.sum(pred), 1),
        "recall": jnp.sum(correct) / jnp.maximum(jnp.sum(gt_valid), 1),
        "matches_per_pair": jnp.sum(pred) / b,
    }


def make_dense_step(graphdef: nnx.GraphDef, cfg: IFViTConfig, tc: TrainConfig, mesh: Mesh,
                    enhance: EnhanceConfig | None = None):
    """Returns the jitted `step(state, batch) -> (state, metrics)`; the state buffer is donated.

    `batch` holds `dense_batch_keys(tc)` (`image0`, `image1` [B, H, W, 1], `gt_i`, `gt_j`,
    `gt_valid` [B, L], with `train_fine` also `gt_pts1` [B, L, 2]; docs/contracts.md), sharded along
    B (`mesh.shard_batch`). With `enhance` (the bundle's, `ifvit_train.serving.preprocessing`) both
    images are enhanced on device first, using `mask0`, `mask1` [B, H, W] (then also batch keys).
    With `train_fine` the metrics add `L_dense`, `L_fine`, and over the ground-truth rows inside the
    fine window: `fine_epe_gt_px` (mean end-point error of the fine position, image-1 pixels) next
    to `coarse_epe_gt_px` (the same rows at the cell corner, i.e. without refinement). Validation's
    `fine_epe_px` / `coarse_epe_px` differ: medians over the *predicted* matches
    (`ifvit_train.training.validate`).
    """
    tx = make_optimizer(tc, dense_trainable(tc))
    lc, fc = cfg.loss, cfg.loftr.fine
    dtype = jnp.bfloat16 if tc.compute_dtype == "bfloat16" else jnp.float32
    seed_key = jax.random.key(tc.seed)
    radius = window_radius_px(fc.window, FINE_STRIDE)

    def dense_term(out: dict, batch: dict):
        return losses.dense_loss(
            out["conf_matrix"], batch["gt_i"], batch["gt_j"], batch["gt_valid"],
            focal=lc.dense_focal, alpha=lc.focal_alpha, gamma=lc.focal_gamma,
        )

    def loss_fn(p: Any, stats: Any, batch: dict, key: jax.Array):
        model = merge_model(graphdef, cast_floating(p, dtype), stats, train=True)
        masks = (batch["mask0"], batch["mask1"]) if enhance is not None else (None, None)
        image0 = enhance_inputs(enhance, batch["image0"], masks[0]).astype(dtype)
        image1 = enhance_inputs(enhance, batch["image1"], masks[1]).astype(dtype)
        if not tc.train_fine:
            out = model(image0, image1, fine=False)
            loss, aux = dense_term(out, batch)
        else:
            h_c, w_c = image0.shape[1] // STRIDE, image0.shape[2] // STRIDE
            k = num_fine_rows(h_c * w_c, (h_c, w_c), cfg.loftr.matching.border_rm, fc.max_matches)
            sel = fine_rows(batch["gt_valid"], min(k, batch["gt_valid"].shape[1]), key)  # [B, K]

            def take(x: jax.Array) -> jax.Array:
                return jnp.take_along_axis(x, sel.reshape(sel.shape + (1,) * (x.ndim - 2)), axis=1)

            j_sel = take(batch["gt_j"])
            out = model.forward_fine_at(image0, image1, take(batch["gt_i"]), j_sel)
            l_dense, aux = dense_term(out, batch)
            target = fine_offset_target(take(batch["gt_pts1"]), j_sel, image1.shape[2] // STRIDE,
                                        fc.window, stride=STRIDE, fine_stride=FINE_STRIDE)
            l_fine, faux = losses.fine_loss(out["fine_coords"], out["fine_std"], target,
                                            take(batch["gt_valid"]))
            loss = l_dense + lc.fine_weight * l_fine
            inside = faux["inside"]  # the cell corner's error, i.e. the coarse-only position
            corner = jnp.sum(jnp.where(inside, jnp.linalg.norm(target, axis=-1),
                                       0.0)) / jnp.maximum(
                faux["num_inside"], 1.0)
            aux = {**aux, "L_dense": l_dense, "L_fine": l_fine,
                   "fine_epe_gt_px": faux["epe"] * radius, "coarse_epe_gt_px": corner * radius}
        new_stats = cast_floating(nnx.state(model, nnx.BatchStat), jnp.float32)
        return loss, (out, aux, new_stats)

    def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(seed_key, state.step)
        (loss, (out, aux, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, batch, key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        extra = {k: aux[k] for k in ("L_dense", "L_fine", "fine_epe_gt_px", "coarse_epe_gt_px")
                 if k in aux}
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
                   "num_gt": aux["num_gt_total"], **extra, **dense_metrics(out, batch)}
        return TrainState(state.step + 1, new_params, stats, opt_state), metrics

    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=0)
