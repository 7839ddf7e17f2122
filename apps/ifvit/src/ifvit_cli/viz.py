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


def plot_curves(curves: dict[str, list[float]], path: str | Path, *, xlabel: str = "step") -> Path:
    """One panel per named curve (e.g. loss, precision, recall)."""
    plt = _plt()
    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        ys = np.asarray(curves[name], float)
        ax.plot(np.arange(1, len(ys) + 1), ys, lw=1)
        if len(ys) >= 10:
            k = max(len(ys) // 20, 2)
            smooth = np.convolve(ys, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(k, len(ys) + 1), smooth, lw=2)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure_atomic(fig, path)


def plot_score_histograms(genuine: np.ndarray, impostor: np.ndarray, path: str | Path, *,
                          title: str = "") -> Path:
    """Overlaid genuine / impostor score histograms."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    lo = float(min(np.min(genuine), np.min(impostor)))
    hi = float(max(np.max(genuine), np.max(impostor)))
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 30)
    ax.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor ({len(impostor)})")
    ax.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine ({len(genuine)})")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure_atomic(fig, path)
