"""Tests of `ifvit synth` (tiny sets; no JAX)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ifvit_cli.main import main


def test_synth_writes_dataset(tmp_path, capsys) -> None:
    out = tmp_path / "ds"
    sheet = tmp_path / "sheet.png"
    code = main([
        "synth", "--out", str(out), "--fingers", "2", "--impressions", "2", "--seed", "5",
        "--size", "128x112", "--workers", "1", "--contact-sheet", str(sheet),
    ])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [".ifvit-output.json", "1_1.png", "1_2.png", "2_1.png", "2_2.png",
                     "manifest.json"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["seed"] == 5 and man["config"]["size"] == [128, 112]
    assert len(man["images"]) == 4
    assert sheet.is_file()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synth: 4 images")
    # same flags again: idempotent, exit 0
    assert main([
        "synth", "--out", str(out), "--fingers", "2", "--impressions", "2", "--seed", "5",
        "--size", "128x112", "--workers", "1",
    ]) == 0
    # another seed into the same folder: refused, nothing changed
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main([
        "synth", "--out", str(out), "--fingers", "2", "--impressions", "2", "--seed", "6",
        "--size", "128x112",
    ]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different synthetic dataset" in err[0] and "--force" in err[0]
    # the contact sheet is not replaced without --force either
    sheet_bytes = sheet.read_bytes()
    assert main([
        "synth", "--out", str(tmp_path / "ds2"), "--fingers", "1", "--impressions", "1",
        "--seed", "5", "--size", "64x64", "--contact-sheet", str(sheet),
    ]) == 2
    assert "already exists" in capsys.readouterr().err and not (tmp_path / "ds2").exists()
    assert sheet.read_bytes() == sheet_bytes


def test_synth_never_overwrites_a_users_files(tmp_path, capsys) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "1_1.png").write_bytes(b"my own print")
    flags = ["--fingers", "1", "--impressions", "2", "--seed", "0", "--size", "64x64",
             "--workers", "1"]
    assert main(["synth", "--out", str(mine), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and "--force" in err[0]
    assert sorted(p.name for p in mine.iterdir()) == ["1_1.png"]
    assert (mine / "1_1.png").read_bytes() == b"my own print"
    (mine / "notes.txt").write_text("keep")
    assert main(["synth", "--out", str(mine), *flags, "--force"]) == 0
    assert (mine / "notes.txt").read_text() == "keep"  # --force replaces same names only
    assert (mine / "1_1.png").read_bytes()[:4] == b"\x89PNG"


def test_synth_imports_neither_jax_nor_torch(tmp_path) -> None:
    # a fresh interpreter: other tests in this process may legitimately have imported jax
    code = (
        "import sys; from ifvit_cli.main import main; "
        f"rc = main(['synth', '--out', {str(tmp_path / 'd')!r}, '--fingers', '1', "
        "'--impressions', '1', '--seed', '0', '--size', '64x64', '--workers', '1']); "
        "bad = [m for m in ('jax', 'flax', 'torch') if m in sys.modules]; "
        "assert rc == 0 and not bad, (rc, bad)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert (tmp_path / "d" / "1_1.png").is_file()


@pytest.mark.parametrize(
    "flags",
    [
        ["--fingers", "0", "--impressions", "2", "--seed", "1"],
        ["--fingers", "2", "--impressions", "0", "--seed", "1"],
        ["--fingers", "2", "--impressions", "2", "--seed", "-1"],
        ["--fingers", "2", "--impressions", "2", "--seed", "1", "--size", "300"],
        ["--fingers", "2", "--impressions", "2", "--seed", "1", "--workers", "0"],
    ],
)
def test_synth_bad_flags(tmp_path, capsys, flags) -> None:
    out = tmp_path / "ds"
    assert main(["synth", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ifvit synth: error: --")
    assert not out.exists()


def test_synth_out_is_a_file(tmp_path, capsys) -> None:
    out = tmp_path / "file.txt"
    out.write_text("keep me")
    code = main(["synth", "--out", str(out), "--fingers", "1", "--impressions", "1", "--seed", "0"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "is a file; give a folder path" in err[0]
    assert out.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_synth_realism_plain_is_recorded_and_guarded(tmp_path, capsys) -> None:
    from PIL import Image

    from ifvit_data.synth import SynthConfig

    flags = ["--fingers", "1", "--impressions", "2", "--seed", "4", "--size", "96x96",
             "--workers", "1"]
    plain, full = tmp_path / "plain", tmp_path / "full"
    assert main(["synth", "--out", str(plain), *flags, "--realism", "plain"]) == 0
    assert "realism plain" in capsys.readouterr().out
    man = json.loads((plain / "manifest.json").read_text())
    assert man["config"]["realism"] == "plain"
    assert SynthConfig.from_dict(man["config"]) == SynthConfig.plain(size=(96, 96))
    assert main(["synth", "--out", str(plain), *flags, "--realism", "plain"]) == 0  # a no-op
    before = {p.name: p.read_bytes() for p in plain.iterdir()}
    capsys.readouterr()
    assert main(["synth", "--out", str(plain), *flags, "--realism", "full"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "realism plain" in err[0] and "--force" in err[0], err
    assert {p.name: p.read_bytes() for p in plain.iterdir()} == before
    assert main(["synth", "--out", str(full), *flags]) == 0  # default: full
    assert json.loads((full / "manifest.json").read_text())["config"]["realism"] == "full"
    for name in ("1_1.png", "1_2.png"):
        a = np.asarray(Image.open(plain / name), dtype=np.int16)
        b = np.asarray(Image.open(full / name), dtype=np.int16)
        assert np.abs(a - b).mean() > 10, name
    assert main(["synth", "--out", str(plain), *flags, "--realism", "full", "--force"]) == 0
    assert (plain / "1_1.png").read_bytes() == (full / "1_1.png").read_bytes()


def test_synth_help_explains_realism(capsys) -> None:
    from ifvit_data.synth.config import REALISM_PRESETS

    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    out = capsys.readouterr().out
    assert "--realism {" + ",".join(REALISM_PRESETS) + "}" in out and "--realism plain" in out
