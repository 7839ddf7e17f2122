"""How images become model inputs: the bundle.json "preprocessing" record, and the one place its
optional on-device ridge enhancement is applied.

    pre = records.preprocessing(cfg, tc)  # training: what `ifvit train dense` records
    enh = enhancement(pre)                # EnhanceConfig, or None (older bundles, "none")
    images = enhance_inputs(enh, images, masks)   # inside every jitted step / forward

Host-side preparation (decode, 500 ppi, window, foreground) is
`ifvit_train.serving.infer.prepare_image` and `ifvit_data`; the enhancement runs on device, on the
windows, before Module 1 and before the Module 2 branches see them: in the Module 1 and Module 2
training steps, validation, `Verifier` (match, evaluate, identify) and `Embedder` (enrol,
templates).
"""

from __future__ import annotations

from typing import Any

import jax

from ifvit_core.enhance import EnhanceConfig, enhance

PREPROCESSING_VERSION = 1
NO_ENHANCEMENT = "none"
# At inference the window grows to hold the whole print, up to this many 500-ppi pixels a side
# (40.6 mm: a rolled print), in steps of WINDOW_STEP window pixels (one compiled shape per sensor).
WHOLE_PRINT_PX = 800
WINDOW_STEP = 64


def max_input_size(image_size: int, downscale: float) -> int:
    """Largest window side at inference: `WHOLE_PRINT_PX` after the downscale, rounded up to
    `WINDOW_STEP`, never below the training size."""
    return max(image_size, -(-round(WHOLE_PRINT_PX / downscale) // WINDOW_STEP) * WINDOW_STEP)


def enhancement(pre: dict[str, Any]) -> EnhanceConfig | None:
    """The enhancement a "preprocessing" record asks for: None when absent, "none" or false
    (every bundle made before enhancement existed), else its `EnhanceConfig`.

    Raises ValueError for anything else (a damaged or foreign bundle.json)."""
    value = pre.get("enhancement", NO_ENHANCEMENT)
    if value in (NO_ENHANCEMENT, None, False):
        return None
    if not isinstance(value, dict) or value.get("method") != "gabor":
        raise ValueError(f"preprocessing.enhancement: expected \"none\" or a gabor setting, got "
                         f"{value!r}")
    return EnhanceConfig.from_dict({k: v for k, v in value.items() if k != "method"})


def enhance_inputs(enh: EnhanceConfig | None, images: jax.Array, masks: jax.Array) -> jax.Array:
    """The model inputs as the bundle's Module 1 was trained on: `images` [B, H, W, 1] in [0, 1]
    unchanged when `enh` is None, else enhanced (`ifvit_core.enhance.enhance`, float32) with the
    foregrounds `masks` [B, H, W]. Call it inside jit; `enh` is static."""
    return images if enh is None else enhance(images, masks, enh)


def describe(pre: dict[str, Any]) -> str:
    """One line for `ifvit inspect`."""
    try:
        enh = enhancement(pre)
    except ValueError as e:
        return f"unreadable ({e})"
    if enh is None:
        return "none"
    return (f"orientation field + Gabor filtering (period {enh.ridge_period:.3g} px, "
            f"{enh.num_orientations} orientations)")
