"""Calibrating a Module 2 bundle on validation prints of the user's own sensors (`ifvit calibrate`).

Input: `ifvit evaluate` outputs made with the bundle (scores.csv + report.json of each validation
set). Two things are chosen from them, nothing is trained:

1. `evidence_k`, how much Module 1's geometric evidence weighs in the decision score:
   score = (1 + cosine) / 2 · n / (n + k), n = RANSAC inliers
   (`ifvit_core.scores.evidence_weighted`; k = 0 is the paper's score). The grid value with the
   lowest mean EER over the sets wins (ties:
   the smaller k), unless the user fixes k.
2. The decision thresholds for FMR 1% / 0.1% / 0.01%, from the impostor scores of every set pooled,
   under that k (`metrics.calibrate_threshold`).

    sets = [read_evaluation(d, bundle) for d in eval_dirs]
    k, table = choose_evidence_k(sets)
    meta = calibrate_bundle(bundle_dir, out_dir, eval_dirs)   # a new weights-only bundle

The new bundle has the same weights (`export_bundle`) and a bundle.json whose config carries k,
whose thresholds are the new ones and whose "calibration" records the sets, the EER of every grid
value and the choice. Never calibrate on the prints you report accuracy on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_core.config import config_from_dict
from ifvit_core.scores import evidence_weighted, fuse_scores
from ifvit_train.evaluation.metrics import calibrate_threshold, verification_report
from ifvit_train.serving.bundle import (
    BUNDLE_FILE,
    LoadedBundle,
    export_bundle,
    load_bundle,
    portable,
    read_meta,
    write_json_atomic,
)

EVIDENCE_GRID = (0.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)
TARGET_FMRS = (1e-2, 1e-3, 1e-4)


class CalibrationError(ValueError):
    """An evaluation folder that cannot calibrate this bundle (one-line message)."""


@dataclass(frozen=True)
class ValidationScores:
    """The pair scores of one evaluated validation set.

    folder: the `ifvit evaluate` output; data: its prints folder; protocol: its pair protocol.
    genuine: bool [P]; cosine: float [P] the paper's fused cosine; inliers: float [P] Module 1's
    RANSAC inliers (NaN in both where the pair failed to process).
    """

    folder: Path
    data: str
    protocol: str
    genuine: np.ndarray
    cosine: np.ndarray
    inliers: np.ndarray

    def scores(self, k: float) -> np.ndarray:
        """Decision scores [P] under evidence weight k (NaN stays NaN: a failure)."""
        return np.asarray(evidence_weighted(self.cosine, np.nan_to_num(self.inliers), k),
                          np.float64)

    def eer(self, k: float) -> float:
        s = self.scores(k)
        return verification_report(s[self.genuine], s[~self.genuine]).eer


def _float(cell: str) -> float:
    return float(cell) if cell.strip() else np.nan


def evaluation_files(folder: Path, model: Path) -> tuple[Path, Path]:
    """(report.json, scores.csv) of an `ifvit evaluate` output folder; CalibrationError if either
    is missing (checked before the model loads)."""
    report_path, csv_path = folder / "report.json", folder / "scores.csv"
    if not report_path.is_file() or not csv_path.is_file():
        raise CalibrationError(f"{folder}: no report.json and scores.csv; give an `ifvit evaluate "
                               f"--model {model}` output folder")
    return report_path, csv_path


def read_evaluation(folder: str | Path, bundle: LoadedBundle) -> ValidationScores:
    """Reads one `ifvit evaluate` output folder made with `bundle` (verification protocol).

    Raises CalibrationError: files missing or malformed, made with another model or step, with
    the untrained network, or an identification evaluation (no pair scores).
    """
    folder = Path(folder)
    report_path, csv_path = evaluation_files(folder, bundle.path)
    try:
        report = json.loads(report_path.read_text())
        model, step = Path(report["model"]).resolve(), int(report["model_step"])
        protocol = str(report["protocol"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CalibrationError(f"{report_path}: not an `ifvit evaluate` report ({e})") from None
    if protocol == "identification":
        raise CalibrationError(f"{folder}: an identification evaluation has no pair scores; "
                               "evaluate with --protocol baselines, fvc or all-pairs")
    if model != bundle.path.resolve() or step != bundle.step or report.get("untrained"):
        made = (f"{report['model']} step {step}"
                + (" (untrained)" if report.get("untrained") else ""))
        raise CalibrationError(f"{folder}: scores made with {made}, not with {bundle.path} step "
                               f"{bundle.step}; run `ifvit evaluate --model {bundle.path}` on that "
                               "data first")
    try:
        with csv_path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        genuine = np.array([int(r["genuine"]) == 1 for r in rows], bool)
        cos_g = np.array([_float(r["cos_global"]) for r in rows])
        cos_l = np.array([_float(r["cos_local"]) for r in rows])
        inliers = np.array([_float(r["inliers"]) for r in rows])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CalibrationError(f"{csv_path}: not an `ifvit evaluate` scores.csv ({e})") from None
    if not genuine.any() or genuine.all():
        raise CalibrationError(f"{csv_path}: needs both genuine and impostor pairs")
    cosine = np.asarray(fuse_scores(cos_g, cos_l, bundle.cfg.module2.fusion_alpha), np.float64)
    return ValidationScores(folder, str(report.get("data", "")), protocol, genuine, cosine, inliers)


def choose_evidence_k(sets: Sequence[ValidationScores], grid: Sequence[float] = EVIDENCE_GRID,
                      ) -> tuple[float, dict[float, list[float]]]:
    """The grid value with the lowest mean EER over `sets` (ties: the smaller value).

    Returns (k, {grid value: [EER of each set]}).
    """
    table = {float(k): [s.eer(float(k)) for s in sets] for k in sorted(grid)}
    best = min(table, key=lambda k: (round(float(np.mean(table[k])), 12), k))
    return best, table


def calibrated_meta(meta: dict[str, Any], sets: Sequence[ValidationScores], k: float,
                    table: dict[float, list[float]], chosen_by: str) -> dict[str, Any]:
    """`meta` (a bundle.json) with evidence_k = k, thresholds from the pooled impostor scores of
    `sets` under k, and the "calibration" record."""
    impostor = np.concatenate([s.scores(k)[~s.genuine] for s in sets])
    thresholds: dict[str, Any] = {f"fmr_{f:g}": calibrate_threshold(impostor, f)
                                  for f in TARGET_FMRS}
    thresholds["calibrated_on"] = (
        f"{impostor.size} impostor pairs of {len(sets)} validation set(s) (`ifvit calibrate`; "
        "a threshold for an FMR below 1/pairs rejects every impostor seen)")
    config = json.loads(json.dumps(meta["config"]))
    config["module2"]["evidence_k"] = float(k)
    return {**meta, "config": config, "thresholds": thresholds, "calibration": {
        "evidence_k": float(k), "chosen_by": chosen_by,
        "mean_eer_by_k": {f"{g:g}": float(np.mean(v)) for g, v in table.items()},
        "sets": [{"evaluation": str(s.folder.resolve()), "data": s.data, "protocol": s.protocol,
                  "genuine": int(s.genuine.sum()), "impostor": int((~s.genuine).sum()),
                  "eer_by_k": {f"{g:g}": table[g][i] for g in table}}
                 for i, s in enumerate(sets)],
        "previous_thresholds": meta.get("thresholds", {}),
        "previous_evidence_k": float(meta["config"]["module2"].get("evidence_k", 0.0)),
    }}


def calibrate_bundle(src: str | Path, dst: str | Path, eval_dirs: Sequence[str | Path],
                     evidence_k: float | None = None) -> dict[str, Any]:
    """Writes the calibrated copy of Module 2 bundle `src` into the new folder `dst`.

    Args:
      eval_dirs: `ifvit evaluate --model src` outputs of validation prints (not the test prints).
      evidence_k: fix k (>= 0) instead of choosing it on the grid.

    Returns the new bundle.json content. Raises BundleError / CalibrationError (one-line messages).
    """
    if not eval_dirs:
        raise CalibrationError("give at least one `ifvit evaluate` output folder")
    read_meta(src)  # the quick refusals before the model loads
    for d in eval_dirs:
        evaluation_files(Path(d), Path(src))
    bundle = load_bundle(src, require="match")
    sets = [read_evaluation(d, bundle) for d in eval_dirs]
    if evidence_k is None:
        k, table = choose_evidence_k(sets)
        chosen_by = f"lowest mean EER over the sets on the grid {list(EVIDENCE_GRID)}"
    else:
        if not evidence_k >= 0:
            raise CalibrationError(f"evidence k must be >= 0, got {evidence_k}")
        k, table = float(evidence_k), {float(evidence_k): [s.eer(float(evidence_k)) for s in sets]}
        chosen_by = "given"
    meta = calibrated_meta(export_bundle(src, dst), sets, k, table, chosen_by)
    config_from_dict(meta["config"])  # the new config is valid before it is written
    write_json_atomic(Path(dst) / BUNDLE_FILE, portable(meta))
    return meta


__all__ = ["EVIDENCE_GRID", "CalibrationError", "ValidationScores", "calibrate_bundle",
           "calibrated_meta", "choose_evidence_k", "read_evaluation"]
