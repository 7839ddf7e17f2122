"""The `ifvit` dispatcher: help, unknown commands, lazy imports, the convert install hint."""

import subprocess
import sys

from ifvit_cli.main import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_each_command_has_help_with_an_example(capsys):
    for name in COMMANDS:
        try:
            main([name, "--help"])
        except SystemExit as e:  # argparse exits 0 after printing help
            assert e.code == 0
        out = capsys.readouterr().out
        assert f"ifvit {name}" in out and "example" in out.lower(), name


def test_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown command 'frobnicate'" in err[0]


def test_help_imports_neither_jax_nor_torch():
    code = ("import sys; from ifvit_cli.main import main; main(['--help']); "
            "bad = [m for m in ('jax', 'torch', 'flax') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_convert_without_torch_says_how_to_install(tmp_path, capsys):
    # The app's own environment has no torch (the `convert` extra is not installed).
    ckpt = tmp_path / "outdoor_ds.ckpt"
    ckpt.write_bytes(b"not really")
    code = main(["convert", "--ckpt", str(ckpt), "--out", str(tmp_path / "w.safetensors")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--extra convert" in err[0] or "ifvit[convert]" in err[0]
    assert not (tmp_path / "w.safetensors").exists()


def test_compile_cache_flag_moves_the_cache_before_any_command(tmp_path):
    code = ("import os, sys; from ifvit_cli.main import main; "
            "code = main(['--compile-cache', sys.argv[1], '--help']); "
            "print(code, os.environ.get('JAX_COMPILATION_CACHE_DIR'))")
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", "IFVIT_COMPILE_CACHE")}
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c")], env=env,
                       capture_output=True, text=True, check=True)
    assert p.stdout.strip().splitlines()[-1] == f"0 {tmp_path / 'c'}"
    assert (tmp_path / "c").is_dir()
    p = subprocess.run([sys.executable, "-c", code, "off"], env=env, capture_output=True, text=True,
                       check=True)
    assert p.stdout.strip().splitlines()[-1] == "0 None"


def test_compile_cache_flag_without_a_value_is_one_line(capsys):
    assert main(["--compile-cache"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--compile-cache needs a folder" in err[0]
