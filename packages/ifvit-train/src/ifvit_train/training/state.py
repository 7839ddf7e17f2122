"""The training state: a plain pytree (step, params, batch statistics, optimizer state).

NNX modules are split into a static graph definition and these arrays, so the state jits, shards
and checkpoints (Orbax) like any JAX pytree.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx


class TrainState(NamedTuple):
    step: jax.Array  # int32 scalar: micro-steps done
    params: Any  # nnx.State of nnx.Param
    batch_stats: Any  # nnx.State of nnx.BatchStat
    opt_state: Any


def split_model(model: nnx.Module,
                tx: optax.GradientTransformation) -> tuple[nnx.GraphDef, TrainState]:
    """(graphdef, fresh TrainState at step 0) of a model."""
    graphdef, p, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    return graphdef, TrainState(jnp.zeros((), jnp.int32), p, stats, tx.init(p))


def merge_model(graphdef: nnx.GraphDef, params: Any, batch_stats: Any, *,
                train: bool) -> nnx.Module:
    """The module with these weights, in train (batch statistics) or eval (running averages)
    mode."""
    # Fresh leaves: NNX refuses to mutate variables created at another trace level (the batch
    # statistics come from the enclosing jit, the parameters from the grad trace).
    params, batch_stats = jax.tree.map(lambda x: x, (params, batch_stats))
    model = nnx.merge(graphdef, params, batch_stats)
    model.train() if train else model.eval()
    return model


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Casts the floating leaves of a tree (bf16 compute from float32 master weights)."""
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def param_count(params: Any) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
