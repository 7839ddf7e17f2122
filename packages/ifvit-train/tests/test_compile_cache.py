"""The persistent compilation cache: where it goes, how it is turned off, and that a process
really stores its compiled programs there (subprocesses: the setting acts before jax is
imported)."""

import os
import subprocess
import sys
from pathlib import Path

from ifvit_train.serving import compile_cache

PROGRAM = ("import sys; from ifvit_train.serving import compile_cache; "
           "print(compile_cache.configure(sys.argv[1] if len(sys.argv) > 1 else None)); "
           "import jax, jax.numpy as jnp; jax.jit(lambda x: jnp.sin(x) * "
           "3)(jnp.ones(7)).block_until_ready()")


def _run(env_extra: dict, *args: str) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", compile_cache.ENV)}
    env.update(env_extra)
    p = subprocess.run([sys.executable, "-c", PROGRAM, *args], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.strip()


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*-cache")) if folder.is_dir() else []


def test_default_is_the_xdg_cache_folder(tmp_path):
    printed = _run({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    folder = tmp_path / "xdg" / "ifvit" / "jax"
    assert printed == str(folder)
    assert _entries(folder)  # the jitted program was stored


def test_environment_variable_moves_it_and_off_disables_it(tmp_path):
    moved = tmp_path / "moved"
    assert _run({"XDG_CACHE_HOME": str(tmp_path / "xdg"),
                 compile_cache.ENV: str(moved)}) == str(moved)
    assert _entries(moved) and not (tmp_path / "xdg").exists()
    assert _run({"XDG_CACHE_HOME": str(tmp_path / "xdg2"), compile_cache.ENV: "off"}) == "None"
    assert not (tmp_path / "xdg2").exists()


def test_explicit_setting_wins_and_jax_own_variable_is_respected(tmp_path):
    # an explicit folder (the `--compile-cache` flag) beats the environment variable
    assert _run({compile_cache.ENV: str(tmp_path / "env")},
                str(tmp_path / "flag")) == str(tmp_path / "flag")
    assert _entries(tmp_path / "flag") and not (tmp_path / "env").exists()
    # a JAX_COMPILATION_CACHE_DIR chosen by the user (or a test runner) is left alone
    jax_own = tmp_path / "jax-own"
    assert _run({"JAX_COMPILATION_CACHE_DIR": str(jax_own),
                 compile_cache.ENV: str(tmp_path / "x")}) \
        == str(jax_own)
    assert not (tmp_path / "x").exists()


def test_unwritable_folder_disables_instead_of_failing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert _run({}, str(blocker / "jax")) == "None"


def test_resolve():
    assert compile_cache.resolve("off") is None and compile_cache.resolve("0") is None
    assert compile_cache.resolve("~/c") == Path.home() / "c"
