"""Evaluation figures: valid PNGs of the requested size, curves actually drawn, atomic writes,
clear errors for bad input, no pyplot state."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from ifvit_train.evaluation import plots
from ifvit_train.evaluation.metrics import cmc


def _scores(seed: int, shift: float, ng: int = 300, ni: int = 500):
    rng = np.random.default_rng(seed)
    return rng.normal(shift, 1.0, ng), rng.normal(0.0, 1.0, ni)


def _open_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()  # CRCs and structure
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == size
        rgb = np.asarray(im.convert("RGB"))
    assert not list(path.parent.glob(".*.tmp")), "temporary file left behind"
    return rgb


def _has_colour(rgb: np.ndarray, colour: str, min_pixels: int = 200) -> bool:
    """At least min_pixels pixels within a few levels of a matplotlib colour (a drawn curve)."""
    target = np.round(np.array(to_rgb(colour)) * 255)
    close = np.all(np.abs(rgb.astype(int) - target) <= 6, axis=-1)
    return int(close.sum()) >= min_pixels


@pytest.mark.parametrize("scale", ["probit", "log"])
def test_det_draws_every_system(tmp_path, scale):
    systems = {"trained": _scores(0, 3.0), "untrained": _scores(1, 0.2),
               "Module 1 only": _scores(2, 1.5)}
    out = plots.plot_det(systems, tmp_path / "det.png", scale=scale, size=(640, 560))
    assert out == tmp_path / "det.png"
    rgb = _open_png(out, (640, 560))
    assert all(_has_colour(rgb, f"C{k}") for k in range(3))
    assert not _has_colour(rgb, "C3")  # no fourth curve


def test_roc_hist_cmc_training_pngs(tmp_path):
    gen, imp = _scores(3, 2.0)
    gen[:4] = np.nan  # failed pairs
    out = plots.plot_roc({"a": (gen, imp), "b": _scores(4, 1.0)}, tmp_path / "roc.png",
                         size=(700, 500))
    rgb = _open_png(out, (700, 500))
    assert _has_colour(rgb, "C0") and _has_colour(rgb, "C1")

    out = plots.plot_score_histograms(gen, imp, tmp_path / "sub" / "hist.png",
                                      thresholds={"EER": 1.0, "bad": float("inf")},
                                      size=(600, 400))
    rgb = _open_png(out, (600, 400))
    assert _has_colour(rgb, "C0", 20) and _has_colour(rgb, "C1", 20)

    labels = np.arange(20)
    sim = np.random.default_rng(5).normal(size=(25, 20))
    probes = np.concatenate([labels, [90, 91, 92, 93, 94]])  # 5 identities absent
    sim[np.arange(20), labels] += 2.0
    out = plots.plot_cmc({"template": cmc(sim, probes, labels, 10)}, tmp_path / "cmc.png",
                         size=(500, 400))
    assert _has_colour(_open_png(out, (500, 400)), "C0", 50)

    steps = range(0, 500, 5)
    out = plots.plot_training_curves(
        {"loss": [(s, 2.0 / (1 + s)) for s in steps], "acc": [(s, s / 500) for s in steps]},
        tmp_path / "train.png", validation={"loss": [(0, 2.1), (250, 0.01)], "EER": [(0, 0.4)]},
        log_y={"loss"}, size=(900, 600))
    rgb = _open_png(out, (900, 600))
    assert _has_colour(rgb, "C0") and _has_colour(rgb, "C3", 20)


def test_overwrite_is_atomic_and_bad_input_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "det.png"
    path.write_bytes(b"previous figure")
    with pytest.raises(ValueError, match="'trained'.*genuine scores is empty"):
        plots.plot_det({"trained": ([], [0.1])}, path)
    assert path.read_bytes() == b"previous figure"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.plot_det({"trained": _scores(0, 2.0)}, path)
    assert path.read_bytes() == b"previous figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.png"]
    monkeypatch.undo()
    old_umask = os.umask(0o022)
    try:
        plots.plot_det({"trained": _scores(0, 2.0)}, path, size=(500, 450))
    finally:
        os.umask(old_umask)
    _open_png(path, (500, 450))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the umask's, not a temp file's 0600


@pytest.mark.parametrize("call, match", [
    (lambda p: plots.plot_det({}, p), "at least one system"),
    (lambda p: plots.plot_det({"x": ([0.1], [])}, p), "'x'.*impostor scores is empty"),
    (lambda p: plots.plot_det({"x": [0.1, 0.2, 0.3]}, p), "'x'.*\\(genuine, impostor\\)"),
    (lambda p: plots.plot_det({"x": ([1.0], [0.0])}, p, scale="linear"), "probit"),
    (lambda p: plots.plot_roc({"x": ([], [])}, p), "'x'.*empty"),
    (lambda p: plots.plot_score_histograms([], [0.1], p), "genuine scores is empty"),
    (lambda p: plots.plot_score_histograms([np.nan], [np.nan], p), "every pair failed"),
    (lambda p: plots.plot_cmc({}, p), "at least one system"),
    (lambda p: plots.plot_cmc({"x": [0.5, 0.9]}, p), "CMCResult"),
    (lambda p: plots.plot_training_curves({"loss": []}, p), "'loss' is empty"),
    (lambda p: plots.plot_training_curves({"loss": [1.0, 2.0]}, p), "\\(step, value\\)"),
    (lambda p: plots.plot_training_curves({}, p), "no series"),
    (lambda p: plots.plot_det({"x": ([1.0], [0.0])}, p, size=(10, 10)), "pixels"),
])
def test_bad_inputs_raise_clear_value_errors(tmp_path, call, match):
    path = tmp_path / "out.png"
    with pytest.raises(ValueError, match=match):
        call(path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_path_must_be_a_png_file(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        plots.plot_det({"x": ([1.0], [0.0])}, tmp_path / "det.jpg")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match="directory"):
        plots.plot_det({"x": ([1.0], [0.0])}, tmp_path / "dir.png")


def test_no_pyplot_and_no_global_state(tmp_path):
    # rcParams._get reads raw values: rcParams["backend"] would itself import pyplot
    code = (
        "import sys, matplotlib, numpy as np; from ifvit_train.evaluation import plots;"
        "rc = lambda: repr({k: matplotlib.rcParams._get(k) for k in matplotlib.rcParams});"
        "before = rc();"
        "s = (np.arange(5.0) + 2, np.arange(5.0));"
        f"plots.plot_det({{'a': s}}, {str(tmp_path / 'a.png')!r});"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported';"
        "assert rc() == before, 'rcParams changed';"
        "assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
