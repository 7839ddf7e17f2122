"""Scores of IFViT's embeddings (SPEC §3): the cosine, the fused two-branch score, and the fused
score weighted by Module 1's evidence. What serving computes; the losses (`ifvit_core.losses`)
build on the same cosine.

Provenance: fusion alpha=0.5 — [INF], tune on validation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cosine_similarity(z1: jax.Array, z2: jax.Array, *, eps: float = 1e-12) -> jax.Array:
    """Cosine of the angle between the last-axis vectors; 0 for a zero vector.

    Args:
      z1: [..., d]. z2: [..., d]. eps: added to each squared norm (PyTorch's `CosineEmbeddingLoss`
        uses the same form), which keeps the value and the gradient finite at z = 0.

    Returns:
      [...] cosines.
    """
    # fp32: squared norms of 256-d embeddings overflow/lose precision in bf16.
    z1 = z1.astype(jnp.float32)
    z2 = z2.astype(jnp.float32)
    dot = jnp.sum(z1 * z2, axis=-1)
    n1 = jnp.sum(z1 * z1, axis=-1) + eps
    n2 = jnp.sum(z2 * z2, axis=-1) + eps
    return dot / jnp.sqrt(n1 * n2)


def l2_normalize(x: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
    """x / ||x|| along `axis`."""
    # eps under the sqrt keeps the gradient finite for an all-zero vector.
    return x * jax.lax.rsqrt(jnp.sum(x * x, axis=axis, keepdims=True) + eps)



def fuse_scores(
    cos_global: jax.Array,
    cos_local: jax.Array,
    alpha: float = 0.5,
    *,
    local_valid: jax.Array | None = None,
) -> jax.Array:
    """Fused matching score `α·cos_global + (1-α)·cos_local` (SPEC §3, α=0.5 [INF]).

    Args:
      cos_global: [...] global-branch cosine per pair.
      cos_local: [...] local cosine, or [..., R] cosines of R ROIs, averaged first.
      alpha: weight of the global score.
      local_valid: optional [..., R] bool, which ROIs exist; a pair with none uses its global score.

    Returns:
      [...] fused scores.
    """
    cos_global = jnp.asarray(cos_global, jnp.float32)
    cos_local = jnp.asarray(cos_local, jnp.float32)
    if cos_local.ndim == cos_global.ndim + 1:  # static shape test, several ROIs
        if local_valid is None:
            cos_local = jnp.mean(cos_local, axis=-1)
        else:
            n = jnp.sum(local_valid, axis=-1)
            mean = jnp.sum(jnp.where(local_valid, cos_local, 0.0), axis=-1) / jnp.maximum(n, 1)
            cos_local = jnp.where(n > 0, mean, cos_global)
    elif cos_local.shape != cos_global.shape:
        raise ValueError(f"cos_local {cos_local.shape} does not fit cos_global {cos_global.shape}")
    return alpha * cos_global + (1.0 - alpha) * cos_local


def evidence_weighted(score: jax.Array, num_inliers: jax.Array, k: float) -> jax.Array:
    """The fused cosine weighted by Module 1's geometric evidence: `(1 + score) / 2 · n / (n + k)`.

    Beyond the paper (its score is the cosine alone): a pair whose dense matches RANSAC cannot
    confirm (few inliers n) is pulled towards 0 whatever its embeddings say; with many inliers the
    factor tends to 1. The cosine is first mapped to [0, 1], so a negative cosine lowers a pair's
    score without flipping its sign. k = 0 returns `score` unchanged: the paper's score, which ranks
    pairs as the k -> 0 limit does.

    Args:
      score: [...] fused cosines in [-1, 1]; num_inliers: [...] RANSAC inlier counts (>= 0); k: >=
      0.

    Returns:
      [...] float32 scores, in [0, 1] when k > 0.
    """
    score = jnp.asarray(score, jnp.float32)
    if k == 0:  # static: the paper's score, bit for bit
        return score
    n = jnp.asarray(num_inliers, jnp.float32)
    return (1.0 + score) / 2.0 * (n / (n + k))
