"""The one output-safety policy of every `ifvit` command: never lose a user's file.

Stdlib only (importable from ifvit-data, ifvit-train, ifvit-convert and the app without pulling
anything). Every command that writes follows it:

1. **Check before any work.** `claim_output_dir` (an output folder) or `check_output_file` (a single
   output file) runs before the first expensive step and raises `OutputError` (one line: the path,
   what is wrong, what to do) for an output that

   - is an input, lies inside an input, or contains an input;
   - lies under an existing file, or cannot be written (permissions, read-only file system);
   - (folder) exists, is not empty and carries no marker of this kind of output: a folder is
     recognised as ours only by the versioned marker file `.ifvit-output.json`
     (`{"kind", "format_version", "created_by"}`) that `claim_output_dir` writes into it, never by
     the names of the files in it (a user's `manifest.json` is just a user's file);
   - (folder) carries the marker of another kind of output (e.g. shards where a synth set goes);
   - (file) already exists.

2. **`force=True` (`--force`) takes over**: a non-empty folder without our marker, or with another
   kind's marker, is accepted and marked as this kind; an existing output file is replaced. Files
   are only ever *replaced* by files of the same name that the command writes; a command never
   deletes a file it did not create (the one exception is a temp file of our own pattern left by a
   killed run, see 4). Inputs are protected even with `force`.

3. **Write to a temp sibling, then rename** (`atomic_path`, `atomic_write_bytes`,
   `atomic_write_text`): a file appears under its final name complete or not at all. On any
   exception, KeyboardInterrupt included, the temp file is removed. Every temp file is named
   `.<name>.ifvit-tmp-<pid>-<8 hex>` (`temp_sibling`), the one pattern all members use.

4. **Clean up after a killed run**: `claim_output_dir` and `check_output_file` remove temp files of
   that pattern whose process is gone (`remove_stale_temps`); temp files of a live process (another
   run in progress) are left alone.

5. **Interruption**: inside `interrupt_guard()` (the `ifvit` command wraps every sub-command in it),
   SIGINT and SIGTERM raise KeyboardInterrupt and are remembered; an `atomic_path` commit after
   such a signal raises KeyboardInterrupt instead of renaming, so even an interrupt swallowed by a
   library on the way cannot make a half-finished run publish its output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MARKER_NAME = ".ifvit-output.json"
"""The marker file `claim_output_dir` writes into every output folder it accepts."""
MARKER_FORMAT_VERSION = 1
"""Version of the marker's layout; a marker of a newer version is not trusted."""
TEMP_TAG = ".ifvit-tmp-"
"""Every temp file is `.<name>` + TEMP_TAG + `<pid>-<8 hex>`."""
_TEMP_RE = re.compile(r"^\..*" + re.escape(TEMP_TAG) + r"(?P<pid>\d+)-[0-9a-f]{8}$", re.DOTALL)
_MAX_NAME_IN_TEMP = 180  # bytes: keeps temp names under NAME_MAX (255 bytes) for long file names

PathLike = str | os.PathLike[str]


class OutputError(ValueError):
    """An output path that must not be written; the message is one line: path, problem, remedy."""


# ---------------------------------------------------------------------------------------------
# temp files


def _short(name: str) -> str:
    """`name` cut to `_MAX_NAME_IN_TEMP` bytes of UTF-8 (never inside a character)."""
    return name.encode("utf-8", "surrogateescape")[:_MAX_NAME_IN_TEMP].decode("utf-8", "ignore")


def temp_sibling(path: PathLike) -> Path:
    """A fresh temp path next to `path`: `.<name>.ifvit-tmp-<pid>-<8 hex>` (not created)."""
    path = Path(path)
    return path.with_name(f".{_short(path.name)}{TEMP_TAG}{os.getpid()}-{secrets.token_hex(4)}")


def is_temp_name(name: str) -> bool:
    """Whether a file name follows the temp pattern of `temp_sibling`."""
    return _TEMP_RE.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def _remove(path: Path) -> None:
    """Removes a file, symlink or folder tree; missing is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def remove_stale_temps(
    folder: PathLike, *, recursive: bool = True, name: str | None = None
) -> list[Path]:
    """Removes temp files (or folders) of our pattern whose process no longer runs.

    Args:
      folder: where to look.
      recursive: also look in sub-folders (symlinks are not followed).
      name: only temp siblings of this file name (`.<name>.ifvit-tmp-…`), in `folder` only.

    Returns:
      The paths removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    prefix = None if name is None else f".{_short(name)}{TEMP_TAG}"
    for root, dirs, files in os.walk(folder):
        for entry in [*files, *dirs]:
            m = _TEMP_RE.match(entry)
            if m is None or (prefix is not None and not entry.startswith(prefix)):
                continue
            if not _pid_alive(int(m.group("pid"))):
                p = Path(root) / entry
                _remove(p)
                removed.append(p)
        dirs[:] = [d for d in dirs if not _TEMP_RE.match(d)] if recursive and name is None else []
    return removed


# ---------------------------------------------------------------------------------------------
# interruption


class _InterruptState:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.depth = 0


_STATE = _InterruptState()


def interrupted() -> int | None:
    """The signal number (SIGINT / SIGTERM) received inside the current `interrupt_guard`, else
    None (also outside any guard)."""
    return _STATE.signum if _STATE.depth > 0 else None


@contextlib.contextmanager
def interrupt_guard(signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Turns SIGINT / SIGTERM into KeyboardInterrupt and remembers them (see `interrupted`).

    Once a signal has been seen inside the guard, every `atomic_path` commit refuses (raises
    KeyboardInterrupt), so nothing is published after an interrupt, even one that a library
    swallowed (`raise_if_interrupted` stops long work early). A no-op outside the main thread
    (Python delivers signals there only); a signal the process was started ignoring
    (SIGINT of a background job) stays ignored. Nested guards share one state.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        _STATE.signum = signum
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if _STATE.depth == 0:
        _STATE.signum = None
        for s in signals:
            if signal.getsignal(s) is not signal.SIG_IGN:  # e.g. SIGINT of a background job
                previous[s] = signal.signal(s, handler)
    _STATE.depth += 1
    try:
        yield
    finally:
        _STATE.depth -= 1
        for s, h in previous.items():
            signal.signal(s, h)


def raise_if_interrupted() -> None:
    """Raises KeyboardInterrupt if `interrupt_guard` has seen a signal (call it between stages and
    in long loops, so that an interrupt swallowed by a library still stops the work soon)."""
    if _STATE.depth > 0 and _STATE.signum is not None:
        raise KeyboardInterrupt(f"{signal.Signals(_STATE.signum).name} received; not committed")


# ---------------------------------------------------------------------------------------------
# atomic writes


def _fsync(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yields a temp sibling path to write; renames it onto `path` when the block succeeds.

    The caller creates the temp path (a file, or a folder when `path` does not exist yet). On any
    exception, KeyboardInterrupt included, it is removed and `path` is untouched. Parent folders are
    created. After a signal seen by `interrupt_guard` the commit raises KeyboardInterrupt instead.

    Args:
      path: the final path.
      fsync: flush the temp file (and the folder entry) to disk before/after the rename.

    Example:
      with atomic_path(out / "plot.png") as tmp:
          fig.savefig(tmp, format="png")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        yield tmp
        raise_if_interrupted()
        if fsync and tmp.is_file():
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    if fsync:
        _fsync(path.parent, directory=True)


def atomic_write_bytes(path: PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Writes `data` to `path` through a temp sibling and a rename; returns `Path(path)`."""
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, *, fsync: bool = True) -> Path:
    """Writes UTF-8 `text` to `path` through a temp sibling and a rename; returns `Path(path)`."""
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


# ---------------------------------------------------------------------------------------------
# checks


def _resolve(path: PathLike) -> Path:
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    try:
        return absolute.resolve(strict=False)
    except (RuntimeError, OSError):  # a symbolic-link loop: it is no folder we could write into
        return absolute


def _related(a: Path, b: Path) -> bool:
    """a == b, or one inside the other (resolved paths)."""
    return a == b or a in b.parents or b in a.parents


def _check_inputs(out: Path, inputs: Iterable[PathLike], *, what: str, folder: bool) -> None:
    for raw in inputs:
        if raw is None:
            continue
        inp = _resolve(raw)
        same = out == inp
        if not same and out.exists() and inp.exists():
            try:
                same = os.path.samefile(out, inp)
            except OSError:
                same = False
        if same:
            raise OutputError(
                f"{out}: is the input {raw}; writing here would destroy it; choose another {what}"
            )
        if folder and out in inp.parents:
            raise OutputError(
                f"{out}: contains the input {raw}; choose an output {what} outside the input"
            )
        if folder and inp in out.parents:
            raise OutputError(
                f"{out}: is inside the input {raw}; choose an output {what} outside the input"
            )


def _existing_ancestor(path: Path) -> Path:
    """The nearest existing path among `path` and its parents; refuses a file on the way."""
    for a in (path, *path.parents):
        if a.exists():
            return a
        if a.is_symlink():  # dangling symlink
            raise OutputError(f"{a}: is a broken symbolic link; remove it or choose another path")
    return Path(path.anchor)


def _probe_writable(folder: Path, what: Path) -> None:
    """Creates and removes a temp file in `folder` (os.access misleads for root, read-only fs)."""
    probe = temp_sibling(folder / ".probe")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except OSError as e:
        raise OutputError(
            f"{what}: cannot write in {folder} ({e.strerror or e}); choose a writable location"
        ) from None
    finally:
        probe.unlink(missing_ok=True)


def _check_location(out: Path, shown: PathLike) -> Path:
    """Refuses an output under a file; returns the nearest existing path."""
    anc = _existing_ancestor(out)
    if anc != out and not anc.is_dir():
        raise OutputError(
            f"{shown}: {anc} is a file, so nothing can be created under it; choose another path"
        )
    return anc


def read_marker(folder: PathLike) -> dict[str, Any] | None:
    """The marker of an output folder, or None if it has none.

    Raises:
      OutputError: the marker exists but is unreadable or not ours.
    """
    p = Path(folder) / MARKER_NAME
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise OutputError(
            f"{folder}: its {MARKER_NAME} is unreadable ({e}); choose another folder or pass "
            "--force"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise OutputError(
            f"{folder}: its {MARKER_NAME} is not an ifvit marker; choose another folder or pass "
            "--force"
        )
    return data


def _created_by() -> str:
    try:
        from importlib.metadata import version

        return f"ifvit-data {version('ifvit-data')}"
    except Exception:  # noqa: BLE001 - metadata missing in a source checkout
        return "ifvit-data"


def check_output_dir(
    path: PathLike,
    kind: str,
    *,
    inputs: Iterable[PathLike] = (),
    force: bool = False,
    resume: bool = True,
) -> dict[str, Any] | None:
    """The checks of `claim_output_dir` alone (same arguments), creating nothing: a command runs
    it before any slow work (loading a model), so a refusal comes at once. Returns the folder's
    marker (None if it has none or does not exist yet).

    Raises:
      OutputError: one line naming the path, the problem and what to do.
    """
    if not kind or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", kind):
        raise ValueError(f"kind must be a short lower-case name, got {kind!r}")
    out = _resolve(path)
    _check_inputs(out, inputs, what="folder", folder=True)
    anc = _check_location(out, path)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{path}: exists and is a file; give a folder path")
    marker: dict[str, Any] | None = None
    if out.is_dir():
        try:
            marker = read_marker(out)
        except OutputError:
            if not force:
                raise
            marker = None
        others = [e for e in os.listdir(out) if e != MARKER_NAME and not is_temp_name(e)]
        if marker is not None and int(marker.get("format_version", 0)) > MARKER_FORMAT_VERSION:
            if not force:
                raise OutputError(
                    f"{path}: was written by a newer ifvit (marker version "
                    f"{marker.get('format_version')}); upgrade ifvit or choose another folder"
                )
            marker = None
        if marker is None and others and not force:
            raise OutputError(
                f"{path}: is not empty and is not an ifvit {kind} output (no {MARKER_NAME}); "
                "choose a new or empty folder, or pass --force to write into it (other files are "
                "kept)"
            )
        if marker is not None and marker["kind"] != kind and not force:
            raise OutputError(
                f"{path}: holds an ifvit {marker['kind']} output, not {kind}; choose another "
                "folder or pass --force"
            )
        if marker is not None and marker["kind"] == kind and not resume and others and not force:
            raise OutputError(
                f"{path}: holds an earlier {kind} output; choose another folder or pass --force "
                "to overwrite it"
            )
    else:
        _probe_writable(anc, Path(path))
    return marker


def claim_output_dir(
    path: PathLike,
    kind: str,
    *,
    inputs: Iterable[PathLike] = (),
    force: bool = False,
    resume: bool = True,
) -> Path:
    """Checks an output folder before any work, creates it and marks it as an output of `kind`.

    Accepted: a missing or empty folder; a folder with a marker of the same `kind` (a resumed or
    repeated run; with `resume=False` only if it holds nothing but the marker, or with `force`);
    anything else only with `force` (then the marker is (re)written as `kind`; no file is deleted).
    Stale temp files of our pattern left by a killed run are removed (`remove_stale_temps`).

    Args:
      path: the output folder.
      kind: what is written there (recorded in the marker): `"synth"`, `"shards"`, `"demo"`,
        `"bundle-dense"`, `"bundle-match"`, `"gallery"` (`ifvit enroll`).
      inputs: the command's input files/folders; the output may be none of them, nor inside one,
        nor contain one (even with `force`).
      force: take over a non-empty folder that is not an output of this kind.
      resume: accept an existing output of the same kind (False: refuse it unless `force`).

    Returns:
      The resolved folder path.

    Raises:
      OutputError: one line naming the path, the problem and what to do.
    """
    marker = check_output_dir(path, kind, inputs=inputs, force=force, resume=resume)
    out = _resolve(path)
    same = marker is not None and marker["kind"] == kind
    if same and int(marker.get("format_version", 0)) == MARKER_FORMAT_VERSION:
        _probe_writable(out, Path(path))  # a rerun leaves the marker (and its mtime) untouched
    else:
        created: list[Path] = []
        try:
            for d in reversed([out, *out.parents]):
                if not d.exists():
                    d.mkdir()
                    created.append(d)
            content = {
                "kind": kind,
                "format_version": MARKER_FORMAT_VERSION,
                "created_by": str(marker.get("created_by")) if same and marker else _created_by(),
            }
            text = json.dumps(content, indent=1, sort_keys=True) + "\n"
            atomic_write_text(out / MARKER_NAME, text)
        except OSError as e:
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise OutputError(
                f"{path}: cannot be written ({e.strerror or e}); choose a writable location"
            ) from None
    remove_stale_temps(out)
    return out


class FolderLock:
    """An exclusive advisory lock on a folder (`flock` on the folder itself: no lock file).

    Held until `release()` or until the object is garbage-collected; the kernel drops it when the
    process dies, so a lock of a killed process never needs recovering. POSIX only; elsewhere it
    locks nothing.

    Raises:
      OutputError: another process (or another lock in this one) holds the folder.
    """

    def __init__(self, folder: PathLike, what: str = "folder"):
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"{folder}: another process is writing this {what} right now (an `ifvit` run "
                "still going?); wait for it to finish, or choose another folder"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __del__(self) -> None:
        self.release()


@contextlib.contextmanager
def claimed_output_dir(
    path: PathLike,
    kind: str,
    *,
    inputs: Iterable[PathLike] = (),
    force: bool = False,
    resume: bool = True,
) -> Iterator[Path]:
    """`claim_output_dir` for the duration of a block that fills the folder.

    If the block raises (KeyboardInterrupt included) and the folder did not exist before the claim,
    the folder is removed again when it holds nothing but the marker and temp files of ours, and so
    are the parent folders the claim created, if empty (a failed first run leaves no new folder).
    Folders that existed are left as they are (minus this run's temp files, which the writers
    remove themselves).
    """
    target = _resolve(path)
    new_dirs = [d for d in (target, *target.parents) if not d.exists()]  # created by the claim
    out = claim_output_dir(path, kind, inputs=inputs, force=force, resume=resume)
    try:
        yield out
    except BaseException:
        if new_dirs:
            _release(out)
            for d in new_dirs[1:]:  # parents made on the way, innermost first, if still empty
                try:
                    d.rmdir()
                except OSError:
                    break
        raise


def _release(out: Path) -> None:
    """Removes a folder this run created, if it holds only our marker and temp files."""
    try:
        entries = os.listdir(out)
    except OSError:
        return
    if any(e != MARKER_NAME and not is_temp_name(e) for e in entries):
        return
    for e in entries:
        _remove(out / e)
    with contextlib.suppress(OSError):
        out.rmdir()


def check_output_file(
    path: PathLike, *, inputs: Iterable[PathLike] = (), force: bool = False
) -> Path:
    """Checks a single output file before any work; removes stale temp siblings of it.

    Refused: a path that is an input (same path, or the same file through a link), an existing
    folder, a path under a file, an unwritable location, and an existing file unless `force`
    (which allows it to be replaced atomically when the command writes it). Nothing is created.

    Args:
      path: the output file.
      inputs: the command's input files/folders.
      force: allow replacing an existing file.

    Returns:
      The resolved path.

    Raises:
      OutputError: one line naming the path, the problem and what to do.
    """
    out = _resolve(path)
    _check_inputs(out, inputs, what="file name", folder=False)
    anc = _check_location(out, path)
    if out.is_dir():
        raise OutputError(f"{path}: is a folder; give a file path")
    if out.exists() and not force:
        raise OutputError(
            f"{path}: already exists; choose another name or pass --force to replace it"
        )
    if out.exists() and not out.stat().st_mode & 0o222:
        mode = stat.filemode(out.stat().st_mode)
        raise OutputError(
            f"{path}: is read-only ({mode}); make it writable to replace it, or choose another name"
        )
    _probe_writable(anc if anc != out else out.parent, Path(path))
    if out.parent.is_dir():
        remove_stale_temps(out.parent, recursive=False, name=out.name)
    return out
