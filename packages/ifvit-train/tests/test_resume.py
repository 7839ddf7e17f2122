"""Checkpoints survive real kills: a SIGKILLed run restarted with the same command ends with
parameters bit-identical to an uninterrupted run, and a kill during a save keeps the previous
checkpoint loadable. Each run is a real subprocess."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

JOB = str(Path(__file__).with_name("train_job.py"))
STEPS = 12

pytestmark = pytest.mark.slow  # end-to-end: real subprocesses, kills


def _cmd(shards, workdir, *extra):
    return [sys.executable, JOB, shards, str(workdir), str(STEPS), *extra]


def _run(shards, workdir, *extra, check=True):
    p = subprocess.run(_cmd(shards, workdir, *extra), capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def _params(workdir):
    with np.load(Path(workdir) / "final_params.npz") as z:
        return {k: z[k] for k in z.files}


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture(scope="module")
def reference(tiny_shards, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ref") / "run"
    _run(tiny_shards, workdir)
    return _params(workdir)


def test_sigkill_at_a_random_step_then_resume_is_bit_identical(tiny_shards, tmp_path, reference):
    kill_after = int(np.random.default_rng().integers(4, STEPS - 1))  # a random step, any run
    workdir = tmp_path / "run"
    proc = subprocess.Popen(_cmd(tiny_shards, workdir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 600
    def committed() -> list[Path]:
        if not (workdir / "checkpoints").is_dir():
            return []
        return [p for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()
                and (p / "commit_success.txt").exists()]

    # Kill at the random step, once at least one checkpoint is committed (saves are asynchronous:
    # killed before the first commit, a run restarts from scratch, which proves nothing here).
    while time.time() < deadline and proc.poll() is None:
        if (metrics.is_file() and len(metrics.read_text().splitlines()) >= kill_after
                and committed()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"finished before the kill: {proc.stdout.read()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (workdir / "final_params.npz").exists()
    out = _run(tiny_shards, workdir)
    assert "resuming from step" in out.stdout, (kill_after, out.stdout[-2000:])
    _assert_identical(_params(workdir), reference)


def test_kill_during_a_save_keeps_the_previous_checkpoint(tiny_shards, tmp_path, reference):
    workdir = tmp_path / "run"
    p = _run(tiny_shards, workdir, "--kill-during-save", "6", check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    from ifvit_train.training.checkpoint import Checkpointer

    ck = Checkpointer(workdir / "checkpoints", async_save=False)
    assert ck.latest_step() == 3  # step 6 was never committed
    ck.close()
    out = _run(tiny_shards, workdir)
    assert "resuming from step 3" in out.stdout
    _assert_identical(_params(workdir), reference)
