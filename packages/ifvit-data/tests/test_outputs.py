"""The output-safety policy (ifvit_data.outputs) on the real file system.

Unwritable locations are made with chmod and tested in a child process; as root, chmod alone does
not stop writes, so that child drops root's permission-override capabilities first (Linux). The
tests check that the chmod really blocks a write and skip, saying why, only when it cannot.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ifvit_data.outputs import (
    MARKER_NAME,
    OutputError,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_output_file,
    claim_output_dir,
    claimed_output_dir,
    interrupt_guard,
    interrupted,
    is_temp_name,
    read_marker,
    remove_stale_temps,
    temp_sibling,
)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` -> file bytes (None for folders)."""
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


# Runs argv[1:] held to file permissions: as root (Linux), CAP_DAC_OVERRIDE and
# CAP_DAC_READ_SEARCH are dropped from the bounding set before exec (prctl PR_CAPBSET_DROP), so
# root cannot write into a chmod 0o500 folder either. Exits 99 if that is not possible.
UNPRIVILEGED = """
import ctypes, os, sys
if os.geteuid() == 0 and sys.platform == "linux":
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            sys.exit(99)
os.execv(sys.argv[1], sys.argv[1:])
"""


def run_in_read_only_dir(ro: Path, body: str) -> dict:
    """Runs `body` (Python; `ro` is a Path, `results` a dict to fill) in a child process for which
    the folder `ro` (chmod 0o500) is unwritable, also when the tests run as root (root's override
    capabilities are dropped in the child). Skips only if no such process can be made."""
    ro.chmod(0o500)
    script = (
        textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from ifvit_data.outputs import OutputError, check_output_file, claim_output_dir
        ro, results = Path(sys.argv[1]), {}
        try:
            (ro / "probe").write_text("x")
            (ro / "probe").unlink()
            print(json.dumps({"blocked": False}))
            sys.exit(0)
        except PermissionError:
            pass
    """)
        + textwrap.dedent(body)
        + '\nprint(json.dumps({"blocked": True, **results}))\n'
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", UNPRIVILEGED, sys.executable, "-c", script, str(ro)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        ro.chmod(0o700)
    if proc.returncode == 99:
        pytest.skip("running as root without CAP_SETPCAP: no process can be held to permissions")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out.pop("blocked"):
        pytest.skip(
            "chmod does not block writes for this user: an unwritable folder cannot be made"
        )
    return out


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A folder with a user's files, one of them named manifest.json."""
    d = tmp_path / "mine"
    d.mkdir()
    (d / "1_1.png").write_bytes(b"user image")
    (d / "manifest.json").write_text('{"mine": true}')
    (d / "sub").mkdir()
    (d / "sub" / "notes.txt").write_text("keep")
    return d


def one_line(e: pytest.ExceptionInfo[OutputError]) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------------------------
# claim_output_dir


def test_claim_creates_folder_and_marker(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "a" / "b", "synth")
    assert out == (tmp_path / "a" / "b").resolve() and out.is_dir()
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["kind"] == "synth" and marker["format_version"] == 1
    assert marker["created_by"].startswith("ifvit-data")
    assert sorted(p.name for p in out.iterdir()) == [MARKER_NAME]
    assert read_marker(out) == marker


def test_claim_accepts_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    assert claim_output_dir(tmp_path / "e", "shards") == (tmp_path / "e").resolve()


def test_claim_refuses_a_users_folder_and_force_keeps_their_files(user_dir: Path) -> None:
    before = snapshot(user_dir)
    with pytest.raises(OutputError) as e:
        claim_output_dir(user_dir, "shards")
    msg = one_line(e)
    assert str(user_dir) in msg and "not empty" in msg and "--force" in msg
    assert snapshot(user_dir) == before  # no marker, nothing touched
    claim_output_dir(user_dir, "shards", force=True)
    after = snapshot(user_dir)
    assert json.loads(after.pop(MARKER_NAME))["kind"] == "shards"
    assert after == before


def test_recognised_by_marker_not_by_file_name(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "s", "synth")
    (out / "manifest.json").write_text("{}")
    (out / "1_1.png").write_bytes(b"png")
    stamp = (out / MARKER_NAME).stat().st_mtime_ns
    assert claim_output_dir(out, "synth") == out  # same kind: a rerun / resume
    assert (out / MARKER_NAME).stat().st_mtime_ns == stamp  # a rerun rewrites nothing
    with pytest.raises(OutputError, match="holds an ifvit synth output, not shards"):
        claim_output_dir(out, "shards")
    (out / MARKER_NAME).unlink()  # the same files without our marker are a user's folder
    with pytest.raises(OutputError, match="not empty"):
        claim_output_dir(out, "synth")


def test_other_kind_with_force_is_re_marked(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "o", "synth")
    (out / "x.png").write_bytes(b"x")
    claim_output_dir(out, "shards", force=True)
    assert read_marker(out)["kind"] == "shards" and (out / "x.png").read_bytes() == b"x"


def test_resume_false_refuses_an_earlier_output(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "r", "evaluate")
    assert claim_output_dir(out, "evaluate", resume=False) == out  # only the marker: fine
    (out / "report.json").write_text("{}")
    with pytest.raises(OutputError, match="earlier evaluate output"):
        claim_output_dir(out, "evaluate", resume=False)
    assert claim_output_dir(out, "evaluate", resume=False, force=True) == out
    assert (out / "report.json").read_text() == "{}"


def test_bad_or_newer_marker(tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / MARKER_NAME).write_text("not json")
    with pytest.raises(OutputError, match="unreadable"):
        claim_output_dir(d, "synth")
    claim_output_dir(d, "synth", force=True)
    assert read_marker(d)["kind"] == "synth"
    (d / MARKER_NAME).write_text(json.dumps({"kind": "synth", "format_version": 99}))
    with pytest.raises(OutputError, match="newer ifvit"):
        claim_output_dir(d, "synth")


@pytest.mark.parametrize("force", [False, True])
def test_claim_refuses_inputs_even_with_force(tmp_path: Path, user_dir: Path, force: bool) -> None:
    before = snapshot(tmp_path)
    cases = {
        user_dir: "is the input",
        user_dir / "sub": "inside the input",
        user_dir / "new": "inside the input",
        tmp_path: "contains the input",
    }
    for out, what in cases.items():
        with pytest.raises(OutputError, match=what):
            claim_output_dir(out, "shards", inputs=[user_dir], force=force)
    link = tmp_path / "link"
    link.symlink_to(user_dir)
    with pytest.raises(OutputError, match="is the input"):
        claim_output_dir(link, "shards", inputs=[user_dir], force=force)
    ckpt = user_dir / "1_1.png"  # an input file inside the output folder
    with pytest.raises(OutputError, match="contains the input"):
        claim_output_dir(user_dir, "convert", inputs=[ckpt], force=force)
    link.unlink()
    assert snapshot(tmp_path) == before


def test_claim_refuses_a_file_and_a_path_under_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("keep")
    with pytest.raises(OutputError, match="is a file; give a folder"):
        claim_output_dir(f, "synth", force=True)
    with pytest.raises(
        OutputError, match=r"file.txt is a file, so nothing can be created under it"
    ):
        claim_output_dir(f / "sub" / "out", "synth", force=True)
    assert f.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_claim_refuses_an_unwritable_location(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    claim_output_dir(ro / "ours", "synth")
    (ro / "empty").mkdir()
    for d in ("ours", "empty"):
        (ro / d).chmod(0o500)
    res = run_in_read_only_dir(
        ro,
        """
        for name in ("new/a", "empty", "ours"):
            target = ro / name
            try:
                claim_output_dir(target, "synth")
                results[name] = "accepted"
            except OutputError as e:
                results[name] = str(e)
    """,
    )
    for d in ("ours", "empty"):
        (ro / d).chmod(0o700)
    assert "cannot write in" in res["new/a"] and "writable location" in res["new/a"]
    assert "cannot be written" in res["empty"]  # empty but unwritable: no marker possible
    assert "cannot write in" in res["ours"]  # our earlier output, now read-only
    assert all("\n" not in m for m in res.values())
    assert sorted(p.name for p in ro.iterdir()) == ["empty", "ours"]
    assert list((ro / "empty").iterdir()) == []


def test_claim_removes_only_stale_temps_of_our_pattern(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "t", "synth")
    gone = dead_pid()
    stale_file = out / f".1_1.png.ifvit-tmp-{gone}-0123abcd"
    stale_dir = out / "sub" / f".records.ifvit-tmp-{gone}-89abcdef"
    stale_dir.mkdir(parents=True)
    (stale_dir / "part").write_bytes(b"x")
    stale_file.write_bytes(b"half")
    live = out / f".2_1.png.ifvit-tmp-{os.getppid()}-0123abcd"  # our parent is alive
    live.write_bytes(b"in progress")
    users = [out / ".1_1.png.tmp123", out / f".x.ifvit-tmp-{gone}", out / "notes.ifvit-tmp-1-zz"]
    for u in users:
        u.write_text("user")
    claim_output_dir(out, "synth")
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and all(u.exists() for u in users)


def test_temp_left_by_a_killed_writer_is_cleaned(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "k", "synth")
    script = textwrap.dedent(f"""
        import sys, time
        from ifvit_data.outputs import atomic_path
        with atomic_path({str(out / "big.bin")!r}) as tmp:
            tmp.write_bytes(b"x" * 1000)
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()
    proc.wait()
    temps = [p for p in out.iterdir() if is_temp_name(p.name)]
    assert len(temps) == 1 and not (out / "big.bin").exists()
    claim_output_dir(out, "synth")
    assert sorted(p.name for p in out.iterdir()) == [MARKER_NAME]


def test_remove_stale_temps_by_name(tmp_path: Path) -> None:
    gone = dead_pid()
    mine = tmp_path / f".w.safetensors.ifvit-tmp-{gone}-00000000"
    other = tmp_path / f".other.ifvit-tmp-{gone}-00000000"
    mine.write_bytes(b"")
    other.write_bytes(b"")
    assert remove_stale_temps(tmp_path, name="w.safetensors") == [mine]
    assert other.exists()


# ---------------------------------------------------------------------------------------------
# check_output_file


def test_check_output_file_cases(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"weights")
    new = tmp_path / "sub" / "w.safetensors"
    assert check_output_file(new, inputs=[ckpt]) == new.resolve()
    assert not new.parent.exists()  # nothing is created by the check
    existing = tmp_path / "scores.csv"
    existing.write_text("old")
    with pytest.raises(OutputError) as e:
        check_output_file(existing)
    assert "already exists" in one_line(e) and "--force" in one_line(e)
    assert check_output_file(existing, force=True) == existing.resolve()
    assert existing.read_text() == "old"  # force allows a later replace, deletes nothing now
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path / "folder", force=True)
    with pytest.raises(OutputError, match="is a file, so nothing can be created under it"):
        check_output_file(ckpt / "w.safetensors", force=True)
    for force in (False, True):
        with pytest.raises(OutputError, match="is the input"):
            check_output_file(ckpt, inputs=[ckpt], force=force)
    hard = tmp_path / "hardlink.ckpt"
    os.link(ckpt, hard)
    with pytest.raises(OutputError, match="is the input"):
        check_output_file(hard, inputs=[ckpt], force=True)
    ro_file = tmp_path / "ro.png"
    ro_file.write_bytes(b"keep")
    ro_file.chmod(0o444)
    with pytest.raises(OutputError, match="read-only"):
        check_output_file(ro_file, force=True)
    assert ckpt.read_bytes() == b"weights" and ro_file.read_bytes() == b"keep"


def test_check_output_file_unwritable_parent(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    res = run_in_read_only_dir(
        ro,
        """
        for name in ("x.png", "a/x.png"):
            try:
                check_output_file(ro / name)
                results[name] = "accepted"
            except OutputError as e:
                results[name] = str(e)
    """,
    )
    assert set(res) == {"x.png", "a/x.png"}
    assert all("cannot write in" in m and str(ro) in m for m in res.values()), res
    assert list(ro.iterdir()) == []


def test_check_output_file_removes_its_stale_temps(tmp_path: Path) -> None:
    gone = dead_pid()
    stale = tmp_path / f".w.safetensors.ifvit-tmp-{gone}-abcdef01"
    stale.write_bytes(b"half a file")
    other = tmp_path / f".w.safetensors.json.ifvit-tmp-{gone}-abcdef01"
    other.write_bytes(b"other file's temp")
    check_output_file(tmp_path / "w.safetensors")
    assert not stale.exists() and other.exists()


# ---------------------------------------------------------------------------------------------
# atomic writes


def test_atomic_writes(tmp_path: Path) -> None:
    p = atomic_write_text(tmp_path / "a" / "r.json", "one")
    assert p.read_text() == "one"
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    long_name = "n" * 250
    atomic_write_bytes(tmp_path / long_name, b"x")
    wide_name = "指紋" * 40 + ".png"  # 244 bytes of UTF-8
    atomic_write_bytes(tmp_path / wide_name, b"y")
    assert sorted(q.name for q in tmp_path.iterdir()) == sorted(["a", long_name, wide_name])
    assert sorted(q.name for q in (tmp_path / "a").iterdir()) == ["r.json"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_failure_keeps_the_old_file(tmp_path: Path, exc: type[BaseException]) -> None:
    p = tmp_path / "w.bin"
    p.write_bytes(b"old")
    with pytest.raises(exc):
        with atomic_path(p) as tmp:
            assert is_temp_name(tmp.name) and tmp.parent == p.parent
            tmp.write_bytes(b"new but unfinished")
            raise exc()
    assert p.read_bytes() == b"old" and sorted(q.name for q in tmp_path.iterdir()) == ["w.bin"]


def test_atomic_path_for_a_folder(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "bundle") as tmp:
        tmp.mkdir()
        (tmp / "params.safetensors").write_bytes(b"p")
    assert (tmp_path / "bundle" / "params.safetensors").read_bytes() == b"p"
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "bundle2") as tmp:
            tmp.mkdir()
            (tmp / "x").write_bytes(b"x")
            raise ValueError("fail")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["bundle"]


def test_temp_names() -> None:
    t = temp_sibling("/x/y/report.md")
    assert t.parent == Path("/x/y") and t.name.startswith(".report.md.ifvit-tmp-")
    assert is_temp_name(t.name) and not is_temp_name("report.md") and not is_temp_name(".r.tmp1")
    assert temp_sibling("/x/report.md") != temp_sibling("/x/report.md")


# ---------------------------------------------------------------------------------------------
# interruption


@pytest.fixture
def foreground_signals():
    """SIGINT / SIGTERM as in a foreground terminal process (the test run itself may have been
    started in the background, where SIGINT is ignored from the start)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_guard_raises_and_blocks_commits(
    tmp_path: Path, signum: int, foreground_signals: None
) -> None:
    before = signal.getsignal(signum)
    p = tmp_path / "out.txt"
    with interrupt_guard():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
            time.sleep(5)
        assert interrupted() == signum
        # a library that swallows the interrupt cannot make the run publish its output
        with pytest.raises(KeyboardInterrupt):
            atomic_write_text(p, "half-finished results")
    assert not p.exists() and list(tmp_path.iterdir()) == []
    assert signal.getsignal(signum) is before
    atomic_write_text(p, "a later, separate run")  # outside the guard: commits again
    assert p.read_text() == "a later, separate run"


def test_interrupt_guard_keeps_an_ignored_sigint_ignored(foreground_signals: None) -> None:
    # a background job of a shell starts with SIGINT ignored; the guard must not revive it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupt_guard():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        assert interrupted() is None
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # SIGTERM is handled


def test_claimed_output_dir_removes_only_a_folder_it_created(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with claimed_output_dir(tmp_path / "new" / "out", "train") as out:
            assert read_marker(out)["kind"] == "train"
            with atomic_path(out / "ckpt.bin") as tmp:
                tmp.write_bytes(b"half")
                raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # the parent made on the way is removed too
    kept = claim_output_dir(tmp_path / "kept", "train")
    with pytest.raises(RuntimeError):
        with claimed_output_dir(kept, "train"):
            raise RuntimeError("an existing output folder is left as it was")
    assert (kept / MARKER_NAME).is_file()
    with pytest.raises(RuntimeError):
        with claimed_output_dir(tmp_path / "partial", "train") as out:
            (out / "log.txt").write_text("something this run wrote")
            raise RuntimeError("a folder with files in it is kept")
    assert (tmp_path / "partial" / "log.txt").is_file()


def test_folder_lock_is_exclusive_and_dies_with_its_process(tmp_path: Path) -> None:
    from ifvit_data.outputs import FolderLock

    lock = FolderLock(tmp_path, "workdir")
    with pytest.raises(OutputError, match="another process is writing this workdir"):
        FolderLock(tmp_path, "workdir")
    lock.release()
    FolderLock(tmp_path).release()  # free again
    assert sorted(tmp_path.iterdir()) == []  # no lock file left behind
    # held by another process: refused; that process SIGKILLed: free at once (no stale lock)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ifvit_data.outputs import FolderLock; "
         "l = FolderLock(sys.argv[1]); print('locked', flush=True); time.sleep(600)",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match="another process"):
            FolderLock(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    FolderLock(tmp_path).release()
