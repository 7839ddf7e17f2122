"""The optimizer of both trainers: clipped AdamW with warm-up + cosine, frozen groups,
accumulation."""

from __future__ import annotations

from collections.abc import Iterable

import optax

from ifvit_train.training.config import TrainConfig
from ifvit_train.training.partition import trainable_labels


def learning_rate_schedule(tc: TrainConfig) -> optax.Schedule:
    """Learning rate of update number n (0-based): linear warm-up from 0.1·lr, cosine to 0.01·lr."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.1 * tc.learning_rate,
        peak_value=tc.learning_rate,
        warmup_steps=max(tc.warmup_steps, 1),
        decay_steps=max(tc.steps, tc.warmup_steps + 1),
        end_value=0.01 * tc.learning_rate,
    )


def make_optimizer(tc: TrainConfig, trainable: Iterable[str]) -> optax.GradientTransformation:
    """AdamW (`learning_rate_schedule`), global-norm clipping.

    Parameter groups not in `trainable` (see `ifvit_train.training.partition`) are frozen. With
    `accum_steps > 1` gradients of that many micro-batches are averaged before one update
    (`optax.MultiSteps`); the schedule counts updates, not micro-batches.
    """
    sched = learning_rate_schedule(tc)
    train = optax.chain(
        optax.clip_by_global_norm(tc.grad_clip), optax.adamw(sched, weight_decay=tc.weight_decay)
    )
    groups = tuple(trainable)
    tx = optax.multi_transform(
        {"train": train, "frozen": optax.set_to_zero()}, lambda p: trainable_labels(p, groups)
    )
    if tc.accum_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=tc.accum_steps)
    return tx
