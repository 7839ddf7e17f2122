"""LoFTR encoder layer and LocalFeatureTransformer (Siamese, sequential self/cross updates).

Port of LoFTR `src/loftr/loftr_module/transformer.py`. One weight set per layer is applied to both
images; in a 'cross' layer f1 attends to the *already updated* f0 (SPEC §2.3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ifvit_core.config import AttentionKind
from ifvit_core.loftr.attention import full_attention, linear_attention

_xavier = nnx.initializers.xavier_uniform()


def _linear(cin: int, cout: int, rngs: nnx.Rngs, bias: bool = False) -> nnx.Linear:
    return nnx.Linear(cin, cout, use_bias=bias, kernel_init=_xavier, rngs=rngs)


class LoFTREncoderLayer(nnx.Module):
    """x + LN2(MLP([x ‖ LN1(merge(attn(x Wq, s Wk, s Wv)))])); no biases except the LayerNorms."""

    def __init__(self, d_model: int, nhead: int, attention: AttentionKind, *, rngs: nnx.Rngs):
        self.nhead = nhead
        self.dim = d_model // nhead
        self.attention = attention
        self.q_proj = _linear(d_model, d_model, rngs)
        self.k_proj = _linear(d_model, d_model, rngs)
        self.v_proj = _linear(d_model, d_model, rngs)
        self.merge = _linear(d_model, d_model, rngs)
        self.mlp_0 = _linear(2 * d_model, 2 * d_model, rngs)
        self.mlp_2 = _linear(2 * d_model, d_model, rngs)
        # LayerNorm eps 1e-5 as PyTorch (Flax defaults to 1e-6); exact (non-fast) variance.
        self.norm1 = nnx.LayerNorm(d_model, epsilon=1e-5, use_fast_variance=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d_model, epsilon=1e-5, use_fast_variance=False, rngs=rngs)

    def __call__(
        self,
        x: jax.Array,
        source: jax.Array,
        x_mask: jax.Array | None = None,
        source_mask: jax.Array | None = None,
    ) -> jax.Array:
        """x: [B, L, C] queries; source: [B, S, C]; masks [B, L] / [B, S] bool. Returns [B, L,
        C]."""
        b = x.shape[0]
        q = self.q_proj(x).reshape(b, -1, self.nhead, self.dim)
        k = self.k_proj(source).reshape(b, -1, self.nhead, self.dim)
        v = self.v_proj(source).reshape(b, -1, self.nhead, self.dim)
        attend = linear_attention if self.attention == "linear" else full_attention
        message = attend(q, k, v, x_mask, source_mask)  # [B, L, H, D]
        message = self.norm1(self.merge(message.reshape(b, -1, self.nhead * self.dim)))
        message = self.mlp_2(jax.nn.relu(self.mlp_0(jnp.concatenate([x, message], axis=-1))))
        return x + self.norm2(message)


class LocalFeatureTransformer(nnx.Module):
    """Stack of encoder layers named `layers_0..N-1`, each 'self' or 'cross'."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        layer_names: tuple[str, ...],
        attention: AttentionKind,
        *,
        rngs: nnx.Rngs,
    ):
        self.layer_names = tuple(layer_names)
        for i in range(len(layer_names)):
            setattr(self, f"layers_{i}", LoFTREncoderLayer(d_model, nhead, attention, rngs=rngs))

    def layer(self, i: int) -> LoFTREncoderLayer:
        return getattr(self, f"layers_{i}")

    def __call__(
        self,
        feat0: jax.Array,
        feat1: jax.Array,
        mask0: jax.Array | None = None,
        mask1: jax.Array | None = None,
        *,
        return_all: bool = False,
    ):
        """feat0: [B, L, C], feat1: [B, S, C], masks [B, L] / [B, S].

        Returns (feat0, feat1), or with `return_all` also the list of (feat0, feat1) after each
        layer.
        """
        history = []
        for i, name in enumerate(self.layer_names):
            layer = self.layer(i)
            if name == "self":
                feat0 = layer(feat0, feat0, mask0, mask0)
                feat1 = layer(feat1, feat1, mask1, mask1)
            else:  # cross: f1 attends to the updated f0 (sequential, as upstream)
                feat0 = layer(feat0, feat1, mask0, mask1)
                feat1 = layer(feat1, feat0, mask1, mask0)
            if return_all:
                history.append((feat0, feat1))
        if return_all:
            return feat0, feat1, history
        return feat0, feat1
