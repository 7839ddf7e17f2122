"""The training loop both trainers run: resume, step, watch, checkpoint, validate, plot, log.

    result = run_loop(workdir, state, step_fn, make_batches, total_steps, tc, validate=...)

Resuming is exact: the Orbax checkpoint holds the state *and* the Grain iterator position, and every
random choice derives from (seed, step), so a run killed at any point and restarted with the same
command ends bit-identical to an uninterrupted one on the same machine.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from ifvit_data.outputs import atomic_write_text
from ifvit_train.training.checkpoint import Checkpointer, abstract_like
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.optim import learning_rate_schedule
from ifvit_train.training.tensorboard import ScalarLog

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "train_curves.png"
TENSORBOARD_DIR = "tensorboard"


class TrainingDiverged(RuntimeError):
    """The loss became NaN/Inf; the last good checkpoint is kept."""


@dataclass
class LoopResult:
    state: Any
    step: int
    resumed_from: int | None
    seconds: float
    history: list[dict[str, Any]]
    validation: dict[str, Any] | None


def _read_history(path: Path, upto: int) -> list[dict[str, Any]]:
    """Metrics lines of earlier runs up to step `upto` (later lines were never checkpointed)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if row.get("step", 0) <= upto:
            rows.append(row)
    return rows


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows),
                      fsync=False)


def run_loop(
    workdir: Path,
    state: Any,
    step_fn: Callable[[Any, dict], tuple[Any, dict]],
    make_batches: Callable[[dict | None], Any],
    to_device: Callable[[dict], dict],
    total_steps: int,
    tc: TrainConfig,
    *,
    validate: Callable[[Any], dict[str, Any]] | None = None,
    initial_validation: dict[str, float] | None = None,
    desc: str = "train",
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> LoopResult:
    """Runs `step_fn` until `total_steps` micro-steps, resuming from `workdir/checkpoints`.

    Args:
      workdir: run folder (checkpoints/, metrics.jsonl, train_curves.png, tensorboard/). Each
        metrics row holds the step's metrics, `lr` (the learning rate of the update it feeds) and
        `step_seconds`; process 0 also writes them as TensorBoard scalars
        (`ifvit_train.training.tensorboard`).
      state: freshly initialised state (the restore target when a checkpoint exists).
      step_fn: jitted `(state, device batch) -> (state, metrics)`; metrics hold at least `loss`.
      make_batches: `(iterator state or None) -> Grain iterator` positioned there.
      to_device: host batch -> sharded device batch.
      total_steps: micro-steps of the whole run.
      validate: `state -> dict of scalars`, run every `tc.validate_every` steps and at the end.
      initial_validation: the validation of the untrained state (plotted at step 0).

    Raises:
      TrainingDiverged: a non-finite loss (the previous checkpoint stays the latest).
    """
    workdir = Path(workdir)
    ck = Checkpointer(workdir / "checkpoints", keep=tc.keep_checkpoints)
    start, data_state, resumed = 0, None, None
    if ck.latest_step() is not None:
        start, state, data_state = ck.restore(abstract_like(state))
        resumed = start
        log(f"resuming from step {start} ({ck.directory})")
    history = _read_history(workdir / METRICS_FILE, start)
    _write_history(workdir / METRICS_FILE, history)
    it = make_batches(data_state)
    metrics_file = open(workdir / METRICS_FILE, "a")
    lr = learning_rate_schedule(tc)
    tb = ScalarLog(workdir / TENSORBOARD_DIR, start) if jax.process_index() == 0 else None
    if tb is not None and start == 0 and initial_validation:
        tb.write({f"val_{k}": v for k, v in initial_validation.items()}, step=0)
    validation = None
    t0 = time.time()
    bar = tqdm(total=total_steps, initial=start, desc=desc, unit="step", disable=not progress,
               dynamic_ncols=True)
    step = start
    try:
        while step < total_steps:
            t_step = time.time()
            batch = next(it)
            state, m = step_fn(state, to_device(batch))
            m = {k: float(v) for k, v in jax.device_get(m).items()}
            m["lr"] = float(lr(step // tc.accum_steps))
            m["step_seconds"] = round(time.time() - t_step, 4)
            step += 1
            if not math.isfinite(m["loss"]):
                ck.wait()
                raise TrainingDiverged(
                    f"loss is {m['loss']} at step {step}; stopped. The last good checkpoint "
                    f"(step {ck.latest_step()}) is kept in {ck.directory}: lower --lr or "
                    "check the data")
            row = {"step": step, "time": round(time.time() - t0, 3), **m}
            if validate is not None and tc.validate_every and step % tc.validate_every == 0 \
                    and step < total_steps:
                validation = {f"val_{k}": v for k, v in validate(state).items()}
                row.update(validation)
            metrics_file.write(json.dumps(row, sort_keys=True) + "\n")
            metrics_file.flush()
            if tb is not None:
                tb.write(row)
            history.append(row)
            bar.set_postfix(loss=f"{m['loss']:.3f}", refresh=False)
            bar.update(1)
            if step % tc.checkpoint_every == 0 or step == total_steps:
                ck.save(step, state, it.get_state())
                if tb is not None:
                    tb.flush()
        if validate is not None:
            validation = {f"val_{k}": v for k, v in validate(state).items()}
            if history:
                history[-1].update(validation)
                _write_history(workdir / METRICS_FILE, history)
                if tb is not None and step > start:  # a rerun of a finished run logged it already
                    tb.write(validation, step=history[-1]["step"])
    finally:
        bar.close()
        metrics_file.close()
        ck.close()
        if tb is not None:
            tb.close()
    _plot(workdir, history, initial_validation)
    return LoopResult(state, step, resumed, time.time() - t0, history, validation)


def _plot(workdir: Path, history: list[dict[str, Any]], initial: dict[str, float] | None) -> None:
    if not history:
        return
    from ifvit_train.evaluation.plots import plot_training_curves

    series: dict[str, list[tuple[int, float]]] = {}
    validation: dict[str, list[tuple[int, float]]] = {}
    for row in [{"step": 0, **{f"val_{k}": v for k, v in (initial or {}).items()}}, *history]:
        for k, v in row.items():
            if k not in ("step", "time") and isinstance(v, (int, float)) and np.isfinite(v):
                # val_x is drawn with markers in the panel of training metric x (or its own)
                dest, name = (validation, k[4:]) if k.startswith("val_") else (series, k)
                dest.setdefault(name, []).append((row["step"], float(v)))
    plot_training_curves(series, workdir / CURVES_FILE, validation=validation)
