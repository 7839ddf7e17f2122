"""Weights-only Orbax folders: what serving reads and writes (no optimizer, no train state).

    save_weights(dir, {"params": ..., "batch_stats": ...})      # an exported bundle's module1/2
    load_weights(dir, abstract)                                  # the same, into a given structure
    load_run_weights(ckpt_dir, abstract, step)                   # weights out of a training run's
                                                                 # checkpoint (partial restore)

The training run's own checkpoints (state + data iterator, exact resume) are
`ifvit_train.training.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp


def save_weights(directory: str | Path, tree: Any) -> None:
    """Writes a weights-only pytree (e.g. the frozen Module 1 inside a Module 2 bundle)."""
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(Path(directory).absolute(), tree, force=True)
    ckptr.wait_until_finished()


def load_weights(directory: str | Path, abstract: Any) -> Any:
    return ocp.StandardCheckpointer().restore(Path(directory).absolute(), abstract)


def load_run_weights(directory: str | Path, abstract: Any,
                     step: int | None = None) -> tuple[int, Any]:
    """(step, weights) of a training run's checkpoint folder, without its optimizer state.

    `abstract` is `{"params": ..., "batch_stats": ...}` of ShapeDtypeStructs: only those entries of
    the saved train state are read (Orbax partial restore), so serving a bundle that is still a
    training run needs neither the optimizer nor the train state's definition. The folder is opened
    read-only. Raises FileNotFoundError when it holds no checkpoint.
    """
    options = ocp.CheckpointManagerOptions(create=False, read_only=True)
    mgr = ocp.CheckpointManager(Path(directory).absolute(), options=options)
    try:
        step = mgr.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{directory}: no checkpoint")
        args = ocp.args.PyTreeRestore(item=abstract, partial_restore=True)
        out = mgr.restore(step, args=ocp.args.Composite(state=args))
    finally:
        mgr.close()
    return step, out["state"]
