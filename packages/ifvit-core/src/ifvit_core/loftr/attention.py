"""Linear (elu+1) and full softmax attention, as in LoFTR.

Port of LoFTR `src/loftr/loftr_module/linear_attention.py` (itself modified from
fast-transformers). Shapes: queries [B, L, H, D], keys/values [B, S, H, D]; masks [B, L] / [B, S]
(True = valid token).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def elu_feature_map(x: jax.Array) -> jax.Array:
    """φ(x) = elu(x) + 1 > 0."""
    return jax.nn.elu(x) + 1.0


def linear_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    q_mask: jax.Array | None = None,
    kv_mask: jax.Array | None = None,
    eps: float = 1e-6,
) -> jax.Array:
    """out[l,h] = φ(q_l)ᵀ Σ_s φ(k_s) v_sᵀ / (φ(q_l)ᵀ Σ_s φ(k_s) + eps); O(L+S) in sequence length.

    Args:
      q: [B, L, H, D]; k, v: [B, S, H, D].
      q_mask: [B, L] bool or None; masked query rows are zeroed (their output is 0).
      kv_mask: [B, S] bool or None; masked keys/values do not contribute.

    Returns:
      [B, L, H, D].
    """
    qf = elu_feature_map(q)
    kf = elu_feature_map(k)
    if q_mask is not None:
        qf = qf * q_mask[:, :, None, None].astype(qf.dtype)
    if kv_mask is not None:
        kf = kf * kv_mask[:, :, None, None].astype(kf.dtype)
        v = v * kv_mask[:, :, None, None].astype(v.dtype)
    # Upstream divides v by S and multiplies the result by S (an fp16 overflow guard); identical in
    # fp32.
    s_len = v.shape[1]
    v = v / s_len
    kv = jnp.einsum("bshd,bshe->bhde", kf, v)  # [B, H, D, D]
    z = 1.0 / (jnp.einsum("blhd,bhd->blh", qf, kf.sum(axis=1)) + eps)  # [B, L, H]
    return jnp.einsum("blhd,bhde,blh->blhe", qf, kv, z) * s_len


def full_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    q_mask: jax.Array | None = None,
    kv_mask: jax.Array | None = None,
) -> jax.Array:
    """Scaled dot-product attention softmax(q kᵀ/√D) v over the S axis.

    Shapes as `linear_attention`. Fully masked rows (a masked query) produce 0 instead of NaN.
    """
    d = q.shape[-1]
    logits = jnp.einsum("blhd,bshd->blsh", q, k) / jnp.sqrt(jnp.float32(d))
    if q_mask is not None or kv_mask is not None:
        b, l_len, s_len = q.shape[0], q.shape[1], k.shape[1]
        qm = jnp.ones((b, l_len), bool) if q_mask is None else q_mask
        km = jnp.ones((b, s_len), bool) if kv_mask is None else kv_mask
        pair = qm[:, :, None, None] & km[:, None, :, None]
        logits = jnp.where(pair, logits, -jnp.inf)
        attn = jax.nn.softmax(logits, axis=2)
        attn = jnp.where(pair, attn, 0.0)  # rows with no valid key: 0, not NaN
    else:
        attn = jax.nn.softmax(logits, axis=2)
    return jnp.einsum("blsh,bshd->blhd", attn, v)
