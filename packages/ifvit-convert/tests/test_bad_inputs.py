"""Bad input (issue point 6): one clear line naming the file and what to do, non-zero exit, nothing
written.

Each case runs through `ifvit_convert.cli.convert_command` and, when the workspace's `ifvit` app
sources are present, through `ifvit convert` itself (exit code 2, one line on stderr).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ifvit_convert.cli import convert_command
from ifvit_convert.errors import ConversionError

APP_SRC = Path(__file__).resolve().parents[3] / "apps" / "ifvit" / "src"


class Opaque:
    """A non-tensor Python object; weights_only=True refuses to unpickle it."""


def _missing(tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]) -> Path:
    return tmp / "does_not_exist.ckpt"


def _truncated(tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]) -> Path:
    data = ckpts["paper"].read_bytes()
    path = tmp / "outdoor_ds_truncated.ckpt"
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_file(tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]) -> Path:
    path = tmp / "README.ckpt"
    path.write_text("these are not the weights you are looking for\n")
    return path


def _list_pickle(tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]) -> Path:
    import torch

    path = tmp / "numbers.pt"
    torch.save([torch.zeros(3), torch.ones(2)], path)
    return path


def _custom_objects(
    tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]
) -> Path:
    import torch

    path = tmp / "with_objects.ckpt"
    torch.save(
        {"state_dict": {"matcher.backbone.conv1.weight": torch.zeros(1)}, "hparams": Opaque()}, path
    )
    return path


def _torchvision_resnet(
    tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]
) -> Path:
    """A torchvision-style ResNet-18 state dict (the earlier JAX attempt's backbone): no LoFTR
    keys."""
    rng = np.random.default_rng(0)
    sd = {
        "conv1.weight": rng.normal(size=(64, 3, 7, 7)).astype(np.float32),
        "bn1.weight": np.ones(64, np.float32),
        "bn1.bias": np.zeros(64, np.float32),
        "bn1.running_mean": np.zeros(64, np.float32),
        "bn1.running_var": np.ones(64, np.float32),
        "layer1.0.conv1.weight": rng.normal(size=(64, 64, 3, 3)).astype(np.float32),
        "fc.weight": rng.normal(size=(1000, 512)).astype(np.float32),
        "fc.bias": np.zeros(1000, np.float32),
    }
    return savers["bare"](tmp / "resnet18.pth", sd)


def _other_size_loftr(
    tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]
) -> Path:
    return ckpts["tiny"]  # kornia LoFTR with the tiny preset's dimensions, into the paper preset


def _optimal_transport(
    tmp: Path, ckpts: dict[str, Path], savers: dict[str, Callable[..., Path]]
) -> Path:
    import torch

    ck = torch.load(ckpts["paper"], weights_only=True)
    ck["state_dict"]["matcher.coarse_matching.bin_score"] = torch.tensor(1.0)
    path = tmp / "outdoor_ot.ckpt"
    torch.save(ck, path)
    return path


CASES = {
    "missing file": (_missing, r"no such file; pass the path of a LoFTR checkpoint"),
    "truncated file": (_truncated, r"truncated or corrupt .*; download or copy it again"),
    "text file": (_text_file, r"not a PyTorch checkpoint .*; pass a LoFTR \.ckpt"),
    "pickled list": (
        _list_pickle,
        r"not a LoFTR checkpoint \(it holds a list.*; pass a LoFTR \.ckpt",
    ),
    "pickled objects": (
        _custom_objects,
        r"weights_only=True\) refused it .*re-save its state_dict",
    ),
    "torchvision resnet": (
        _torchvision_resnet,
        r"not a LoFTR checkpoint: no 'backbone.conv1.weight' key",
    ),
    "LoFTR of another size": (
        _other_size_loftr,
        r"shape mismatches: backbone.conv1.weight \[8, 1, 7, 7\] \(want \[128, 1, 7, 7\]\).*a "
        r"LoFTR of other dimensions",
    ),
    "optimal transport": (
        _optimal_transport,
        r"optimal-transport \(Sinkhorn\) .*coarse_matching.bin_score.*convert a "
        r"dual-softmax checkpoint",
    ),
}


@pytest.fixture(scope="module")
def ckpts(paper_ckpt: Path, tiny_ckpt: Path) -> dict[str, Path]:
    return {"paper": paper_ckpt, "tiny": tiny_ckpt}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_nothing_written(
    case, tmp_path, out_dir, ckpts, savers, capsys, monkeypatch
):
    make, expected = CASES[case]
    src = make(tmp_path, ckpts, savers)
    out = out_dir / "loftr.safetensors"

    with pytest.raises(ConversionError) as e:
        convert_command(src, out)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{src}: "), msg
    assert re.search(expected, msg), msg
    assert list(out_dir.iterdir()) == []  # neither output nor temp files

    if not APP_SRC.is_dir():  # ifvit-convert tested outside the workspace checkout
        pytest.skip("apps/ifvit sources not present")
    monkeypatch.syspath_prepend(str(APP_SRC))
    main = importlib.import_module("ifvit_cli.main").main
    capsys.readouterr()
    code = main(["convert", "--ckpt", str(src), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"ifvit convert: error: {src}: "), err
    assert list(out_dir.iterdir()) == []


def test_app_without_the_convert_extra(monkeypatch, tmp_path, capsys):
    """`ifvit convert` without ifvit-convert/torch installed: one line telling how to install it."""
    if not APP_SRC.is_dir():
        pytest.skip("apps/ifvit sources not present")
    monkeypatch.syspath_prepend(str(APP_SRC))
    monkeypatch.setitem(sys.modules, "ifvit_convert.cli", None)  # as if not installed
    main = importlib.import_module("ifvit_cli.main").main
    code = main(["convert", "--ckpt", str(tmp_path / "x.ckpt"), "--out", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "uv sync --extra convert" in err and "pip install 'ifvit[convert]'" in err


def test_app_with_convert_but_without_torch(monkeypatch, paper_ckpt, out_dir, capsys):
    """ifvit-convert present but torch missing: one line naming the file and the extra to
    install."""
    if not APP_SRC.is_dir():
        pytest.skip("apps/ifvit sources not present")
    monkeypatch.syspath_prepend(str(APP_SRC))
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    main = importlib.import_module("ifvit_cli.main").main
    code = main(["convert", "--ckpt", str(paper_ckpt), "--out", str(out_dir / "w.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(
        f"ifvit convert: error: {paper_ckpt}: reading a PyTorch checkpoint needs torch"
    )
    assert "uv sync --extra convert" in err and "pip install 'ifvit[convert]'" in err
    assert list(out_dir.iterdir()) == []


def test_app_interrupt_swallowed_by_a_library_writes_nothing(
    monkeypatch, tiny_ckpt, out_dir, capsys, request
):
    """Ctrl-C while JAX builds the model can land in a callback that swallows KeyboardInterrupt
    (jax's gc callback does: "Exception ignored in ..."); the run must still end with 130 and no
    output, instead of writing the file and exiting 0."""
    if not APP_SRC.is_dir():
        pytest.skip("apps/ifvit sources not present")
    import os
    import signal
    import time

    import ifvit_convert.io as io

    original = io.build_model_from_meta

    def swallowing(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            pass  # swallowed, as by jax's _xla_gc_callback
        return original(*args, **kwargs)

    monkeypatch.setattr(io, "build_model_from_meta", swallowing)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a foreground run
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    monkeypatch.syspath_prepend(str(APP_SRC))
    main = importlib.import_module("ifvit_cli.main").main
    out = out_dir / "w.safetensors"
    code = main(["convert", "--ckpt", str(tiny_ckpt), "--out", str(out), "--preset", "tiny"])
    err = capsys.readouterr().err
    assert code == 130, err
    assert "ifvit convert: interrupted (SIGINT)" in err
    assert list(out_dir.iterdir()) == []
