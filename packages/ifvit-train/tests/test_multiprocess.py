"""Two JAX processes joined by jax.distributed on localhost train like one process.

"Like" is measured, not assumed: the one-process job also trains the same batch on one device
instead of two (another reduction order), and the two-process run must stay within a fixed factor
of that spread (conftest's `same_training`, which states the bound). The second test breaks data
parallelism on purpose and shows the same check fails it.
"""

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

JOB = str(Path(__file__).with_name("dist_job.py"))
STEPS = 3  # dist_job.STEPS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(out: Path, nproc: int, ndev: int, bug: str = "") -> list[subprocess.Popen]:
    port = str(_free_port()) if nproc > 1 else "0"
    return [subprocess.Popen([sys.executable, JOB, str(i), str(nproc), str(ndev), port, str(out),
                              *([bug] if bug else [])],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(nproc)]


def _wait(procs: list[subprocess.Popen], out: Path) -> dict[str, np.ndarray]:
    for p in procs:
        log, _ = p.communicate(timeout=900)
        assert p.returncode == 0, log[-3000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def _split(run: dict, prefix: str = "") -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in run.items()
            if k.startswith(prefix) and ":" not in k[len(prefix):] and k != prefix + "losses"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """1 process x 2 devices (the reference), plus the same on 1 device (`alt`)."""
    out = tmp_path_factory.mktemp("one") / "one.npz"
    return _wait(_start(out, 1, 2), out)


def _check(two, one, same_training):
    ref, alt, init = _split(one), _split(one, "alt:"), _split(one, "init:")
    same_training.losses(two["losses"], one["losses"], one["alt:losses"], STEPS)
    return same_training(_split(two), ref, alt, init, STEPS)


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path, one_process, same_training):
    two = _wait(_start(tmp_path / "two.npz", 2, 1), tmp_path / "two.npz")
    assert two["losses"][-1] != two["losses"][0]  # it trained
    key = "['backbone']['layer1_0']['conv1']['kernel'].value"
    np.testing.assert_array_equal(two[f"init:{key}"], one_process[f"init:{key}"])  # same start
    worst = _check(two, one_process, same_training)
    print(f"2 processes vs 1: worst tensor at {worst:.3g} of the bound")


@pytest.mark.slow
@pytest.mark.parametrize("bug", ["wrong-shard", "no-allreduce"])
def test_the_check_fails_broken_data_parallelism(tmp_path, one_process, same_training, bug):
    broken = _wait(_start(tmp_path / "broken.npz", 2, 1, bug), tmp_path / "broken.npz")
    ref, alt, init = _split(one_process), _split(one_process, "alt:"), _split(one_process, "init:")
    with pytest.raises(AssertionError, match="losses"):
        same_training.losses(broken["losses"], one_process["losses"], one_process["alt:losses"],
                             STEPS)
    with pytest.raises(AssertionError, match="tensors differ"):
        same_training(_split(broken), ref, alt, init, STEPS)
