"""JAX's persistent compilation cache for everything that serves or trains a model.

Tracing and compiling the matcher's XLA programs costs a first `ifvit match` most of its time (about
15 s of ~20 s on a 2-core CPU); the compiled programs depend only on the model's shapes, the jax
version and the machine, so they are stored on disk and loaded by every later run.

Where (first that applies):
  1. `JAX_COMPILATION_CACHE_DIR` already set: JAX's own setting is left alone.
  2. `IFVIT_COMPILE_CACHE`: a folder, or `off` (also `0`, `none`, empty) to disable.
  3. `$XDG_CACHE_HOME/ifvit/jax`, by default `~/.cache/ifvit/jax`.

Bounded: JAX evicts the least recently used programs beyond `IFVIT_COMPILE_CACHE_MAX_BYTES`
(default 1 GiB). Safe when several processes share the folder: each entry is written to a
temporary file and renamed, and eviction holds a file lock (the `filelock` package).

Stdlib only: `configure` sets JAX's environment variables, so it must run before `jax` is imported
to take effect through them; if jax is already imported it updates `jax.config` instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "IFVIT_COMPILE_CACHE"
ENV_MAX = "IFVIT_COMPILE_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 1 << 30
_OFF = ("", "0", "off", "none", "false", "no")


def default_dir() -> Path:
    """`$XDG_CACHE_HOME/ifvit/jax` (XDG base directories), else `~/.cache/ifvit/jax`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ifvit" / "jax"


def resolve(setting: str | None = None) -> Path | None:
    """The cache folder for `setting` (a folder or 'off'; None: `IFVIT_COMPILE_CACHE`, else the
    default), or None when disabled."""
    if setting is None:
        setting = os.environ.get(ENV)
        if setting is None:
            return default_dir()
    if setting.strip().lower() in _OFF:
        return None
    return Path(setting).expanduser()


def configure(setting: str | None = None) -> Path | None:
    """Turns the persistent cache on (see the module docstring) and returns its folder, or None.

    `setting` (a folder or 'off') overrides `IFVIT_COMPILE_CACHE`. A `JAX_COMPILATION_CACHE_DIR`
    set by the user or a test runner wins over both unless `setting` is given.
    """
    if setting is None and os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    folder = resolve(setting)
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder = None  # an unwritable cache folder costs speed, never the command
    if folder is None:
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
        if "jax" in sys.modules:
            sys.modules["jax"].config.update("jax_enable_compilation_cache", False)
        return None
    try:
        max_bytes = int(os.environ.get(ENV_MAX, DEFAULT_MAX_BYTES))
    except ValueError:
        max_bytes = DEFAULT_MAX_BYTES
    values = {
        "jax_compilation_cache_dir": str(folder),
        # every program: the matcher's small helper programs add up on a warm run too
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_compilation_cache_max_size": max_bytes,
    }
    for name, value in values.items():
        os.environ[name.upper()] = str(value)
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        jax.config.update("jax_enable_compilation_cache", True)
        for name, value in values.items():
            jax.config.update(name, value)
    return folder
