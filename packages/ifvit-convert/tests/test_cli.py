"""`convert_command` (the work behind `ifvit convert`): summary, --verify against kornia (or a
one-line failure when kornia is not there), output checks before any work."""

from __future__ import annotations

import sys

import pytest

from ifvit_convert.cli import convert_command
from ifvit_convert.errors import ConversionError


def test_convert_and_verify_tiny(tiny_ckpt, tmp_path):
    lines: list[str] = []
    code = convert_command(
        tiny_ckpt,
        tmp_path / "tiny",
        preset="tiny",
        verify=True,
        verify_size=(64, 48),
        echo=lines.append,
    )
    text = "\n".join(lines)
    assert code == 0, text
    assert (tmp_path / "tiny.safetensors").is_file() and (
        tmp_path / "tiny.safetensors.json"
    ).is_file()
    assert "wrote " in text and "total" in text and "pos_enc buggy" in text
    assert "verify: kornia LoFTR vs converted JAX model on a random 64x48 pair" in text
    assert "coarse layer 1" in text and "conf_matrix" in text
    assert "verify: OK" in text


@pytest.mark.parametrize("broken", ["missing", "broken install"])
def test_verify_without_kornia_fails_before_writing(tiny_ckpt, tmp_path, monkeypatch, broken):
    if broken == "missing":
        monkeypatch.setitem(sys.modules, "kornia", None)  # `import kornia` raises ImportError
    else:
        monkeypatch.setitem(sys.modules, "kornia.feature", None)
    lines: list[str] = []
    with pytest.raises(ConversionError) as e:
        convert_command(tiny_ckpt, tmp_path / "t.npz", preset="tiny", verify=True,
                        echo=lines.append)
    msg = str(e.value)
    assert msg.startswith("--verify needs kornia") and "\n" not in msg
    assert "pip install 'ifvit-convert[verify]'" in msg and "uv sync --extra convert" in msg
    assert lines == [] and list(tmp_path.iterdir()) == []  # nothing converted, nothing written


def test_existing_output_needs_force(tiny_ckpt, tmp_path):
    out = tmp_path / "w.safetensors"
    assert convert_command(tiny_ckpt, out, preset="tiny", echo=lambda _s: None) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for target in (out, tmp_path / "w"):  # "w" means w.safetensors too
        with pytest.raises(ConversionError, match="already exists; .*--force"):
            convert_command(tiny_ckpt, target, preset="tiny", echo=lambda _s: None)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    out.unlink()  # an orphan sidecar is protected as well
    with pytest.raises(ConversionError, match=r"w.safetensors.json: already exists"):
        convert_command(tiny_ckpt, out, preset="tiny", echo=lambda _s: None)
    assert convert_command(tiny_ckpt, out, preset="tiny", force=True, echo=lambda _s: None) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors", "w.safetensors.json"]


def test_output_is_checked_before_reading(tmp_path):
    ckpt = tmp_path / "model.npz"  # a valid output suffix, and the input
    ckpt.write_bytes(b"not even a checkpoint")
    for force in (False, True):
        with pytest.raises(ConversionError, match="is the input"):
            convert_command(ckpt, ckpt, force=force)
    (tmp_path / "f").write_text("a file")
    with pytest.raises(ConversionError, match="is a file, so nothing can be created under it"):
        convert_command(ckpt, tmp_path / "f" / "w.safetensors", force=True)
    # all refused before the (unreadable) checkpoint was read: no "not a PyTorch checkpoint" error
    assert ckpt.read_bytes() == b"not even a checkpoint"


def test_unknown_preset_is_one_line(tiny_ckpt, tmp_path):
    with pytest.raises(ConversionError, match=r"^--preset: unknown preset 'huge'"):
        convert_command(tiny_ckpt, tmp_path / "x.safetensors", preset="huge")
    assert list(tmp_path.iterdir()) == []


def test_bad_output_suffix(tiny_ckpt, tmp_path):
    with pytest.raises(ConversionError, match=r"output must end in .safetensors or .npz"):
        convert_command(tiny_ckpt, tmp_path / "x.pt", preset="tiny")
    assert list(tmp_path.iterdir()) == []
