"""Module 1 (dense registration) training step: L_D on dual-softmax confidences, sharded.

The state is a plain pytree (`DenseState`: step, params, batch statistics, optimizer state), so it
jits, shards and checkpoints (Orbax) like any JAX pytree; the NNX graph definition is static.

    graphdef, state = init_dense_state(cfg, train_cfg, mesh, seed=0)
    step = make_dense_step(graphdef, cfg, train_cfg, mesh)
    state, metrics = step(state, shard_batch(batch, mesh))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from ifvit_core import losses, params
from ifvit_core.config import IFViTConfig
from ifvit_core.loftr import LoFTR
from ifvit_train.mesh import batch_sharding, replicated


@dataclass(frozen=True, slots=True)
class DenseTrainConfig:
    """Optimiser settings for Module 1 (SPEC §3: IFViT lr 1e-3, wd 2e-4 [PRIOR]; clip as LoFTR)."""

    learning_rate: float = 1e-3
    weight_decay: float = 2e-4
    warmup_steps: int = 100
    total_steps: int = 10_000
    grad_clip: float = 0.5  # LoFTR's gradient-norm clip [CODE]


class DenseState(NamedTuple):
    step: jax.Array
    params: Any  # nnx.State of nnx.Param
    batch_stats: Any  # nnx.State of nnx.BatchStat
    opt_state: Any


# Variables that the coarse-only Module 1 forward never uses: the 1/2 FPN branch and the fine stage.
# They are frozen (not just gradient-free: AdamW's decoupled weight decay would shrink them), so
# converted LoFTR fine weights survive Module 1 training intact.
UNUSED_IN_COARSE = ("fine_preprocess/", "loftr_fine/", "backbone/layer2_outconv", "backbone/layer1_outconv")


def _trainable_labels(params_tree: Any) -> Any:
    def label(path, _leaf) -> str:
        key = "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)
        return "frozen" if key.startswith(UNUSED_IN_COARSE) else "train"

    return jax.tree_util.tree_map_with_path(label, params_tree)


def make_optimizer(tc: DenseTrainConfig) -> optax.GradientTransformation:
    """AdamW with linear warm-up (from 0.1·lr, as LoFTR) and cosine decay; global-norm clipping.

    Parameters the coarse-only forward does not use (`UNUSED_IN_COARSE`) are frozen.
    """
    sched = optax.warmup_cosine_decay_schedule(
        init_value=0.1 * tc.learning_rate,
        peak_value=tc.learning_rate,
        warmup_steps=max(tc.warmup_steps, 1),
        decay_steps=max(tc.total_steps, tc.warmup_steps + 1),
        end_value=0.01 * tc.learning_rate,
    )
    train = optax.chain(
        optax.clip_by_global_norm(tc.grad_clip),
        optax.adamw(sched, weight_decay=tc.weight_decay),
    )
    return optax.multi_transform({"train": train, "frozen": optax.set_to_zero()}, _trainable_labels)


def init_dense_state(
    cfg: IFViTConfig,
    tc: DenseTrainConfig,
    mesh: Mesh,
    *,
    seed: int = 0,
    init_flat: dict | None = None,
    init_loftr: str | Path | None = None,
) -> tuple[nnx.GraphDef, DenseState]:
    """Builds Module 1 and its optimizer state, replicated over `mesh`.

    Args:
      init_flat: optional '/'-keyed weights loaded strictly before the optimizer state is created.
      init_loftr: optional converted LoFTR file (`ifvit convert` output, e.g. from outdoor_ds.ckpt);
        its position-encoding variant must match `cfg.loftr.pos_enc` (`ifvit_convert` checks).
        Loading needs no torch.
    """
    model = LoFTR(cfg.loftr, rngs=nnx.Rngs(seed))
    if init_flat is not None:
        params.load_flat_state(model, init_flat)
    if init_loftr is not None:
        from ifvit_convert.io import init_from_converted

        init_from_converted(model, init_loftr)
    graphdef, p, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    tx = make_optimizer(tc)
    state = DenseState(jnp.zeros((), jnp.int32), p, stats, tx.init(p))
    return graphdef, jax.device_put(state, replicated(mesh))


def dense_metrics(out: dict, batch: dict) -> dict[str, jax.Array]:
    """Match quality against ground truth: precision of predicted matches, recall of GT matches."""
    gt_valid = batch["gt_valid"]
    # GT j per image-0 cell (-1 where none); gt_i are cell indices of image 0.
    b, l_len = out["valid"].shape
    gt_j_of_i = jnp.full((b, l_len), -1, jnp.int32)
    gt_j_of_i = jax.vmap(lambda g, i, j, v: g.at[jnp.where(v, i, l_len)].set(j, mode="drop"))(
        gt_j_of_i, batch["gt_i"], batch["gt_j"], gt_valid
    )
    pred = out["valid"]
    has_gt = gt_j_of_i >= 0
    correct = pred & (out["j_ids"] == gt_j_of_i)
    n_pred = jnp.sum(pred & has_gt)
    return {
        "precision": jnp.sum(correct) / jnp.maximum(n_pred, 1),
        "recall": jnp.sum(correct) / jnp.maximum(jnp.sum(has_gt), 1),
        "matches_per_pair": jnp.sum(pred) / b,
    }


def make_dense_step(graphdef: nnx.GraphDef, cfg: IFViTConfig, tc: DenseTrainConfig, mesh: Mesh):
    """Returns the jitted `step(state, batch) -> (state, metrics)`; the state buffer is donated.

    `batch` holds `image0`, `image1` [B, H, W, 1] and `gt_i`, `gt_j`, `gt_valid` [B, L]
    (docs/contracts.md), sharded along B (`mesh.shard_batch`).
    """
    tx = make_optimizer(tc)
    lc = cfg.loss

    def loss_fn(model: LoFTR, batch: dict):
        out = model(batch["image0"], batch["image1"], fine=False)
        loss, aux = losses.dense_loss(
            out["conf_matrix"], batch["gt_i"], batch["gt_j"], batch["gt_valid"],
            focal=lc.dense_focal, alpha=lc.focal_alpha, gamma=lc.focal_gamma,
        )
        return loss, (out, aux)

    # Differentiate w.r.t. the parameters only; BatchNorm statistics are updated in place by the
    # forward pass (NNX), then read back out of the merged module.
    grad_fn = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.Param), has_aux=True)

    def step(state: DenseState, batch: dict) -> tuple[DenseState, dict]:
        model = nnx.merge(graphdef, state.params, state.batch_stats)
        model.train()
        (loss, (out, aux)), grads = grad_fn(model, batch)
        stats = nnx.state(model, nnx.BatchStat)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
                   "num_gt": aux["num_gt_total"], **dense_metrics(out, batch)}
        return DenseState(state.step + 1, new_params, stats, opt_state), metrics

    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=0)


def dense_model(graphdef: nnx.GraphDef, state: DenseState) -> LoFTR:
    """The Module 1 network with the state's weights (for evaluation / export)."""
    model = nnx.merge(graphdef, state.params, state.batch_stats)
    model.eval()
    return model
