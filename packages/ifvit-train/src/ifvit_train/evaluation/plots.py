"""Evaluation and training figures as PNG files: DET, ROC, score histograms, CMC, training curves.

Figures are built on `matplotlib.figure.Figure` and rendered by the Agg canvas; pyplot is never
imported, so no global figure registry or backend choice leaks into the caller. Every writer renders
to a temporary sibling of `path` and renames it into place (`os.replace`), so a reader never sees a
half-written file, and returns `path`. Image size is exact: `size=(width, height)` in pixels.

Rates are drawn in percent. On DET and ROC axes a rate of 0 cannot sit on a probit or log scale:
it is drawn on the axis edge at half the resolution of the largest set (0.5 / N) and that tick is
labelled "0".
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping, Sequence
from functools import partial
from pathlib import Path
from statistics import NormalDist

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from numpy.typing import ArrayLike

from ifvit_train.evaluation.metrics import (
    CMCResult,
    error_curve,
    prepare_scores,
    verification_report,
)

__all__ = ["plot_cmc", "plot_det", "plot_roc", "plot_score_histograms", "plot_training_curves"]

_DPI = 120
_TICK_LEVELS = tuple(tuple(p / 100 for p in level) for level in (  # percent, finest first
    (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90, 95,
     98, 99, 99.5, 99.8, 99.9, 99.95, 99.98, 99.99, 99.995, 99.998, 99.999),
    (0.001, 0.01, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90, 95, 98, 99, 99.5, 99.8, 99.9,
     99.99, 99.999),
    (0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90, 95, 98, 99, 99.5, 99.9, 99.99,
     99.999),
    (0.001, 0.01, 0.1, 1, 5, 20, 50, 80, 95, 99, 99.9, 99.99, 99.999),
    (0.001, 0.01, 0.1, 1, 10),
))
_NORMAL = NormalDist()


def _figure(size: tuple[int, int]) -> Figure:
    w, h = size
    if not (isinstance(w, (int, np.integer)) and isinstance(h, (int, np.integer))
            and 100 <= w <= 10000 and 100 <= h <= 10000):
        raise ValueError(f"size must be (width, height) in pixels, 100..10000 each, got {size!r}")
    return Figure(figsize=(w / _DPI, h / _DPI), dpi=_DPI, layout="constrained")


def _check_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: figures are written as PNG; give a path ending in .png")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; give a .png file path")
    return path


def _save(fig: Figure, path: Path) -> Path:
    """Renders `fig` to `path` through the project's one atomic writer
    (`ifvit_data.outputs.atomic_path`: a temp sibling a killed run leaves is swept later)."""
    from ifvit_data.outputs import atomic_path

    with atomic_path(path) as tmp, open(tmp, "xb") as f:  # "xb": the user's umask, not 0600
        fig.savefig(f, format="png", dpi=_DPI)
    return path


def _pct(x: float) -> str:
    """A rate as a short percent label: 0.0005 -> '0.05', 0.2 -> '20'."""
    return f"{100 * x:.4g}"


def _systems(systems: Mapping[str, tuple[ArrayLike, ArrayLike]], what: str):
    """Validates name -> (genuine, impostor) and computes each system's curve and report."""
    if not isinstance(systems, Mapping) or not systems:
        raise ValueError(f"{what}: give at least one system as {{name: (genuine, impostor)}}")
    out = []
    for name, scores in systems.items():
        try:
            genuine, impostor = scores
        except (TypeError, ValueError):
            raise ValueError(f"{what} {name!r}: expected a (genuine, impostor) pair of score "
                             "lists") from None
        try:
            out.append((str(name), error_curve(genuine, impostor),
                        verification_report(genuine, impostor)))
        except ValueError as e:
            raise ValueError(f"{what} {name!r}: {e}") from None
    return out


def _rate_axis(ax, axis: str, lo: float, hi: float, fwd) -> None:
    """Percent ticks on a probit or log axis from lo (labelled '0') to hi ('100' if hi = 1 - lo).

    Uses the finest tick set whose neighbours are at least 1/18 of the axis span apart.
    """
    top = hi >= 1.0 - 1.5 * lo
    span = float(fwd(hi) - fwd(lo))
    for level in _TICK_LEVELS:
        pos, labels = [float(fwd(lo))], ["0"]
        for t in level:
            x = float(fwd(t))
            if pos[0] + span / 18 <= x and (x <= fwd(hi) - span / 18 if top else t <= hi):
                pos.append(x)
                labels.append(_pct(t))
        if top:
            pos.append(float(fwd(hi)))
            labels.append("100")
        if min(np.diff(pos), default=span) >= span / 18:
            break
    getattr(ax, f"set_{axis}ticks")(pos, labels)
    getattr(ax, f"set_{axis}lim")(fwd(lo), fwd(hi))


def _probit(p: ArrayLike) -> np.ndarray:
    """Normal deviate (inverse standard normal CDF) of rates in (0, 1)."""
    return np.vectorize(_NORMAL.inv_cdf, otypes=[float])(np.asarray(p, float))


def plot_det(
    systems: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | os.PathLike[str],
    *,
    title: str = "DET curve",
    scale: str = "probit",
    size: tuple[int, int] = (900, 760),
) -> Path:
    """DET curves (FNMR against FMR) of one or more systems, each with its EER point marked.

    Args:
      systems: name -> (genuine `[Ng]`, impostor `[Ni]`) scores (NaN = failed pair), e.g.
        {"trained": ..., "untrained": ..., "Module 1 only": ...}; one curve each, in a legend.
      path: the .png to write.
      title: figure title.
      scale: "probit" (normal-deviate axes, the DET convention) or "log".
      size: (width, height) in pixels.

    Returns:
      `path`.
    """
    path = _check_path(path)
    if scale not in ("probit", "log"):
        raise ValueError(f'scale must be "probit" or "log", got {scale!r}')
    rows = _systems(systems, "DET curve")
    n_max = max(max(c.n_genuine, c.n_impostor) for _, c, _ in rows)
    lo = 0.5 / n_max
    worst = max(r.eer for _, _, r in rows)
    hi = 0.5 if worst < 0.2 else 1.0 - lo
    fwd = _probit if scale == "probit" else np.log10

    def place(p: np.ndarray) -> np.ndarray:
        return fwd(np.clip(p, lo, 1.0 - lo))

    fig = _figure(size)
    ax = fig.add_subplot()
    diag = np.array([lo, hi])
    ax.plot(place(diag), place(diag), color="0.6", lw=0.8, ls=":", label="FMR = FNMR")
    for k, (name, curve, rep) in enumerate(rows):
        color = f"C{k}"
        ax.plot(place(curve.fmr), place(curve.fnmr), color=color, lw=1.8,
                label=f"{name}: EER {100 * rep.eer:.2f}%"
                f"  ({rep.n_genuine} gen / {rep.n_impostor} imp"
                + (f", {rep.failed} failed" if rep.failed else "") + ")")
        e = place(np.array([rep.eer]))
        ax.plot(e, e, "o", ms=7, mfc="white", mec=color, mew=2)
    _rate_axis(ax, "x", lo, hi, fwd)
    _rate_axis(ax, "y", lo, hi, fwd)
    ax.set_xlabel("False Match Rate, FMR (%)")
    ax.set_ylabel("False Non-Match Rate, FNMR (%)")
    ax.set_title(f"{title}\n(circles: EER points; accept if score \u2265 threshold)", fontsize=11)
    ax.grid(alpha=0.35)
    ax.set_aspect("equal", adjustable="box")
    ax.legend(loc="best", fontsize=8.5, framealpha=0.9)
    return _save(fig, path)


def plot_roc(
    systems: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | os.PathLike[str],
    *,
    title: str = "ROC curve",
    size: tuple[int, int] = (900, 700),
) -> Path:
    """ROC curves (TAR against FAR on a log axis) with TAR@FAR=0.1% in the legend.

    Args:
      systems: name -> (genuine `[Ng]`, impostor `[Ni]`) scores (NaN = failed pair).
      path: the .png to write.
      title: figure title.
      size: (width, height) in pixels.

    Returns:
      `path`.
    """
    path = _check_path(path)
    rows = _systems(systems, "ROC curve")
    lo = 0.5 / max(c.n_impostor for _, c, _ in rows)
    fig = _figure(size)
    ax = fig.add_subplot()
    bottom = 1.0
    for k, (name, curve, rep) in enumerate(rows):
        x = np.log10(np.clip(curve.fmr, lo, 1.0))
        ax.plot(x, 100 * curve.tar, color=f"C{k}", lw=1.8,
                label=f"{name}: TAR {100 * rep.tar_at_far_1e3:.1f}% at FAR 0.1%, "
                f"EER {100 * rep.eer:.2f}%")
        ax.plot(np.log10(max(rep.eer, lo)), 100 * (1 - rep.eer), "o", ms=7, mfc="white",
                mec=f"C{k}", mew=2)
        bottom = min(bottom, 1.0 - rep.zerofmr)  # TAR where FMR reaches 0 (the "0" edge)
    ax.axvline(np.log10(1e-3), color="0.5", lw=0.8, ls="--")
    ax.text(np.log10(1e-3), 0.5, "FAR 0.1% ", transform=ax.get_xaxis_transform(), rotation=90,
            ha="right", va="center", fontsize=8, color="0.35")
    _rate_axis(ax, "x", lo, 1.0, np.log10)
    ax.set_ylim(max(0.0, math.floor(100 * bottom / 10) * 10 - 2), 101)
    ax.set_xlabel("False Accept Rate, FAR = FMR (%, log scale)")
    ax.set_ylabel("True Accept Rate, TAR = 1 \u2212 FNMR (%)")
    ax.set_title(f"{title}\n(circles: EER points)", fontsize=11)
    ax.grid(alpha=0.35)
    ax.legend(loc="best", fontsize=8.5, framealpha=0.9)
    return _save(fig, path)


def plot_score_histograms(
    genuine: ArrayLike,
    impostor: ArrayLike,
    path: str | os.PathLike[str],
    *,
    thresholds: Mapping[str, float] | None = None,
    title: str = "Score distributions",
    bins: int = 40,
    size: tuple[int, int] = (900, 560),
) -> Path:
    """Genuine and impostor score histograms on shared bins, with decision thresholds marked.

    Bar heights are the percent of each set's processed pairs per bin, so sets of different sizes
    compare; failed pairs (NaN) cannot be placed on the score axis and are counted in the legend.

    Args:
      genuine: `[Ng]` genuine scores; impostor: `[Ni]` impostor scores (NaN = failed).
      path: the .png to write.
      thresholds: optional label -> threshold, drawn as vertical lines (e.g. the
        `VerificationReport.thresholds` or a bundle's calibrated ones); non-finite ones skipped.
      title: figure title.
      bins: number of shared bins.
      size: (width, height) in pixels.

    Returns:
      `path`.
    """
    path = _check_path(path)
    gen, gen_failed = prepare_scores(genuine, "genuine scores")
    imp, imp_failed = prepare_scores(impostor, "impostor scores")
    gen_ok, imp_ok = gen[np.isfinite(gen)], imp[np.isfinite(imp)]
    if gen_ok.size + imp_ok.size == 0:
        raise ValueError("every pair failed (all scores NaN): there is no distribution to plot")
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    marks = {str(k): float(v) for k, v in (thresholds or {}).items() if math.isfinite(float(v))}
    both = np.concatenate([gen_ok, imp_ok])
    lo, hi = float(both.min()), float(both.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    fig = _figure(size)
    ax = fig.add_subplot()
    for scores, n_failed, n_total, label, color in (
            (imp_ok, imp_failed, imp.size, "impostor", "C1"),
            (gen_ok, gen_failed, gen.size, "genuine", "C0")):
        if scores.size == 0:
            continue
        text = f"{label} ({n_total} pairs" + (f", {n_failed} failed, not shown" if n_failed
                                               else "") + ")"
        ax.hist(scores, bins=edges, weights=np.full(scores.size, 100.0 / scores.size),
                color=color, alpha=0.45, label=text)
        ax.hist(scores, bins=edges, weights=np.full(scores.size, 100.0 / scores.size),
                histtype="step", color=color, lw=1.5)
    styles = ["--", "-.", ":", (0, (5, 1, 1, 1))]
    for k, (label, t) in enumerate(marks.items()):
        ax.axvline(t, color="0.15", lw=1.2, ls=styles[k % len(styles)],
                   label=f"{label}: t = {t:.4g}")
    ax.set_xlabel("similarity score (accept if score \u2265 t)")
    ax.set_ylabel("pairs per bin (% of the set)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2 if len(marks) < 2 else 3, fontsize=8.5,
               frameon=False)
    return _save(fig, path)


def plot_cmc(
    curves: Mapping[str, CMCResult],
    path: str | os.PathLike[str],
    *,
    title: str = "CMC curve",
    size: tuple[int, int] = (900, 620),
) -> Path:
    """Cumulative match characteristic: identification rate (%) against rank, one line per system.

    Args:
      curves: name -> `metrics.cmc(...)` result (e.g. "template cosine", "re-ranked").
      path: the .png to write.
      title: figure title.
      size: (width, height) in pixels.

    Returns:
      `path`.
    """
    path = _check_path(path)
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("CMC curve: give at least one system as {name: CMCResult}")
    for name, c in curves.items():
        if not isinstance(c, CMCResult) or c.rates.size == 0:
            raise ValueError(f"CMC curve {name!r}: expected a non-empty metrics.CMCResult, "
                             f"got {type(c).__name__}")
    fig = _figure(size)
    ax = fig.add_subplot()
    k_max = max(c.rates.size for c in curves.values())
    bottom = 100.0
    for k, (name, c) in enumerate(curves.items()):
        label = (f"{name}: rank-1 {100 * c.rates[0]:.1f}%"
                 + (f", rank-10 {100 * c.rates[9]:.1f}%" if c.rates.size >= 10 else "")
                 + f"  ({c.n_counted} probes)")
        ax.plot(c.ranks, 100 * c.rates, "-o", ms=3.5, color=f"C{k}", lw=1.8, label=label)
        bottom = min(bottom, 100 * float(c.rates[0]))
    ax.set_xlim(0.5, k_max + 0.5)
    ax.set_ylim(max(0.0, math.floor(bottom / 10) * 10 - 2), 101)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("rank k")
    ax.set_ylabel("identification rate at rank \u2264 k (%)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.35)
    ax.legend(loc="lower right", fontsize=8.5, framealpha=0.9)
    return _save(fig, path)


def _series(name: str, points: Sequence[tuple[float, float]], what: str) -> np.ndarray:
    try:
        a = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        a = np.empty((1, 0))
    if a.size == 0 and a.ndim == 1:
        raise ValueError(f"{what} {name!r} is empty: nothing to plot")
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{what} {name!r}: expected a list of (step, value) pairs")
    return a[np.argsort(a[:, 0], kind="stable")]


def _minor_log_label(ax, v: float, _pos) -> str:
    """Labels the 2x and 5x minor ticks of a log y axis spanning at most two decades."""
    lo, hi = ax.get_ylim()
    if v <= 0 or lo <= 0 or hi / lo > 100:
        return ""
    mantissa = round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)
    return f"{v:g}" if mantissa in (2.0, 5.0) else ""


def plot_training_curves(
    series: Mapping[str, Sequence[tuple[float, float]]],
    path: str | os.PathLike[str],
    *,
    validation: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    title: str = "Training",
    log_y: Collection[str] = (),
    columns: int = 3,
    size: tuple[int, int] | None = None,
) -> Path:
    """One panel per metric: training series (raw, plus a moving average when long) and validation.

    Args:
      series: metric name -> [(step, value), ...] logged during training.
      path: the .png to write.
      validation: optional metric name -> [(step, value), ...]; drawn with markers in the panel of
        the same name (a name only here gets its own panel).
      title: figure title.
      log_y: metric names whose panel uses a log y axis (e.g. {"loss"}).
      columns: panels per row.
      size: (width, height) in pixels; default 380 x 300 per panel.

    Returns:
      `path`.
    """
    path = _check_path(path)
    validation = validation or {}
    if not isinstance(series, Mapping) or not isinstance(validation, Mapping):
        raise ValueError("training curves: series and validation must be {name: [(step, value)]}")
    train = {str(k): _series(str(k), v, "training series") for k, v in series.items()}
    val = {str(k): _series(str(k), v, "validation series") for k, v in validation.items()}
    names = list(dict.fromkeys([*train, *val]))
    if not names:
        raise ValueError("training curves: no series given")
    cols = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / cols)
    fig = _figure(size or (380 * cols, 300 * rows + 40))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names, strict=False):  # spare panels hidden above
        if name in train:
            steps, values = train[name].T
            long = steps.size >= 30
            ax.plot(steps, values, color="C0", lw=0.8 if long else 1.6, alpha=0.35 if long else 1,
                    label="train" if not long else "train (raw)")
            if long:  # centred moving average: no lag behind the raw series
                w = max(steps.size // 25, 3) // 2 * 2 + 1
                smooth = np.convolve(values, np.ones(w) / w, mode="valid")
                ax.plot(steps[w // 2: steps.size - w // 2], smooth, color="C0", lw=1.8,
                        label="train, centred moving mean (window 1/25 of the run)")
        if name in val:
            steps, values = val[name].T
            ax.plot(steps, values, "s--", color="C3", ms=4, lw=1.2, label="validation")
        if name in log_y:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.3, not 3e-1
            ax.yaxis.set_minor_formatter(FuncFormatter(partial(_minor_log_label, ax)))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    legend = {}  # one figure legend: the same three styles in every panel
    for ax in axes.flat[:len(names)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=len(legend),
               fontsize=8.5, frameon=False)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)
