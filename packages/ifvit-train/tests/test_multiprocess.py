"""Two JAX processes joined by jax.distributed on localhost train like one process."""

import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

JOB = str(Path(__file__).with_name("dist_job.py"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    port = str(_free_port())
    two = [subprocess.Popen([sys.executable, JOB, str(i), "2", "1", port, str(tmp_path / "two.npz")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
    one = subprocess.run([sys.executable, JOB, "0", "1", "2", "0", str(tmp_path / "one.npz")],
                         capture_output=True, text=True, timeout=600)
    for p in two:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = np.load(tmp_path / "two.npz"), np.load(tmp_path / "one.npz")
    assert set(a.files) == set(b.files) and len(a.files) > 10
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)
    assert a["losses"][-1] != a["losses"][0]  # it trained
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=2e-6, err_msg=k)
