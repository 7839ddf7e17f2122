"""End-to-end 1:1 verification graph: Module 1 -> alignment -> Module 2 -> fused score (jit-able)."""

from __future__ import annotations

from typing import Any

import jax

from ifvit_core.config import IFViTConfig
from ifvit_core.ifvit.registration import align_pair, module2_inputs
from ifvit_core.ifvit.representation import Matcher
from ifvit_core.loftr.model import LoFTR


def verify_pairs(
    cfg: IFViTConfig,
    module1: LoFTR,
    module2: Matcher,
    key: jax.Array,
    image0: jax.Array,
    image1: jax.Array,
) -> dict[str, Any]:
    """Scores a batch of pairs.

    image0, image1: [B, H, W, 1] in [0, 1], H, W multiples of 8 (the Module 1 input size).
    Returns {'score' [B], 'cos_global', 'cos_local' [B], 'alignment': Alignment, 'module1': dense
    matches of Module 1, 'module2': per-branch outputs (correspondences for interpretability)}.
    """
    dense = module1(image0, image1, fine=cfg.loftr.fine.enabled)
    pts1 = dense["mkpts1_f"] if "mkpts1_f" in dense else dense["mkpts1_c"]
    ali = align_pair(
        key, image0, image1, dense["mkpts0_c"], pts1, dense["valid"], dense["mconf"],
        roi_size=cfg.module2.roi_size, num_iters=cfg.ransac_iters, threshold=cfg.ransac_threshold,
    )
    inp = module2_inputs(image0, ali, global_size=cfg.module2.global_size,
                         roi_size=cfg.module2.roi_size)
    out = module2(inp["global0"], inp["global1"], inp["roi0"], inp["roi1"],
                  inp["global_mask0"], inp["global_mask1"])
    return {"score": out["score"], "cos_global": out["cos_global"], "cos_local": out["cos_local"],
            "alignment": ali, "module1": dense, "module2": out, "inputs": inp}
