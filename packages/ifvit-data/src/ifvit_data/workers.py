"""Worker processes that never outlive their parent and leave the interrupt decision to it.

`init_worker(parent_pid)` is the initializer for `multiprocessing` pools of ifvit commands:

- SIGINT is ignored in the worker: Ctrl-C in a terminal reaches the whole process group, and the
  parent (which sees it too) decides, terminates the pool and cleans up;
- SIGTERM raises SystemExit, so `finally` blocks and `ifvit_data.outputs.atomic_path` remove the
  worker's temp files when the pool is terminated;
- the worker gets SIGTERM when its parent dies, whatever killed the parent (SIGKILL included):
  Linux `prctl(PR_SET_PDEATHSIG)`, elsewhere a watchdog thread that polls `os.getppid()`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

_PR_SET_PDEATHSIG = 1


def _on_term(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def exit_with_parent(
    parent_pid: int, sig: int = signal.SIGTERM, poll: float = 0.5, *, use_prctl: bool = True
) -> None:
    """Makes this process receive `sig` when the process `parent_pid` (its parent) exits.

    Args:
      parent_pid: the parent's pid as the parent saw it (guards against the parent dying before
        this call, after which `os.getppid()` already names another process).
      sig: the signal to receive.
      poll: watchdog period in seconds where prctl is not available.
      use_prctl: False forces the portable watchdog thread (tests).
    """
    if use_prctl and sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
                if os.getppid() != parent_pid:  # the parent died before prctl took effect
                    os.kill(os.getpid(), sig)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll)
        os.kill(os.getpid(), sig)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def init_worker(parent_pid: int) -> None:
    """Pool initializer: ignore SIGINT, SIGTERM -> SystemExit, die with the parent (module doc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_term)
    exit_with_parent(parent_pid)
