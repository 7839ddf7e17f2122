"""Module 2 (fixed-length representation) training step: λ1·L_D + λ2·L_E + λ3·L_A, sharded,
plus optional template terms.

Per step, on device: the frozen Module 1 registers every pair (`ifvit_core.ifvit.register_pair`,
the same path as inference), the raw-frame ground truth is carried into both branches' token grids
through the alignment actually used (`module2_targets`; pairs without ground truth — impostors, real
genuine pairs — have L_D masked), and both branches are trained (groups `trunk` + `heads`).

With `TrainConfig.pseudo_label_conf` > 0, a genuine pair without exact ground truth that Module 1
aligned gets Module 1's own RANSAC inliers (of at least that confidence) as L_D targets
(`targets.pseudo_ground_truth`). With `LossConfig.lambda_template` > 0 the single-print templates
of both images (`template.template_inputs` + `Branch.embed_single`, what 1:N search stores) are
trained too (`losses.template_loss`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from ifvit_core import losses, params
from ifvit_core.config import IFViTConfig
from ifvit_core.enhance import EnhanceConfig
from ifvit_core.ifvit import Matcher, init_from_module1, module2_targets, register_pair, run_matcher
from ifvit_core.ifvit.targets import pseudo_ground_truth
from ifvit_core.ifvit.template import DEFAULT_MODE, template_inputs
from ifvit_core.loftr import LoFTR
from ifvit_train.serving.mesh import batch_sharding, replicated
from ifvit_train.serving.preprocessing import enhance_inputs
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.optim import make_optimizer
from ifvit_train.training.state import TrainState, cast_floating, merge_model, split_model

MATCH_TRAINABLE = ("trunk", "heads")
MATCH_BATCH_KEYS = ("image0", "image1", "mask0", "mask1", "gt_i", "gt_valid", "gt_pts1",
                    "label0", "label1", "is_genuine")


def init_match_state(cfg: IFViTConfig, tc: TrainConfig, mesh: Mesh, module1: LoFTR,
                     log=print, init_matcher: Matcher | None = None,
                     ) -> tuple[nnx.GraphDef, TrainState, dict[str, int]]:
    """Module 2 with both branch trunks copied from `module1` (checked tensor by tensor), or, with
    `init_matcher` (fine-tuning a trained Module 2), every variable of `init_matcher` except
    ArcFace class centres of another number of classes.

    Returns (graphdef, state replicated over mesh, {'copied_per_branch': n, 'checked': n}).
    """
    matcher = Matcher(cfg, rngs=nnx.Rngs(tc.seed + 1))
    if init_matcher is not None:
        own = params.flat_state(matcher)
        src = {k: v for k, v in params.flat_state(init_matcher).items()
               if k in own and v.shape == own[k].shape}
        if set(own) - set(src) - {k for k in own if k.endswith("arcface_weight")}:
            raise ValueError("the Module 2 to start from is another network: missing "
                             f"{sorted(set(own) - set(src))[:3]}")
        params.load_flat_state(matcher, src, strict=False)
        log(f"Module 2 started from a trained Module 2: {len(src)} of {len(own)} tensors "
            "(ArcFace class centres re-initialised)" if len(src) < len(own) else
            f"Module 2 started from a trained Module 2: all {len(own)} tensors")
        graphdef, state = split_model(matcher, make_optimizer(tc, MATCH_TRAINABLE))
        return graphdef, jax.device_put(state, replicated(mesh)), {"copied": len(src)}
    n = init_from_module1(matcher, module1)
    src = params.flat_state(module1)
    checked = 0
    for name in ("global_branch", "local_branch"):
        for k, v in params.flat_state(getattr(matcher, name)).items():
            if k in src and k.startswith(("backbone/", "loftr_coarse/")):
                if not (v.shape == src[k].shape and (v == src[k]).all()):
                    raise ValueError(f"Module 1 -> Module 2 transfer: {name}/{k} "
                                     "differs after copy")
                checked += 1
    log(f"Module 2 branches initialised from Module 1: {n} tensors per branch, {checked} "
        "checked equal")
    graphdef, state = split_model(matcher, make_optimizer(tc, MATCH_TRAINABLE))
    return graphdef, jax.device_put(state, replicated(mesh)), {"copied_per_branch": n,
                                                                "checked": checked}


def make_match_step(graphdef: nnx.GraphDef, m1_graphdef: nnx.GraphDef, cfg: IFViTConfig,
                    tc: TrainConfig, mesh: Mesh, enhance: EnhanceConfig | None = None):
    """Returns the jitted `step(state, module1_vars, batch) -> (state, metrics)` (state donated).

    `module1_vars` = (params, batch_stats) of the frozen Module 1; `batch` holds
    `MATCH_BATCH_KEYS` sharded along B. With `enhance` (the Module 1 bundle's) both windows are
    enhanced on device before `register_pair`, so Module 1 and both Module 2 branches see them.
    """
    tx = make_optimizer(tc, MATCH_TRAINABLE)
    dtype = jnp.bfloat16 if tc.compute_dtype == "bfloat16" else jnp.float32
    # every LossConfig weight but Module 1's fine-stage one (`fine_weight`, used by
    # ifvit_train.training.module1) and the template weights (`losses.template_loss`)
    loss_kw = {k: v for k, v in dataclasses.asdict(cfg.loss).items()
               if k not in losses.MODULE2_LOSS_EXCLUDED}
    lt, lc = cfg.loss.lambda_template, cfg.loss.lambda_template_consistency
    seed_key = jax.random.key(tc.seed)

    def template_terms(model: Matcher, single: Any, batch: dict, score: jax.Array,
                       margin: jax.Array) -> dict[str, jax.Array]:
        """`losses.template_loss` of both images' single-print embeddings."""
        b = batch["label0"].shape[0]
        zg = model.global_branch.embed_single(single.global_image, single.global_mask,
                                              mode=DEFAULT_MODE)
        zl = model.local_branch.embed_single(single.roi, None, mode=DEFAULT_MODE)
        emb = {"global0": zg[:b], "global1": zg[b:], "local0": zl[:b], "local1": zl[b:]}
        w = {"global": model.global_branch.arcface_weight[...],
             "local": model.local_branch.arcface_weight[...]}
        labels = jnp.concatenate([batch["label0"], batch["label1"]])
        return losses.template_loss(emb, w, labels, batch["is_genuine"], score,
                                    fusion_alpha=cfg.module2.fusion_alpha,
                                    cosine_margin=cfg.loss.cosine_margin,
                                    arcface_scale=cfg.loss.arcface_scale, arcface_margin=margin)

    def loss_fn(p: Any, stats: Any, inputs: Any, targets: dict, batch: dict, margin: jax.Array,
                single: Any):
        model = merge_model(graphdef, cast_floating(p, dtype), stats, train=True)
        out = run_matcher(model, cast_floating(inputs, dtype))
        labels = {k: batch[k] for k in ("label0", "label1", "is_genuine")}
        total, comps = losses.module2_loss({"global": out["global"], "local": out["local"]},
                                           {**targets, **labels},
                                           **{**loss_kw, "arcface_margin": margin})
        if lt > 0 or lc > 0:
            t = template_terms(model, cast_floating(single, dtype), batch, out["score"], margin)
            total = total + lt * (t["arcface"] + t["embed"]) + lc * t["consistency"]
            comps = {**comps, **{f"template_{k}": v for k, v in t.items()}}
        new_stats = cast_floating(nnx.state(model, nnx.BatchStat), jnp.float32)
        return total, (out, comps, new_stats)

    def step(state: TrainState, m1_vars: tuple, batch: dict) -> tuple[TrainState, dict]:
        module1 = merge_model(m1_graphdef, *m1_vars, train=False)
        key = jax.random.fold_in(seed_key, state.step)
        image0 = enhance_inputs(enhance, batch["image0"], batch["mask0"])
        image1 = enhance_inputs(enhance, batch["image1"], batch["mask1"])
        dense, ali, inputs = register_pair(cfg, module1, key, image0, image1,
                                           batch["mask0"], batch["mask1"])
        raw_hw = batch["image0"].shape[1:3]
        targets = module2_targets(batch["gt_i"], batch["gt_valid"], batch["gt_pts1"], raw_hw,
                                  ali.A01, inputs)
        pseudo = jnp.zeros(image0.shape[0], bool)
        if tc.pseudo_label_conf > 0:
            pseudo = (batch["is_genuine"] > 0) & ~batch["gt_valid"].any(axis=1) & ali.ok
            guess = module2_targets(*pseudo_ground_truth(dense, ali.inliers,
                                                         tc.pseudo_label_conf),
                                    raw_hw, ali.A01, inputs)
            targets = {k: jnp.where(pseudo.reshape(-1, *(1,) * (v.ndim - 1)), guess[k], v)
                       for k, v in targets.items()}
        single = None
        if lt > 0 or lc > 0:  # both images alone, as enrolment sees them
            single = template_inputs(cfg, jnp.concatenate([image0, image1]),
                                     jnp.concatenate([batch["mask0"], batch["mask1"]]))
        ramp = jnp.minimum(1.0, state.step / max(tc.margin_warmup_steps * tc.accum_steps, 1))
        margin = cfg.loss.arcface_margin * (ramp if tc.margin_warmup_steps else 1.0)
        (loss, (out, comps, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, inputs, targets, batch, margin, single)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new_params = optax.apply_updates(state.params, updates)
        gen = batch["is_genuine"] > 0
        n_gen, n_imp = jnp.maximum(gen.sum(), 1), jnp.maximum((~gen).sum(), 1)
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
                   **{f"L_{k}": comps[k] for k in ("dense", "embed", "arcface")},
                   **{f"L_{k}": v for k, v in comps.items() if k.startswith("template_")},
                   "pseudo_pairs": jnp.sum(pseudo) / batch["image0"].shape[0],
                   "score_genuine": jnp.sum(jnp.where(gen, out["score"], 0)) / n_gen,
                   "score_impostor": jnp.sum(jnp.where(gen, 0, out["score"])) / n_imp,
                   "gt_global": jnp.sum(targets["global_gt_valid"]) / batch["image0"].shape[0],
                   "gt_local": jnp.sum(targets["local_gt_valid"]) / batch["image0"].shape[0],
                   "aligned": jnp.mean(ali.ok.astype(jnp.float32))}
        return TrainState(state.step + 1, new_params, stats, opt_state), metrics

    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(step, in_shardings=(rep, rep, data), out_shardings=(rep, rep), donate_argnums=0)
