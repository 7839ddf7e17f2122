"""IFViT losses (SPEC §3): dense registration L_D, LoFTR's fine loss, cosine embedding L_E, ArcFace
L_A.

Pure functions of arrays, jit-able, with no data-dependent shapes. Shape glossary (STYLE §3.4):
`B` batch, `L`/`S` coarse tokens of image0/image1, `M` padded GT matches, `d` embedding size,
`C` ArcFace classes, `R` ROIs.

Every hyper-parameter is a keyword argument whose default is the SPEC value; the keyword names of
`module2_loss` match the fields of `ifvit_core.config.LossConfig` except `fine_weight` (Module 1's
fine-stage weight, `fine_loss`) and the template weights `lambda_template*` (`template_loss`), so a
trainer passes `**dataclasses.asdict(cfg.loss)` without them (`MODULE2_LOSS_EXCLUDED`).

Provenance of the defaults (SPEC §0 tags):
* NLL form of L_D and the clamp eps=1e-6 — LoFTR/IFViT papers [PRIOR/CODE].
* focal alpha=0.25, gamma=2 — LoFTR `outdoor_ds` training config [CODE].
* fine loss: ℓ2 with inverse-std weights, window bound 1.0 — LoFTR `outdoor_ds` [CODE].
* cosine margin 0.0 — PyTorch `CosineEmbeddingLoss` default; paper value unconfirmed [INF].
* ArcFace s=64, m=0.4 and lambdas (0.5, 0.1, 1.0) — earlier attempt's "paper" values [PRIOR].
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import optax

from ifvit_core.scores import cosine_similarity, fuse_scores, l2_normalize

BRANCHES = ("global", "local")
# LossConfig fields that are not keywords of `module2_loss`
MODULE2_LOSS_EXCLUDED = ("fine_weight", "lambda_template", "lambda_template_consistency")


def _masked_mean(values: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean of `values` over `mask`; 0 (with zero gradient) when the mask is empty.

    Returns (mean, count). `jnp.where` (not multiplication) keeps a NaN/inf in a masked-out entry
    from leaking into the value; callers keep masked entries finite so the backward pass is clean.
    """
    count = jnp.sum(mask.astype(jnp.float32))
    total = jnp.sum(jnp.where(mask, values, 0.0))
    return total / jnp.maximum(count, 1.0), count


# --------------------------------------------------------------------------------------------------
# L_D: dense registration loss on the dual-softmax matrix
# --------------------------------------------------------------------------------------------------


def dense_loss(
    conf: jax.Array,
    gt_i: jax.Array,
    gt_j: jax.Array,
    gt_valid: jax.Array,
    *,
    focal: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    eps: float = 1e-6,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Coarse matching loss on the ground-truth matches (SPEC §3, L_D).

    NLL form (IFViT/LoFTR papers): `-(1/|M_gt|) Σ_{(i,j)∈M_gt} log P(i,j)`.
    Focal form (LoFTR code, positives only): `mean_{M_gt} -α (1-P)^γ log P`.
    P is clamped to `[eps, 1-eps]`. The mean runs over all valid GT matches of the whole batch (as
    LoFTR's `loss_pos.mean()`), so pairs with more matches weigh more. A batch without any valid GT
    (e.g. only impostor pairs) gives exactly 0 with zero gradients.

    Args:
      conf: [B, L, S] dual-softmax probabilities P.
      gt_i: [B, M] int, coarse cell index in image 0 (padded entries arbitrary, e.g. 0).
      gt_j: [B, M] int, matching cell index in image 1.
      gt_valid: [B, M] bool, True for a real GT match (docs/contracts.md).
      focal: use the focal form instead of the NLL.
      alpha: focal weight α [CODE LoFTR].
      gamma: focal exponent γ [CODE LoFTR].
      eps: probability clamp [PRIOR/CODE].

    Returns:
      (loss, aux): scalar loss; aux has `per_pair` [B] (mean over each pair's own valid matches,
      0 if none), `num_gt` [B] float count of valid matches per pair, and `num_gt_total` scalar.
    """
    # fp32: log P of probabilities near eps loses all precision in bf16.
    conf = conf.astype(jnp.float32)
    b, n0, n1 = conf.shape  # [B, L, S]
    flat_idx = gt_i.astype(jnp.int32) * n1 + gt_j.astype(jnp.int32)  # [B, M]
    # Padded entries may hold any index; clip so the gather is always in bounds (they are masked).
    flat_idx = jnp.clip(flat_idx, 0, n0 * n1 - 1)
    p = jnp.take_along_axis(conf.reshape(b, n0 * n1), flat_idx, axis=1)  # [B, M]
    p = jnp.clip(p, eps, 1.0 - eps)
    nll = -jnp.log(p)
    per_match = alpha * (1.0 - p) ** gamma * nll if focal else nll  # [B, M]

    valid = gt_valid.astype(bool)
    loss, num_total = _masked_mean(per_match, valid)
    num_gt = jnp.sum(valid.astype(jnp.float32), axis=1)  # [B]
    per_pair = jnp.sum(jnp.where(valid, per_match, 0.0), axis=1) / jnp.maximum(num_gt, 1.0)
    return loss, {"per_pair": per_pair, "num_gt": num_gt, "num_gt_total": num_total}


# --------------------------------------------------------------------------------------------------
# L_fine: LoFTR fine-stage loss (ℓ2 weighted by the inverse predicted std)
# --------------------------------------------------------------------------------------------------


def fine_loss(
    coords: jax.Array,
    std: jax.Array,
    target: jax.Array,
    valid: jax.Array,
    *,
    inside: float = 1.0,
    eps: float = 1e-10,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """LoFTR's fine loss (ℓ2 with std weighting) on normalised window offsets.

    `Σ_k w_k ||t_k - ĉ_k||² / Σ_k w_k` over the rows k that are `valid` and whose target lies
    inside the window (`max(|t_k|) < inside`), with `w_k = 1 / max(std_k, eps)` and no gradient
    through `w` (confident heat maps weigh more; the std is not pushed up to lower the loss). LoFTR
    normalises `w` by its mean over all rows and then averages over the inside rows; normalising
    over the inside rows (done here) makes the loss a proper weighted mean and leaves it unchanged
    when rows outside the window are added. No inside row gives exactly 0 with zero gradients.

    Args:
      coords: [..., 2] predicted expectation ĉ (x, y) of the heat map, normalised to [-1, 1].
      std: [...] predicted standard deviation of the heat map (`fine_expectation`).
      target: [..., 2] ground-truth offset t in the same units (`loftr.fine.fine_offset_target`).
      valid: [...] bool, rows with a ground-truth correspondence.
      inside: window bound on |t| (LoFTR's correct threshold, 1.0).
      eps: std floor.

    Returns:
      (loss, aux): aux has `inside` [...] bool (the rows that count), `num_inside` scalar float,
      `epe` scalar: the unweighted mean ||t - ĉ|| over the inside rows (normalised units).
    """
    coords = coords.astype(jnp.float32)
    target = target.astype(jnp.float32)
    ok = valid.astype(bool) & (jnp.max(jnp.abs(target), axis=-1) < inside)
    # Masked rows may hold any target (padding): zero them so nothing non-finite reaches the
    # backward.
    diff = jnp.where(ok[..., None], target - coords, 0.0)
    l2 = jnp.sum(diff * diff, axis=-1)
    w = jnp.where(ok, 1.0 / jnp.maximum(jax.lax.stop_gradient(std.astype(jnp.float32)), eps), 0.0)
    loss = jnp.sum(w * l2) / jnp.maximum(jnp.sum(w), eps)
    epe, num = _masked_mean(jnp.sqrt(l2 + 1e-12), ok)
    return loss, {"inside": ok, "num_inside": num, "epe": epe}


# --------------------------------------------------------------------------------------------------
# L_E: cosine embedding loss
# --------------------------------------------------------------------------------------------------


def cosine_embedding_loss(
    z1: jax.Array,
    z2: jax.Array,
    is_genuine: jax.Array,
    *,
    margin: float = 0.0,
) -> jax.Array:
    """PyTorch `CosineEmbeddingLoss` semantics, mean reduction (SPEC §3, L_E).

    `1 - cos(z1, z2)` for genuine pairs, `max(0, cos(z1, z2) - margin)` for impostors.

    Args:
      z1: [B, d] embeddings of image 0.
      z2: [B, d] embeddings of image 1.
      is_genuine: [B] int/bool; values > 0 are genuine (contract: int32 1/0; PyTorch's ±1 works
        too).
      margin: impostor margin m_E (PyTorch default 0.0; paper value unconfirmed [INF]).

    Returns:
      Scalar mean loss over the batch.
    """
    cos = cosine_similarity(z1, z2)  # [B]
    genuine = jnp.asarray(is_genuine) > 0
    per_pair = jnp.where(genuine, 1.0 - cos, jnp.maximum(cos - margin, 0.0))
    return jnp.mean(per_pair)


# --------------------------------------------------------------------------------------------------
# L_A: ArcFace
# --------------------------------------------------------------------------------------------------


def arcface_logits(
    z: jax.Array,
    weight: jax.Array,
    labels: jax.Array,
    *,
    scale: float = 64.0,
    margin: float = 0.4,
) -> jax.Array:
    """ArcFace (additive angular margin) logits (SPEC §3, L_A).

    `cos θ_j = ŵ_jᵀ ẑ`; the target logit is `s·φ(θ_y)` with `φ = cos(θ_y + m)` while
    `cos θ_y > cos(π - m)`, else `cos θ_y - m·sin(π - m)` (insightface `th`/`mm` guard, which keeps
    φ monotonically decreasing in θ over [0, π]); the other logits are `s·cos θ_j`. Rows with
    label < 0 (unknown identity) get no margin.

    Args:
      z: [B, d] embeddings (normalised here).
      weight: [d, C] class centres, one per column (normalised here).
      labels: [B] int class ids, < 0 for unknown.
      scale: s [PRIOR 64].
      margin: m in radians [PRIOR 0.4]; may be traced (margin warm-up).

    Returns:
      [B, C] float32 logits.
    """
    # fp32: s=64 times a cosine needs ~1e-6 relative precision for a stable softmax.
    zn = l2_normalize(z.astype(jnp.float32), axis=-1)  # [B, d]
    wn = l2_normalize(weight.astype(jnp.float32), axis=0)  # [d, C]
    cos = jnp.clip(zn @ wn, -1.0, 1.0)  # [B, C]; clip: rounding can leave |cos| slightly above 1
    # Floor under the sqrt: d sinθ/d cosθ = -cosθ/sinθ is infinite at θ ∈ {0, π}; the floor bounds
    # it (sin ≥ 3e-4, a logit change ≤ s·sin(m)·3e-4 ≈ 0.008).
    sin = jnp.sqrt(jnp.maximum(1.0 - cos * cos, 1e-7))
    # jnp (not math) so `margin` may be a traced value, e.g. a warm-up schedule of m (SPEC §8.10).
    margin = jnp.asarray(margin, jnp.float32)
    cos_m, sin_m = jnp.cos(margin), jnp.sin(margin)
    th = jnp.cos(jnp.pi - margin)
    mm = jnp.sin(jnp.pi - margin) * margin
    phi = jnp.where(cos > th, cos * cos_m - sin * sin_m, cos - mm)  # [B, C]
    onehot = jax.nn.one_hot(labels, cos.shape[-1], dtype=bool)  # all False for labels < 0
    return scale * jnp.where(onehot, phi, cos)


def arcface_loss(
    z: jax.Array,
    weight: jax.Array,
    labels: jax.Array,
    *,
    scale: float = 64.0,
    margin: float = 0.4,
) -> jax.Array:
    """Softmax cross-entropy on the ArcFace logits, mean over rows with a known label (label >= 0).

    Args:
      z: [B, d]. weight: [d, C]. labels: [B] int, < 0 = unknown (masked out of the mean).
      scale: s [PRIOR 64]. margin: m [PRIOR 0.4].

    Returns:
      Scalar loss; 0 (zero gradients) when no row has a known label.
    """
    logits = arcface_logits(z, weight, labels, scale=scale, margin=margin)
    known = labels >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(labels, 0))  # [B]
    return _masked_mean(ce, known)[0]


# --------------------------------------------------------------------------------------------------
# Module 2 total
# --------------------------------------------------------------------------------------------------


def module2_loss(
    outputs: Mapping[str, Mapping[str, jax.Array]],
    batch: Mapping[str, jax.Array],
    *,
    lambda_dense: float = 0.5,
    lambda_embed: float = 0.1,
    lambda_arcface: float = 1.0,
    dense_focal: bool = False,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
    cosine_margin: float = 0.0,
    arcface_scale: float = 64.0,
    arcface_margin: float = 0.4,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Module-2 objective `L = λ1·L_D + λ2·L_E + λ3·L_A` (SPEC §3 Totals).

    Each of L_D, L_E, L_A is the mean of its global-branch and local-branch values. ArcFace is
    applied to both images' embeddings with their own labels (one mean over the 2B rows with a
    known label).

    Args:
      outputs: for each branch name in `("global", "local")` a mapping with
        `conf` [B, L, S] dual-softmax probabilities of that branch (L, S differ per branch),
        `z0`, `z1` [B, d] embeddings of image0 / image1,
        `arcface_weight` [d, C] that branch's ArcFace class centres.
      batch: `global_gt_i`, `global_gt_j`, `global_gt_valid` and `local_gt_i`, `local_gt_j`,
        `local_gt_valid` [B, M] (docs/contracts.md GT keys, per branch token grid; all-False valid
        for pairs without GT), `label0`, `label1` [B] int32 identity (-1 unknown), `is_genuine` [B]
        int32.
      lambda_dense: λ1 [PRIOR 0.5]. lambda_embed: λ2 [PRIOR 0.1]. lambda_arcface: λ3 [PRIOR 1.0].
      dense_focal: focal instead of NLL L_D. focal_alpha: α [CODE 0.25]. focal_gamma: γ [CODE 2.0].
      cosine_margin: L_E impostor margin [INF 0.0]. arcface_scale: s [PRIOR 64].
      arcface_margin: m [PRIOR 0.4].

    Returns:
      (total, components): components has `dense`, `embed`, `arcface` (branch means),
      `dense_global`, `dense_local`, `embed_global`, ..., `arcface_local`, and `total`.
    """
    comps: dict[str, jax.Array] = {}
    labels = jnp.concatenate([batch["label0"], batch["label1"]], axis=0)  # [2B]
    for name in BRANCHES:
        out = outputs[name]
        comps[f"dense_{name}"], _ = dense_loss(
            out["conf"],
            batch[f"{name}_gt_i"],
            batch[f"{name}_gt_j"],
            batch[f"{name}_gt_valid"],
            focal=dense_focal,
            alpha=focal_alpha,
            gamma=focal_gamma,
        )
        comps[f"embed_{name}"] = cosine_embedding_loss(
            out["z0"], out["z1"], batch["is_genuine"], margin=cosine_margin
        )
        z = jnp.concatenate([out["z0"], out["z1"]], axis=0)  # [2B, d]
        comps[f"arcface_{name}"] = arcface_loss(
            z, out["arcface_weight"], labels, scale=arcface_scale, margin=arcface_margin
        )
    for term in ("dense", "embed", "arcface"):
        comps[term] = 0.5 * (comps[f"{term}_global"] + comps[f"{term}_local"])
    total = (
        lambda_dense * comps["dense"]
        + lambda_embed * comps["embed"]
        + lambda_arcface * comps["arcface"]
    )
    comps["total"] = total
    return total, comps


# --------------------------------------------------------------------------------------------------
# Templates: single-print embeddings trained as what 1:N search stores
# --------------------------------------------------------------------------------------------------


def template_loss(
    single: Mapping[str, jax.Array],
    weights: Mapping[str, jax.Array],
    labels: jax.Array,
    is_genuine: jax.Array,
    pair_score: jax.Array,
    *,
    fusion_alpha: float = 0.5,
    cosine_margin: float = 0.0,
    arcface_scale: float = 64.0,
    arcface_margin: float = 0.4,
) -> dict[str, jax.Array]:
    """Losses of the per-print templates (`ifvit_core.ifvit.template`) of a batch of pairs.

    A template is made from one print alone, so the pairwise objective does not train it. Three
    terms, each the mean of its global- and local-branch values where it has one:
    `arcface`: ArcFace of each single-print embedding with its finger's class centre (the
    branch's own centres, shared with the pairwise embeddings); `embed`: L_E on the two templates
    of each pair; `consistency`: `(t0·t1 - s)²`, the template dot product (the fused cosine of
    the single-print embeddings) pulled towards the pair's fused cosine `s`, with no gradient into
    the pairwise path (it teaches the template to agree with the pair, not the reverse).

    Args:
      single: `global0`, `global1`, `local0`, `local1` [B, d] single-print embeddings of image 0
        and image 1 per branch.
      weights: `global`, `local` [d, C] ArcFace class centres of each branch.
      labels: [2B] int classes of image 0 then image 1 (-1 unknown).
      is_genuine: [B] int. pair_score: [B] the pairwise fused cosine.
      fusion_alpha: α of the fused score. cosine_margin, arcface_scale, arcface_margin: as
        `module2_loss`.

    Returns:
      {'arcface', 'embed', 'consistency'} scalars.
    """
    arc, emb = [], []
    for name in BRANCHES:
        z0, z1 = single[f"{name}0"], single[f"{name}1"]
        arc.append(arcface_loss(jnp.concatenate([z0, z1], axis=0), weights[name], labels,
                                scale=arcface_scale, margin=arcface_margin))
        emb.append(cosine_embedding_loss(z0, z1, is_genuine, margin=cosine_margin))
    fused = fuse_scores(cosine_similarity(single["global0"], single["global1"]),
                        cosine_similarity(single["local0"], single["local1"]), fusion_alpha)
    target = jax.lax.stop_gradient(pair_score.astype(jnp.float32))
    return {"arcface": 0.5 * (arc[0] + arc[1]), "embed": 0.5 * (emb[0] + emb[1]),
            "consistency": jnp.mean((fused - target) ** 2)}
