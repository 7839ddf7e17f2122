"""Interruption: Ctrl-C / SIGTERM exit 130 / 143 with nothing half-written; killing `ifvit synth`
leaves no worker process behind; an interrupt that a library swallows still stops the run.

The process tests run the real `ifvit` command in its own session and signal it the way a terminal
does (SIGINT to the whole process group). They read the process table from /proc (Linux).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from ifvit_cli.main import main
from ifvit_data.outputs import MARKER_NAME, is_temp_name

needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process whose parent chain leads to `pid`."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (pp := _ppid(int(d.name))) is not None:
            parents[int(d.name)] = pp
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier and c not in found}
        found |= frontier
    return {p for p in found if _alive(p)}


# Runs argv[1:] with SIGINT / SIGTERM at their defaults, as in a foreground terminal process (this
# test run may itself have been started in the background, where SIGINT is ignored and that is
# inherited). Dispositions set to default survive exec; no preexec_fn (unsafe in threaded parents).
FOREGROUND = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def start_synth(out: Path, extra: list[str] = ()) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("ifvit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ifvit_cli.main"]
    argv = [
        "synth",
        "--out",
        str(out),
        "--fingers",
        "40",
        "--impressions",
        "4",
        "--seed",
        "0",
        "--size",
        "256x256",
        "--workers",
        "2",
        *extra,
    ]
    return subprocess.Popen(
        [sys.executable, "-c", FOREGROUND, *cmd, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for_images(
    proc: subprocess.Popen[str], out: Path, n: int = 4, timeout: float = 120
) -> set[int]:
    """Waits until `n` images are written; returns the live worker processes then."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        if out.is_dir() and len(list(out.glob("*.png"))) >= n:
            kids = descendants(proc.pid)
            assert len(kids) >= 2, kids  # two workers (plus multiprocessing's helper)
            return kids
        time.sleep(0.05)
    raise AssertionError("no images written in time")


def assert_nothing_half_written(out: Path) -> None:
    names = [p.name for p in out.iterdir()]
    assert not [n for n in names if is_temp_name(n)], names
    assert "manifest.json" not in names  # the dataset is not marked complete
    for p in out.glob("*.png"):  # every image under its final name is whole
        with Image.open(p) as im:
            im.load()


def wait_gone(pids: set[int], timeout: float = 20) -> set[int]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if _alive(p)}


@needs_proc
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupting_synth(tmp_path: Path, signum: int, code: int) -> None:
    out = tmp_path / "ds"
    proc = start_synth(out)
    workers = wait_for_images(proc, out)
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)  # Ctrl-C: the terminal signals the whole process group
    else:
        os.kill(proc.pid, signum)  # `kill PID`: only the parent
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == (
        f"ifvit synth: interrupted ({signal.Signals(signum).name}); no partial output was committed"
    )
    assert wait_gone(workers) == set()
    assert_nothing_half_written(out)


@needs_proc
@pytest.mark.slow
def test_killed_synth_leaves_no_orphan_workers(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    proc = start_synth(out)
    workers = wait_for_images(proc, out)
    proc.kill()  # SIGKILL: the parent cannot clean up
    proc.communicate(timeout=60)
    assert wait_gone(workers) == set(), "workers outlived their parent"
    names = [p.name for p in out.iterdir()]
    assert "manifest.json" not in names
    # A later run (here: a smaller set into a fresh claim of the same folder) sweeps any temp file.
    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "--fingers",
                "1",
                "--impressions",
                "1",
                "--seed",
                "0",
                "--size",
                "64x64",
                "--workers",
                "1",
                "--force",
            ]
        )
        == 0
    )
    assert not [n for n in os.listdir(out) if is_temp_name(n)]


def test_swallowed_interrupt_still_stops_the_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    """A library that catches KeyboardInterrupt (as jax's gc callback does) cannot make the run
    publish its output: the next stage boundary or commit raises again, exit 130."""
    import ifvit_data.synth.dataset as dataset

    original = dataset.render_impression
    calls = []

    def swallowing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            except KeyboardInterrupt:
                pass  # swallowed
        return original(*args, **kwargs)

    monkeypatch.setattr(dataset, "render_impression", swallowing)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a foreground run
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    out = tmp_path / "ds"
    code = main(
        [
            "synth",
            "--out",
            str(out),
            "--fingers",
            "3",
            "--impressions",
            "2",
            "--seed",
            "0",
            "--size",
            "64x64",
            "--workers",
            "1",
        ]
    )
    assert code == 130
    assert "interrupted (SIGINT)" in capsys.readouterr().err
    assert len(calls) == 2  # stopped at once, not after all three fingers
    # the image rendered after the signal is not committed, nor is the manifest
    assert sorted(os.listdir(out)) == [MARKER_NAME, "1_1.png"]
