"""`convert_command` (the work behind `ifvit convert`): summary, --verify against kornia, skip message."""

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


def test_verify_skipped_without_kornia(tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kornia", None)  # as if not installed
    lines: list[str] = []
    assert (
        convert_command(
            tiny_ckpt, tmp_path / "t.npz", preset="tiny", verify=True, echo=lines.append
        )
        == 0
    )
    assert (
        lines[-1]
        == "verify: skipped, kornia (the PyTorch reference) is not installed: pip install kornia"
    )


def test_unknown_preset_is_one_line(tiny_ckpt, tmp_path):
    with pytest.raises(ConversionError, match=r"^--preset: unknown preset 'huge'"):
        convert_command(tiny_ckpt, tmp_path / "x.safetensors", preset="huge")
    assert list(tmp_path.iterdir()) == []


def test_bad_output_suffix(tiny_ckpt, tmp_path):
    with pytest.raises(ConversionError, match=r"output must end in .safetensors or .npz"):
        convert_command(tiny_ckpt, tmp_path / "x.pt", preset="tiny")
    assert list(tmp_path.iterdir()) == []
