"""Scoring a list of pairs and writing it: what `ifvit match --pairs` and `ifvit evaluate` share.

    out = score_pairs(verifier, prepared, pairs [P, 2], batch_size=8)
    text = scores_csv(names0, names1, out, is_genuine=None, thresholds=bundle_thresholds)

A pair with a print that failed (unreadable, or not acquired) gets NaN scores; scores.csv leaves
its cells empty and rejects it at every threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from ifvit_train.serving.infer import PreparedImage, Verifier

SCORE_COLUMNS = ("score", "cosine", "cos_global", "cos_local", "inliers", "ok", "rotation_deg")
QUALITY_COLUMNS = ("quality0", "quality1")  # each print's quality (`ifvit_data.quality`)


def score_pairs(verifier: Verifier, prepared: Sequence[PreparedImage | None], pairs: np.ndarray,
                batch_size: int = 8,
                progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Scores `pairs` [P, 2] of `prepared` prints, `batch_size` pairs of the same window shapes
    per compiled call (`Verifier.score_pairs`).

    Returns {'score', 'cosine', 'cos_global', 'cos_local', 'inliers', 'rotation_deg' float64 [P]
    (NaN where a print of the pair failed), 'ok' bool [P] (RANSAC found an alignment), 'seconds'
    float}.
    """
    pairs = np.asarray(pairs).reshape(-1, 2)
    out = {k: np.full(len(pairs), np.nan) for k in SCORE_COLUMNS if k != "ok"}
    out["ok"] = np.zeros(len(pairs), bool)
    todo = [p for p in range(len(pairs))
            if prepared[pairs[p, 0]] is not None and prepared[pairs[p, 1]] is not None]
    if progress is not None and len(todo) < len(pairs):
        progress(len(pairs) - len(todo))
    t0 = time.perf_counter()
    if todo:
        res = verifier.score_pairs([(prepared[pairs[p, 0]], prepared[pairs[p, 1]]) for p in todo],
                                   batch_size, progress)
        for k, v in res.items():
            out[k][todo] = v
    out["seconds"] = np.float64(time.perf_counter() - t0)
    return out


def scores_csv(names0: Sequence[str], names1: Sequence[str], scores: dict[str, np.ndarray],
               is_genuine: np.ndarray | None = None,
               thresholds: dict[str, float] | None = None) -> str:
    """scores.csv text: one row per pair (image0, image1, [genuine,] the score columns, and
    `accept_<name>` true/false at each of `thresholds` (a failed pair is rejected)), then, where
    `scores` holds them, `quality0`, `quality1`: each print's quality (`ifvit_data.quality`; empty
    where the file could not be read; below the floor: not acquired, the pair has no score)."""
    thresholds = thresholds or {}
    qcols = [k for k in QUALITY_COLUMNS if k in scores]
    head = (["image0", "image1"] + (["genuine"] if is_genuine is not None else [])
            + list(SCORE_COLUMNS) + [f"accept_{k}" for k in thresholds] + qcols)
    rows = [",".join(head)]
    for p in range(len(names0)):
        cells = [_csv_cell(names0[p]), _csv_cell(names1[p])]
        if is_genuine is not None:
            cells.append(str(int(is_genuine[p])))
        for k in SCORE_COLUMNS:
            v = scores[k][p]
            cells.append(str(bool(v)).lower() if k == "ok"
                         else ("" if not np.isfinite(v) else f"{v:.6g}"))
        cells += [str(bool(scores["score"][p] >= t)).lower() for t in thresholds.values()]
        cells += ["" if not np.isfinite(scores[k][p]) else f"{scores[k][p]:.4f}" for k in qcols]
        rows.append(",".join(cells))
    return "\n".join(rows) + "\n"


def _csv_cell(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
