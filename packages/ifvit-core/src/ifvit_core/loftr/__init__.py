"""LoFTR in Flax NNX: ResNetFPN_8_2, sine PE, LoFTR transformer, dual-softmax and fine matching."""

from ifvit_core.loftr.coarse_matching import (
    CoarseMatches,
    dual_softmax,
    match_coarse,
    top_k_matches,
)
from ifvit_core.loftr.model import LoFTR, LoFTRCoarse

__all__ = ["CoarseMatches", "LoFTR", "LoFTRCoarse", "dual_softmax", "match_coarse", "top_k_matches"]
