"""Worker processes die with their parent (ifvit_data.workers), whatever killed the parent.

A parent process starts a child that only sleeps (no pipe to the parent that could tell it the
parent is gone); the parent is SIGKILLed; the child must be gone within seconds instead of sleeping
on for a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

PARENT = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(__import__("os").getpid())])
    print(child.pid, flush=True)
    time.sleep(120)
""")

CHILD = textwrap.dedent("""
    import sys, time
    from ifvit_data.workers import exit_with_parent, init_worker
    parent = int(sys.argv[1])
    mode = {mode!r}
    if mode == "init":
        init_worker(parent)
    elif mode == "poll":
        exit_with_parent(parent, poll=0.1, use_prctl=False)
    time.sleep(60)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _child_after_parent_killed(mode: str) -> bool:
    """Whether the child still runs 5 s after its parent was SIGKILLed."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD.format(mode=mode)], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # let the child set itself up
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    alive = _alive(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    return alive


@pytest.mark.parametrize("mode", ["init", "poll"])
def test_worker_dies_with_its_parent(mode: str) -> None:
    assert not _child_after_parent_killed(mode)


@pytest.mark.skipif(sys.platform != "linux", reason="the control case is the same everywhere")
def test_control_a_plain_child_outlives_its_parent() -> None:
    # Without exit_with_parent the same child is orphaned: the test above can fail.
    assert _child_after_parent_killed("plain")


def test_init_worker_ignores_sigint_and_exits_on_sigterm() -> None:
    code = textwrap.dedent("""
        import os, signal, time
        from ifvit_data.workers import init_worker
        init_worker(os.getppid())
        os.kill(os.getpid(), signal.SIGINT)   # ignored: the parent decides
        time.sleep(0.2)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            print("cleanup ran", flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM and proc.stdout.strip() == "cleanup ran"
