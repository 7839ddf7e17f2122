"""Orbax checkpoints of a training run: the state pytree plus the Grain iterator state, together.

One `CheckpointManager` per run folder (`WORKDIR/checkpoints/<step>/{state,data}`), keep-N, async
saves. Orbax writes each step into a temporary folder and renames it when complete, so a run killed
in the middle of a save leaves the previous checkpoint as the latest loadable one (the partial
folder is ignored and cleaned up by the next manager).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves and restores `{state, data iterator state}` by step.

    Args:
      directory: the checkpoints folder (created).
      keep: how many recent checkpoints to keep.
      async_save: write in a background thread (training continues; `wait()` before exiting).
    """

    def __init__(self, directory: str | Path, keep: int = 2, async_save: bool = True):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=async_save
        )
        self._mgr = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._mgr.latest_step()

    def save(self, step: int, state: Any, data_state: dict | None, *, force: bool = True) -> None:
        args = {"state": ocp.args.StandardSave(state)}
        if data_state is not None:
            args["data"] = ocp.args.JsonSave(data_state)
        self._mgr.save(step, args=ocp.args.Composite(**args), force=force)

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[int, Any, dict | None]:
        """(step, state, data iterator state or None) of `step` (default: the latest).

        `abstract_state` gives the structure, shapes, dtypes and shardings (e.g. the freshly
        initialised state, or `jax.eval_shape` of its init).
        """
        step = self._mgr.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{self.directory}: no checkpoint")
        args = {"state": ocp.args.StandardRestore(abstract_state)}
        has_data = (self.directory / str(step) / "data").is_dir()
        if has_data:
            args["data"] = ocp.args.JsonRestore()
        out = self._mgr.restore(step, args=ocp.args.Composite(**args))
        return step, out["state"], (out["data"] if has_data else None)

    def wait(self) -> None:
        self._mgr.wait_until_finished()

    def close(self) -> None:
        self._mgr.wait_until_finished()
        self._mgr.close()


def abstract_like(tree: Any) -> Any:
    """ShapeDtypeStructs (with shardings) of a tree of arrays: the restore target."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        tree,
    )
