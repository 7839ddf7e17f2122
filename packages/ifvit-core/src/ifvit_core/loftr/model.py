"""LoFTR as one NNX module: backbone -> position encoding -> coarse transformer -> dual-softmax
matching -> (optional) fine refinement.

Port of LoFTR `src/loftr/loftr.py`. The attribute names mirror the PyTorch checkpoint
(`backbone`, `loftr_coarse`, `fine_preprocess`, `loftr_fine`), so `outdoor_ds.ckpt` maps one-to-one
(ifvit-convert). The fine modules always exist (they hold checkpoint weights); `cfg.fine.enabled`
decides whether they run.

BatchNorm mode follows NNX: `model.train()` uses batch statistics and updates running averages,
`model.eval()` uses the running averages.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ifvit_core.config import LoFTRConfig
from ifvit_core.loftr.backbone import ResNetFPN_8_2
from ifvit_core.loftr.coarse_matching import CoarseMatches, dual_softmax, match_coarse
from ifvit_core.loftr.fine import (
    FinePreprocess,
    fine_expectation,
    num_fine_rows,
    run_fine_transformer,
    scatter_rows,
    select_fine_rows,
    window_radius_px,
)
from ifvit_core.loftr.position_encoding import sine_position_encoding
from ifvit_core.loftr.transformer import LocalFeatureTransformer

STRIDE = 8  # coarse stride in pixels
FINE_STRIDE = 2


def add_position_encoding(feat_c: jax.Array, variant: str) -> jax.Array:
    """feat_c: [B, h, w, C] -> feat_c + PE, flattened row-major to tokens [B, h*w, C]."""
    b, h, w, c = feat_c.shape
    pe = jnp.asarray(sine_position_encoding(h, w, c, variant), feat_c.dtype)
    return (feat_c + pe[None]).reshape(b, h * w, c)


class LoFTRCoarse(nnx.Module):
    """The coarse trunk shared by Module 1 and both Module 2 branches: backbone + PE +
    transformer."""

    def __init__(self, cfg: LoFTRConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.backbone = ResNetFPN_8_2(cfg.backbone, rngs=rngs)
        c = cfg.coarse
        self.loftr_coarse = LocalFeatureTransformer(
            c.d_model, c.nhead, c.layer_names, c.attention, rngs=rngs
        )

    def extract(
        self, image0: jax.Array, image1: jax.Array, *, fine: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array | None, jax.Array | None]:
        """Backbone features of both images.

        Same-size images go through the backbone as one concatenated batch (as upstream), so
        BatchNorm statistics in training cover both images.

        image0: [B, H0, W0, 1], image1: [B, H1, W1, 1] in [0, 1].
        Returns (feat_c0 [B,h0,w0,C], feat_c1 [B,h1,w1,C], feat_f0, feat_f1 ([B,H/2,W/2,Cf] or
        None)).
        """
        b = image0.shape[0]
        if image0.shape == image1.shape:
            feat_c, feat_f = self.backbone(jnp.concatenate([image0, image1], axis=0), fine=fine)
            feat_c0, feat_c1 = feat_c[:b], feat_c[b:]
            feat_f0, feat_f1 = (feat_f[:b], feat_f[b:]) if fine else (None, None)
        else:
            feat_c0, feat_f0 = self.backbone(image0, fine=fine)
            feat_c1, feat_f1 = self.backbone(image1, fine=fine)
        return feat_c0, feat_c1, feat_f0, feat_f1

    def encode_coarse(
        self,
        feat_c0: jax.Array,
        feat_c1: jax.Array,
        mask0: jax.Array | None = None,
        mask1: jax.Array | None = None,
        *,
        return_all: bool = False,
    ):
        """[B,h,w,C] coarse maps -> position-encoded tokens -> coarse transformer -> [B,L,C],
        [B,S,C].

        With `return_all`, also returns the tokens before the transformer and after each layer:
        (f0, f1, {'tokens': (t0, t1), 'layers': [(f0_k, f1_k), ...]}).
        """
        t0 = add_position_encoding(feat_c0, self.cfg.pos_enc)
        t1 = add_position_encoding(feat_c1, self.cfg.pos_enc)
        if return_all:
            f0, f1, hist = self.loftr_coarse(t0, t1, mask0, mask1, return_all=True)
            return f0, f1, {"tokens": (t0, t1), "layers": hist}
        return self.loftr_coarse(t0, t1, mask0, mask1)

    def match(
        self,
        f0: jax.Array,
        f1: jax.Array,
        hw0: tuple[int, int],
        hw1: tuple[int, int],
        mask0: jax.Array | None = None,
        mask1: jax.Array | None = None,
    ) -> CoarseMatches:
        """Dual-softmax matching of transformed tokens f0 [B,L,C], f1 [B,S,C] on grids hw0, hw1."""
        m = self.cfg.matching
        conf = dual_softmax(f0, f1, m.temperature, mask0, mask1)
        return match_coarse(conf, hw0, hw1, threshold=m.threshold, border_rm=m.border_rm,
                            mask0=mask0, mask1=mask1, stride=STRIDE)

    def __call__(self, image0: jax.Array, image1: jax.Array) -> dict[str, jax.Array]:
        """Coarse tokens of a pair: {'feat_c0': [B,L,C], 'feat_c1': [B,S,C], 'hw0_c', 'hw1_c'}."""
        feat_c0, feat_c1, _, _ = self.extract(image0, image1, fine=False)
        hw0, hw1 = feat_c0.shape[1:3], feat_c1.shape[1:3]
        f0, f1 = self.encode_coarse(feat_c0, feat_c1)
        return {"feat_c0": f0, "feat_c1": f1, "hw0_c": hw0, "hw1_c": hw1}


class LoFTR(LoFTRCoarse):
    """Full LoFTR (dual-softmax variant): the IFViT Module 1 dense-registration network."""

    def __init__(self, cfg: LoFTRConfig, *, rngs: nnx.Rngs):
        super().__init__(cfg, rngs=rngs)
        d_c, d_f = cfg.coarse.d_model, cfg.fine_d_model
        self.fine_preprocess = FinePreprocess(
            d_c, d_f, cfg.fine.window, cfg.fine.concat_coarse_feat, rngs=rngs
        )
        self.loftr_fine = LocalFeatureTransformer(
            d_f, cfg.fine.nhead, cfg.fine.layer_names, cfg.fine.attention, rngs=rngs
        )

    def __call__(
        self,
        image0: jax.Array,
        image1: jax.Array,
        mask0: jax.Array | None = None,
        mask1: jax.Array | None = None,
        *,
        fine: bool | None = None,
        return_intermediates: bool = False,
    ) -> dict[str, Any]:
        """Matches a batch of image pairs.

        Args:
          image0: [B, H0, W0, 1], image1: [B, H1, W1, 1] gray in [0, 1]; H, W multiples of 8.
          mask0, mask1: optional coarse validity masks [B, L] / [B, S] (padded images).
          fine: run the fine stage (default: cfg.fine.enabled).
          return_intermediates: also return backbone maps and per-layer transformer outputs.

        Returns a dict with
          feat_c0 [B,L,C], feat_c1 [B,S,C]: coarse tokens after the transformer;
          conf_matrix [B,L,S]; i_ids, j_ids, valid, mconf [B,L]; mkpts0_c, mkpts1_c [B,L,2];
          hw0_c, hw1_c: coarse grid sizes (static ints);
          with fine: mkpts0_f, mkpts1_f [B,L,2], expec_f [B,L,3] (normalised offset x, y, std) and
            fine_valid [B,L] (valid and refined). The fine stage refines K rows (`refine`); the
            other rows keep their coarse keypoints and a zero expec_f.
        """
        fine = self.cfg.fine.enabled if fine is None else fine
        feat_c0, feat_c1, feat_f0, feat_f1 = self.extract(image0, image1, fine=fine)
        hw0, hw1 = tuple(feat_c0.shape[1:3]), tuple(feat_c1.shape[1:3])
        enc = self.encode_coarse(feat_c0, feat_c1, mask0, mask1, return_all=return_intermediates)
        f0, f1 = enc[0], enc[1]
        matches = self.match(f0, f1, hw0, hw1, mask0, mask1)
        out: dict[str, Any] = {"feat_c0": f0, "feat_c1": f1, "hw0_c": hw0, "hw1_c": hw1}
        out.update(matches._asdict())
        if return_intermediates:
            out["backbone"] = (feat_c0, feat_c1, feat_f0, feat_f1)
            out["coarse_tokens"] = enc[2]["tokens"]
            out["coarse_layers"] = enc[2]["layers"]
        if fine:
            out.update(self.refine(feat_f0, feat_f1, f0, f1, matches, hw0, hw1,
                                   return_intermediates))
        return out

    def fine_at_cells(
        self,
        feat_f0: jax.Array,
        feat_f1: jax.Array,
        f0: jax.Array,
        f1: jax.Array,
        i_ids: jax.Array,
        j_ids: jax.Array,
        hw0: tuple[int, int],
        hw1: tuple[int, int],
    ) -> tuple[jax.Array, jax.Array, tuple[jax.Array, jax.Array]]:
        """The fine stage on given cell pairs (i_ids[b, k] of image 0, j_ids[b, k] of image 1).

        Used by `refine` on predicted matches and by the trainer on ground-truth matches.
        feat_f0, feat_f1: [B, Hf, Wf, Cf]; f0 [B, L, C], f1 [B, S, C]; i_ids, j_ids [B, K] int.
        Returns (coords [B, K, 2] normalised window offset (x, y) in [-1, 1], std [B, K],
        (win0, win1) [B, K, WW, Cf] transformed window features).
        """
        win0, win1 = self.fine_preprocess(feat_f0, feat_f1, f0, f1, i_ids, j_ids, hw0, hw1)
        win0, win1 = run_fine_transformer(self.loftr_fine, win0, win1)
        coords, std = fine_expectation(win0, win1)
        return coords, std, (win0, win1)

    def forward_fine_at(
        self, image0: jax.Array, image1: jax.Array, i_ids: jax.Array, j_ids: jax.Array
    ) -> dict[str, Any]:
        """Training forward: coarse matching as `__call__(fine=False)`, plus the fine stage run on
        the given cell pairs (e.g. ground-truth coarse matches) instead of the predicted ones.

        image0, image1: [B, H, W, 1]; i_ids, j_ids: [B, K] int cells of image 0 / image 1.
        Returns `__call__`'s coarse outputs plus `fine_coords` [B, K, 2] (normalised window offset)
        and `fine_std` [B, K].
        """
        feat_c0, feat_c1, feat_f0, feat_f1 = self.extract(image0, image1, fine=True)
        hw0, hw1 = tuple(feat_c0.shape[1:3]), tuple(feat_c1.shape[1:3])
        f0, f1 = self.encode_coarse(feat_c0, feat_c1)
        matches = self.match(f0, f1, hw0, hw1)
        coords, std, _ = self.fine_at_cells(feat_f0, feat_f1, f0, f1, i_ids, j_ids, hw0, hw1)
        out: dict[str, Any] = {"feat_c0": f0, "feat_c1": f1, "hw0_c": hw0, "hw1_c": hw1}
        out.update(matches._asdict())
        out.update(fine_coords=coords, fine_std=std)
        return out

    def refine(
        self,
        feat_f0: jax.Array,
        feat_f1: jax.Array,
        f0: jax.Array,
        f1: jax.Array,
        matches: CoarseMatches,
        hw0: tuple[int, int],
        hw1: tuple[int, int],
        return_windows: bool = False,
    ) -> dict[str, jax.Array]:
        """The fine stage on K = `num_fine_rows` coarse rows (valid first, by confidence).

        feat_f0, feat_f1: [B, Hf, Wf, Cf] fine maps; f0 [B, L, C], f1 [B, S, C] coarse tokens.
        Returns [B, L, ...] outputs (rows not refined keep the coarse position): expec_f [B, L, 3],
        mkpts0_f, mkpts1_f [B, L, 2], fine_valid [B, L] and, with `return_windows`,
        fine_windows ([B, L, WW, Cf] x 2, zero on rows not refined).
        """
        fc = self.cfg.fine
        b, l_len = matches.valid.shape
        k = num_fine_rows(l_len, hw0, self.cfg.matching.border_rm, fc.max_matches)
        rows = select_fine_rows(matches.valid, matches.mconf, k)  # [B, K]
        j_sel = jnp.take_along_axis(matches.j_ids, rows, axis=1)
        coords, std, (win0, win1) = self.fine_at_cells(feat_f0, feat_f1, f0, f1, rows, j_sel, hw0,
                                                       hw1)
        zeros = jnp.zeros((b, l_len), jnp.float32)
        expec = scatter_rows(jnp.zeros((b, l_len, 3), jnp.float32), rows,
                             jnp.concatenate([coords, std[..., None]], axis=-1))
        refined = scatter_rows(zeros.astype(bool), rows, jnp.ones(rows.shape, bool))
        out = {
            "expec_f": expec,
            "mkpts0_f": matches.mkpts0_c,
            "mkpts1_f": (matches.mkpts1_c
                         + expec[..., :2] * window_radius_px(fc.window, FINE_STRIDE)),
            "fine_valid": matches.valid & refined,
        }
        if return_windows:
            out["fine_windows"] = tuple(
                scatter_rows(jnp.zeros((b, l_len) + w.shape[2:], w.dtype), rows, w)
                for w in (win0, win1)
            )
        return out
