"""The IFViT forward path shared by training and inference: Module 1 -> alignment -> Module 2.

`register_pair` is the one preprocessing path from a raw pair to the Module 2 inputs: the Module 2
trainer and every matching command call it, so what a branch sees in training is what it sees in
use. `verify_pairs` adds Module 2 and the fused score. Both are jit-able.
"""

from __future__ import annotations

from typing import Any

import jax

from ifvit_core import geometry
from ifvit_core.config import IFViTConfig
from ifvit_core.ifvit.registration import (
    Alignment,
    Module2Inputs,
    align_pair,
    global_shape,
    module2_inputs,
)
from ifvit_core.ifvit.representation import Matcher
from ifvit_core.loftr.model import LoFTR
from ifvit_core.scores import evidence_weighted


def register_pair(
    cfg: IFViTConfig,
    module1: LoFTR,
    key: jax.Array,
    image0: jax.Array,
    image1: jax.Array,
    mask0: jax.Array,
    mask1: jax.Array,
) -> tuple[dict[str, Any], Alignment, Module2Inputs]:
    """Module 1 matches, RANSAC alignment and the Module 2 inputs of a batch of pairs.

    Args:
      cfg: the model config (`loftr.fine.enabled` decides whether the fine stage refines the
        matches used by RANSAC; a bundle whose fine stage was not trained disables it).
      module1: Module 1 in eval mode.
      key: RANSAC PRNG key.
      image0: [B, H, W, 1], image1: [B, H1, W1, 1] in [0, 1], sides multiples of 8 (training
        windows are `cfg.image_size` square; a whole print at inference may be larger).
      mask0: [B, H, W], mask1: [B, H1, W1] bool foregrounds (`ifvit_data.foreground`).

    Returns:
      (Module 1 outputs, Alignment, Module2Inputs); no gradient flows through any of it. A match
      with either end off its print's foreground is a wrong match (the window around a whole print
      holds background): it is dropped (`valid` False) before RANSAC and from the outputs.
    """
    dense = module1(image0, image1, fine=cfg.loftr.fine.enabled)
    dense = jax.lax.stop_gradient(dense)
    pts1 = dense["mkpts1_f"] if "mkpts1_f" in dense else dense["mkpts1_c"]
    on_print = geometry.on_mask(mask0, dense["mkpts0_c"]) & geometry.on_mask(mask1, pts1)
    dense = {**dense, **{k: dense[k] & on_print for k in ("valid", "fine_valid") if k in dense}}
    ali = align_pair(
        key, image0, image1, mask0, mask1, dense["mkpts0_c"], pts1, dense["valid"], dense["mconf"],
        roi_size=cfg.module2.roi_size, num_iters=cfg.ransac_iters, threshold=cfg.ransac_threshold,
    )
    g_hw = global_shape(image0.shape[1:3], cfg.image_size, cfg.module2.global_size)
    inp = module2_inputs(image0, ali, global_hw=g_hw, roi_size=cfg.module2.roi_size)
    return dense, ali, inp


def run_matcher(module2: Matcher, inputs: Module2Inputs) -> dict[str, Any]:
    """Module 2 on prepared inputs (the global branch restricted to the overlap tokens)."""
    return module2(inputs.global0, inputs.global1, inputs.roi0, inputs.roi1,
                   inputs.global_mask, inputs.global_mask)


def verify_pairs(
    cfg: IFViTConfig,
    module1: LoFTR,
    module2: Matcher,
    key: jax.Array,
    image0: jax.Array,
    image1: jax.Array,
    mask0: jax.Array,
    mask1: jax.Array,
) -> dict[str, Any]:
    """Scores a batch of pairs.

    Args: as `register_pair`, plus module2: Module 2 in eval mode.

    Returns {'score' [B] (the decision score: 'cosine' weighted by the inlier evidence when
    `cfg.module2.evidence_k` > 0, else equal to it), 'cosine' [B] (the paper's fused cosine),
    'cos_global', 'cos_local' [B], 'alignment': Alignment, 'module1': dense matches of Module 1,
    'module2': per-branch outputs (correspondences for interpretability), 'inputs': Module2Inputs}.
    """
    dense, ali, inp = register_pair(cfg, module1, key, image0, image1, mask0, mask1)
    out = run_matcher(module2, inp)
    score = evidence_weighted(out["score"], ali.num_inliers, cfg.module2.evidence_k)
    return {"score": score, "cosine": out["score"], "cos_global": out["cos_global"],
            "cos_local": out["cos_local"], "alignment": ali, "module1": dense, "module2": out,
            "inputs": inp}
