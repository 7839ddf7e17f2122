"""Flat, '/'-keyed views of a model's variables, and strict loading of such a dict into a model.

The flat form (`{'backbone/conv1/kernel': array, 'backbone/bn1/mean': array, ...}`) is what
ifvit-convert writes and what Module 1 -> Module 2 transfer copies. No file IO here: reading and
writing files is the job of ifvit-convert / ifvit-train.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jax
import numpy as np
from flax import nnx


class ParamMismatchError(ValueError):
    """Raised when a flat dict does not fit a model; `missing`, `unexpected`, `mismatched` list
    why."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[str]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("wrong shape/dtype", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... (+{len(keys) - 8})" if len(keys) > 8 else "")
                parts.append(f"{len(keys)} {label}: {shown}")
        super().__init__("; ".join(parts))


def _flat_variables(model: nnx.Module) -> dict[str, nnx.Variable]:
    return {"/".join(map(str, path)): var for path, var in nnx.to_flat_state(nnx.state(model))}


def flat_state(model: nnx.Module, *, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables (params and batch statistics) as host numpy arrays keyed by '/'-joined path.

    Only keys starting with `prefix` are returned (e.g. 'loftr_coarse/').
    """
    return {
        k: np.asarray(jax.device_get(v.get_value()))
        for k, v in _flat_variables(model).items()
        if k.startswith(prefix)
    }


def param_count(model: nnx.Module, *, prefix: str = "") -> int:
    """Number of trainable parameter values (nnx.Param) under `prefix`."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return sum(
        int(np.prod(v.get_value().shape))
        for p, v in flat if "/".join(map(str, p)).startswith(prefix)
    )


def load_flat_state(
    model: nnx.Module,
    flat: Mapping[str, np.ndarray],
    *,
    strict: bool = True,
    ignore_prefixes: Iterable[str] = (),
) -> list[str]:
    """Copies `flat` into `model` in place, checking names, shapes and dtypes.

    Args:
      model: the target module.
      flat: '/'-keyed arrays (e.g. from `flat_state` or a converted LoFTR checkpoint).
      strict: if True, every model variable must be filled and every key used; otherwise only the
        keys present in both are copied (shape/dtype still checked).
      ignore_prefixes: source keys under these prefixes are skipped without counting as
        unexpected (e.g. 'fine_preprocess/' when loading LoFTR weights into a coarse-only trunk).

    Returns:
      The sorted list of model keys that were filled.

    Raises:
      ParamMismatchError: listing missing, unexpected and wrong-shape/dtype keys.
    """
    ignore = tuple(ignore_prefixes)
    targets = _flat_variables(model)
    source = {k: v for k, v in flat.items() if not (ignore and k.startswith(ignore))}
    missing = sorted(set(targets) - set(source)) if strict else []
    unexpected = sorted(set(source) - set(targets)) if strict else []
    mismatched = []
    common = sorted(set(targets) & set(source))
    for k in common:
        want = targets[k].get_value()
        got = np.asarray(source[k])
        if tuple(got.shape) != tuple(want.shape) or got.dtype != np.dtype(want.dtype):
            mismatched.append(f"{k} {got.dtype}{list(got.shape)} != "
                              f"{np.dtype(want.dtype)}{list(want.shape)}")
    if missing or unexpected or mismatched:
        raise ParamMismatchError(missing, unexpected, mismatched)
    for k in common:
        targets[k].set_value(jax.numpy.asarray(source[k]))
    return common
