"""LoFTR's 2-D sine position encoding (not learned, not in the checkpoint).

Port of LoFTR `src/loftr/utils/position_encoding.py` (PositionEncodingSine). For channel group k and
1-based positions x = 1..W, y = 1..H: channels [4k, 4k+1, 4k+2, 4k+3] = sin(x w_k), cos(x w_k),
sin(y w_k), cos(y w_k).

Two frequency variants (SPEC §2.2):
  * 'fixed' (TEMP_BUG_FIX=True):  w_k = exp(-2k ln(10000) / (d/2)).
  * 'buggy' (what `outdoor_ds.ckpt` was trained with): the upstream expression
    `-log(10000) / d_model // 2` evaluates to -1.0 by operator precedence, so w_k = exp(-2k) and
    only the first few channel groups vary. Use it with the official weights.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ifvit_core.config import PosEncVariant


def frequencies(d_model: int, variant: PosEncVariant) -> np.ndarray:
    """[d_model // 4] angular frequencies w_k of the variant (float32, as torch computes them)."""
    two_k = np.arange(0, d_model // 2, 2, dtype=np.float32)
    if variant == "fixed":
        return np.exp(two_k * np.float32(-math.log(10000.0) / (d_model // 2))).astype(np.float32)
    if variant == "buggy":
        return np.exp(two_k * np.float32(-math.log(10000.0) / d_model // 2)).astype(np.float32)
    raise ValueError(f"unknown position-encoding variant {variant!r}")


@functools.lru_cache(maxsize=32)
def sine_position_encoding(h: int, w: int, d_model: int, variant: PosEncVariant) -> np.ndarray:
    """The encoding added to a [.., h, w, d_model] coarse map: float32 [h, w, d_model].

    Computed on the host at trace time (static shapes), so it becomes a jit constant.
    """
    freq = frequencies(d_model, variant)  # [d/4]
    x = np.arange(1, w + 1, dtype=np.float32)[None, :, None]  # [1, w, 1]
    y = np.arange(1, h + 1, dtype=np.float32)[:, None, None]  # [h, 1, 1]
    pe = np.zeros((h, w, d_model // 4, 4), np.float32)
    pe[..., 0] = np.sin(x * freq)
    pe[..., 1] = np.cos(x * freq)
    pe[..., 2] = np.sin(y * freq)
    pe[..., 3] = np.cos(y * freq)
    return pe.reshape(h, w, d_model)
