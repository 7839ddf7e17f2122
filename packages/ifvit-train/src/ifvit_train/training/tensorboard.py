"""TensorBoard scalars of a training run: `WORKDIR/tensorboard/` (tensorboardX; no TensorFlow).

    tb = ScalarLog(workdir / "tensorboard", start=restored_step)
    tb.write(row)   # a metrics.jsonl row: train/<name>, val/<name> (from `val_<name>`)
    tb.close()

View with `tensorboard --logdir WORKDIR/tensorboard`. Each run (first start or resume) appends its
own event file. A resumed run restarts at its checkpoint's step `T`, but its previous run may have
logged steps after `T` (between the last checkpoint and the kill); the new file therefore opens
with TensorBoard's purge marker (a `SessionLog.START` event at step `T + 1`, or 0 for a run
restarting from scratch), which makes TensorBoard drop every earlier event at or after that step:
each step shows once, with the values of the run that `metrics.jsonl` keeps.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any


def tag_of(key: str) -> str:
    """TensorBoard tag of a metrics.jsonl key: `val_x` -> `val/x`, `x` -> `train/x`."""
    return "val/" + key[4:] if key.startswith("val_") else "train/" + key


class ScalarLog:
    """Writes the numeric entries of metrics rows as TensorBoard scalars (one event file per run).

    Args:
      directory: the event folder (created).
      start: the step the run (re)starts from; events after it from earlier runs are purged.
    """

    def __init__(self, directory: str | Path, start: int = 0):
        from tensorboardX import SummaryWriter

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        earlier = any(directory.glob("events.out.tfevents.*"))
        # tensorboardX names files by the second and opens them with 'wb': a unique, time-ordered
        # suffix keeps two runs within one second from overwriting or misordering each other.
        suffix = f".{time.time_ns():020d}.{os.getpid()}"
        self.start = start
        self._writer = SummaryWriter(str(directory), flush_secs=30, filename_suffix=suffix,
                                     purge_step=(start + 1 if start else 0) if earlier else None)

    def write(self, row: dict[str, Any], step: int | None = None) -> None:
        """Logs every finite number of `row` except `step`/`time` at `step` (default
        row['step'])."""
        step = int(row["step"] if step is None else step)
        for key, value in row.items():
            if key in ("step", "time") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._writer.add_scalar(tag_of(key), float(value), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
