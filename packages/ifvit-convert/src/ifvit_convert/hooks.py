"""The hook table: pure numpy transforms from a PyTorch tensor layout to the Flax layout.

    hook                 PyTorch          Flax            used for
    conv_oihw_to_hwio    [O, I, kh, kw] -> [kh, kw, I, O]  Conv2d weight -> nnx.Conv kernel
    linear_to_in_out     [out, in]      -> [in, out]       Linear weight -> nnx.Linear kernel
    copy                 any            -> same            biases, norm scales, BN running stats

Every hook returns a new C-contiguous float32 array (never a view of the source buffer), so the
converted file does not depend on how the checkpoint was laid out in memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Hook = Callable[[np.ndarray], np.ndarray]


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).copy()


def conv_oihw_to_hwio(w: np.ndarray) -> np.ndarray:
    """Conv2d weight `[O, I, kh, kw]` -> Flax conv kernel `[kh, kw, I, O]`."""
    if w.ndim != 4:
        raise ValueError(f"conv weight must be 4-D [O, I, kh, kw], got shape {w.shape}")
    return _f32(w.transpose(2, 3, 1, 0))


def linear_to_in_out(w: np.ndarray) -> np.ndarray:
    """Linear weight `[out, in]` -> Flax dense kernel `[in, out]`."""
    if w.ndim != 2:
        raise ValueError(f"linear weight must be 2-D [out, in], got shape {w.shape}")
    return _f32(w.T)


def copy(x: np.ndarray) -> np.ndarray:
    """Same layout (biases, norm scales, running statistics)."""
    return _f32(x)


HOOKS: dict[str, Hook] = {
    "conv_oihw_to_hwio": conv_oihw_to_hwio,
    "linear_to_in_out": linear_to_in_out,
    "copy": copy,
}


def target_shape(hook: str, source_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a hook produces from `source_shape`, without touching data.

    Args:
      hook: a key of `HOOKS`.
      source_shape: the PyTorch shape.

    Returns:
      The Flax shape.
    """
    if hook == "conv_oihw_to_hwio":
        o, i, kh, kw = source_shape
        return (kh, kw, i, o)
    if hook == "linear_to_in_out":
        out, in_ = source_shape
        return (in_, out)
    if hook == "copy":
        return tuple(source_shape)
    raise KeyError(f"unknown hook {hook!r}")
