"""IFViT Module 2: fixed-length representations from a global and a local (ROI) branch.

Each branch is a copy of the Module 1 coarse trunk (ResNetFPN 1/8 + sine PE + LoFTR transformer,
initialised from the trained Module 1, SPEC §2.7) plus one fully connected embedding head and its
own ArcFace class matrix. A branch still outputs the dual-softmax matrix, so it keeps producing the
interpretable dense correspondences (and L_D can supervise them).

The two images of a pair are encoded jointly (cross-attention), so an embedding depends on the
partner image: scores are pair-dependent, as in the paper's per-pair runtime. `Branch.embed_single`
embeds one image alone (its own partner) for per-print templates (`ifvit_core.ifvit.template`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ifvit_core import params
from ifvit_core.config import IFViTConfig
from ifvit_core.loftr.model import LoFTRCoarse, add_position_encoding
from ifvit_core.scores import cosine_similarity, fuse_scores, l2_normalize

TRUNK_PREFIXES = ("backbone/", "loftr_coarse/")


def masked_mean_tokens(feat: jax.Array, mask: jax.Array | None) -> jax.Array:
    """feat: [B, L, C], mask: [B, L] bool or None -> [B, C] mean over the valid tokens."""
    if mask is None:
        return feat.mean(axis=1)
    m = mask.astype(feat.dtype)[..., None]
    return (feat * m).sum(axis=1) / jnp.maximum(m.sum(axis=1), 1.0)


def _identity_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    del key
    return jnp.eye(*shape, dtype=dtype)


class Branch(LoFTRCoarse):
    """Coarse LoFTR trunk + embedding head `z = L2norm(BN(FC(mean_tokens(f))))` + ArcFace
    weights."""

    def __init__(self, cfg: IFViTConfig, *, rngs: nnx.Rngs):
        super().__init__(cfg.loftr, rngs=rngs)
        d, e, n_cls = cfg.loftr.coarse.d_model, cfg.module2.embed_dim, cfg.module2.num_classes
        self.embed = nnx.Linear(d, e, kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs)
        # BatchNorm "neck" on the projected embedding (as in face-recognition heads): the pooled
        # trunk tokens of any two prints share a large common component (position encoding, ridge
        # texture statistics), which made every cosine ~0.997 and starved ArcFace of gradient;
        # centring and scaling each dimension over the batch removes it.
        self.embed_norm = nnx.BatchNorm(e, momentum=0.9, epsilon=1e-5, rngs=rngs)
        # Optional template neck (single prints only, `embed_single`): the identity until fitted.
        self.template_neck = (nnx.Linear(e, e, kernel_init=_identity_init, rngs=rngs)
                              if cfg.module2.template_neck else None)
        # ArcFace class centres [d, C]: normalised inside the loss, so the scale of the init is
        # moot.
        self.arcface_weight = nnx.Param(
            nnx.initializers.xavier_uniform()(rngs.params(), (e, n_cls)))

    def __call__(
        self,
        image0: jax.Array,
        image1: jax.Array,
        mask0: jax.Array | None = None,
        mask1: jax.Array | None = None,
    ) -> dict[str, Any]:
        """Encodes a pair.

        Args:
          image0: [B, H, W, 1], image1: [B, H', W', 1] in [0, 1], sides multiples of 8.
          mask0, mask1: optional token masks [B, L] / [B, S] (e.g. the overlap region at 1/8); they
            restrict attention, matching and pooling.

        Returns:
          {'conf' [B,L,S], 'valid', 'j_ids', 'mconf' [B,L], 'mkpts0_c', 'mkpts1_c' [B,L,2],
           'z0', 'z1' [B, embed_dim] (unit norm), 'arcface_weight' [embed_dim, C]}.
        """
        feat_c0, feat_c1, _, _ = self.extract(image0, image1, fine=False)
        hw0, hw1 = tuple(feat_c0.shape[1:3]), tuple(feat_c1.shape[1:3])
        f0, f1 = self.encode_coarse(feat_c0, feat_c1, mask0, mask1)
        matches = self.match(f0, f1, hw0, hw1, mask0, mask1)
        return {
            "conf": matches.conf_matrix,
            "valid": matches.valid,
            "j_ids": matches.j_ids,
            "mconf": matches.mconf,
            "mkpts0_c": matches.mkpts0_c,
            "mkpts1_c": matches.mkpts1_c,
            **self.embed_pair(f0, f1, mask0, mask1),
            "arcface_weight": self.arcface_weight[...],
        }


    def embed_pair(self, f0: jax.Array, f1: jax.Array, mask0: jax.Array | None,
                   mask1: jax.Array | None) -> dict[str, jax.Array]:
        """Unit-norm embeddings {'z0', 'z1'} [B, e] of transformed tokens f0 [B,L,C], f1 [B,S,C].

        Both images go through the BatchNorm neck as one batch, so its statistics cover both.
        """
        p = jnp.concatenate([masked_mean_tokens(f0, mask0), masked_mean_tokens(f1, mask1)], axis=0)
        z = l2_normalize(self.embed_norm(self.embed(p)))
        b = f0.shape[0]
        return {"z0": z[:b], "z1": z[b:]}

    def encode_single(self, image: jax.Array, mask: jax.Array | None = None, *,
                      mode: str = "self") -> jax.Array:
        """Coarse tokens [B, L, C] of single images [B, H, W, 1] (mask [B, L]) with no partner.

        mode 'self': every layer, cross layers with the image attending to itself; 'mirror': the
        pair transformer on (image, image), stream 0; 'skip': the self layers only.
        """
        feat_c, _ = self.backbone(image, fine=False)
        t = add_position_encoding(feat_c, self.cfg.pos_enc)
        if mode == "mirror":
            return self.loftr_coarse(t, t, mask, mask)[0]
        if mode not in ("self", "skip"):
            raise ValueError(f"unknown single-image mode {mode!r}; use 'self', 'mirror' or 'skip'")
        for i, name in enumerate(self.loftr_coarse.layer_names):
            if name == "self" or mode == "self":
                t = self.loftr_coarse.layer(i)(t, t, mask, mask)
        return t

    def embed_single(self, image: jax.Array, mask: jax.Array | None = None, *,
                     mode: str = "self") -> jax.Array:
        """Unit-norm embeddings [B, e] of single images [B, H, W, 1] (token mask [B, L] or None):
        `L2norm(T(BN(FC(mean tokens))))`, T the template neck if the branch has one."""
        f = self.encode_single(image, mask, mode=mode)
        h = self.embed_norm(self.embed(masked_mean_tokens(f, mask)))
        if self.template_neck is not None:
            h = self.template_neck(h)
        return l2_normalize(h)


class Matcher(nnx.Module):
    """Module 2: global branch on the aligned overlap, local branch on the ROI, fused score."""

    def __init__(self, cfg: IFViTConfig, *, rngs: nnx.Rngs):
        self.fusion_alpha = cfg.module2.fusion_alpha
        self.global_branch = Branch(cfg, rngs=rngs)
        self.local_branch = Branch(cfg, rngs=rngs)

    def __call__(
        self,
        global0: jax.Array,
        global1: jax.Array,
        roi0: jax.Array,
        roi1: jax.Array,
        global_mask0: jax.Array | None = None,
        global_mask1: jax.Array | None = None,
    ) -> dict[str, Any]:
        """Scores aligned pairs.

        Args:
          global0, global1: [B, Hg, Wg, 1] aligned overlap inputs; roi0, roi1: [B, Hr, Wr, 1] ROIs.
          global_mask0/1: optional [B, (Hg/8)*(Wg/8)] token masks of the overlap.

        Returns:
          {'global': branch outputs, 'local': branch outputs, 'cos_global', 'cos_local', 'score'
          [B]}.
        """
        g = self.global_branch(global0, global1, global_mask0, global_mask1)
        loc = self.local_branch(roi0, roi1)
        cos_g = cosine_similarity(g["z0"], g["z1"])
        cos_l = cosine_similarity(loc["z0"], loc["z1"])
        return {
            "global": g,
            "local": loc,
            "cos_global": cos_g,
            "cos_local": cos_l,
            "score": fuse_scores(cos_g, cos_l, self.fusion_alpha),
        }


def init_from_module1(matcher: Matcher, module1: LoFTRCoarse) -> int:
    """Copies Module 1's trunk (backbone + coarse transformer, incl. BN statistics) into both
    branches.

    The embedding heads and ArcFace matrices keep their fresh initialisation. Returns the number of
    variables copied per branch. Raises `params.ParamMismatchError` if the trunks differ in shape.
    """
    trunk = {
        k: v for k, v in params.flat_state(module1).items() if k.startswith(TRUNK_PREFIXES)
    }
    n = 0
    for branch in (matcher.global_branch, matcher.local_branch):
        n = len(params.load_flat_state(branch, trunk, strict=False))
        want = {k for k in params.flat_state(branch) if k.startswith(TRUNK_PREFIXES)}
        if n != len(want):
            raise params.ParamMismatchError(sorted(want - set(trunk)), [], [])
    return n
