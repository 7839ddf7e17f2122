"""Module 1 (dense registration) training step: L_D on the dual-softmax matrix, sharded.

    graphdef, state = init_dense_state(cfg, tc, mesh)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    state, metrics = step(state, shard_batch(batch, mesh))

Only the coarse path is trained (groups `trunk`; see `ifvit_train.partition`): a bundle written by
this trainer records `fine: untrained` and disables the fine stage, so inference never uses a fine
head that was not trained.
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
from ifvit_core.loftr import LoFTR
from ifvit_train.config import TrainConfig
from ifvit_train.mesh import batch_sharding, replicated
from ifvit_train.optim import make_optimizer
from ifvit_train.state import TrainState, cast_floating, merge_model, split_model

DENSE_TRAINABLE = ("trunk",)
DENSE_BATCH_KEYS = ("image0", "image1", "gt_i", "gt_j", "gt_valid")


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
    graphdef, state = split_model(model, make_optimizer(tc, DENSE_TRAINABLE))
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


def make_dense_step(graphdef: nnx.GraphDef, cfg: IFViTConfig, tc: TrainConfig, mesh: Mesh):
    """Returns the jitted `step(state, batch) -> (state, metrics)`; the state buffer is donated.

    `batch` holds `DENSE_BATCH_KEYS` (`image0`, `image1` [B, H, W, 1], `gt_i`, `gt_j`, `gt_valid`
    [B, L]; docs/contracts.md), sharded along B (`mesh.shard_batch`).
    """
    tx = make_optimizer(tc, DENSE_TRAINABLE)
    lc = cfg.loss
    dtype = jnp.bfloat16 if tc.compute_dtype == "bfloat16" else jnp.float32

    def loss_fn(p: Any, stats: Any, batch: dict):
        model = merge_model(graphdef, cast_floating(p, dtype), stats, train=True)
        out = model(batch["image0"].astype(dtype), batch["image1"].astype(dtype), fine=False)
        loss, aux = losses.dense_loss(
            out["conf_matrix"], batch["gt_i"], batch["gt_j"], batch["gt_valid"],
            focal=lc.dense_focal, alpha=lc.focal_alpha, gamma=lc.focal_gamma,
        )
        new_stats = cast_floating(nnx.state(model, nnx.BatchStat), jnp.float32)
        return loss, (out, aux, new_stats)

    def step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        (loss, (out, aux, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, batch)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
                   "num_gt": aux["num_gt_total"], **dense_metrics(out, batch)}
        return TrainState(state.step + 1, new_params, stats, opt_state), metrics

    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=0)
