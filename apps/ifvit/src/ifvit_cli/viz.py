"""Figures people would rather look at than read: match lines, training curves, contact sheets.

matplotlib with the Agg backend (no display needed); every writer is atomic (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure_atomic(fig, path: str | Path, dpi: int = 120) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _plt().close(fig)
    return path


def plot_matches(
    image0: np.ndarray,
    image1: np.ndarray,
    pts0: np.ndarray,
    pts1: np.ndarray,
    conf: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    correct: np.ndarray | None = None,
) -> Path:
    """Side-by-side images with one line per match, coloured by confidence (viridis).

    image0, image1: [H, W] or [H, W, 1] in [0, 1]; pts0, pts1: [M, 2] (x, y) pixels; conf: [M].
    correct: optional [M] bool; wrong matches are then drawn red and dashed.
    """
    plt = _plt()
    a = np.squeeze(image0)
    b = np.squeeze(image1)
    h = max(a.shape[0], b.shape[0])
    gap = 8
    canvas = np.ones((h, a.shape[1] + gap + b.shape[1]), np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] + gap :] = b
    off = a.shape[1] + gap
    fig, ax = plt.subplots(figsize=(8, 8 * h / canvas.shape[1] + 0.6))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    cmap = plt.get_cmap("viridis")
    order = np.argsort(conf)
    for k in order:
        bad = correct is not None and not bool(correct[k])
        ax.plot([pts0[k, 0], pts1[k, 0] + off], [pts0[k, 1], pts1[k, 1]],
                color="red" if bad else cmap(float(conf[k])), lw=0.8,
                ls="--" if bad else "-", alpha=0.85)
        ax.plot([pts0[k, 0], pts1[k, 0] + off], [pts0[k, 1], pts1[k, 1]], "o",
                ms=1.5, color="red" if bad else cmap(float(conf[k])))
    ax.set_axis_off()
    n = len(conf)
    extra = "" if correct is None else f", {int(np.sum(correct))} correct"
    ax.set_title(f"{title}  ({n} matches{extra}; colour = confidence)".strip(), fontsize=9)
    return save_figure_atomic(fig, path)
