"""Evaluation of a Module 2 bundle on a folder of prints: protocol pairs -> scores -> FVC report.

    prints = load_prints(verifier, root, "fvc")
    pairs, genuine = protocol_pairs(prints.entries, "fvc")
    scores = score_pairs(verifier, prints.prepared, pairs, batch_size=8)
    report = evaluation_report(scores, genuine, ...)

Every print is prepared once (the bundle's preprocessing, `ifvit_train.serving.infer.prepare_image`)
and every pair is scored by one compiled graph at a fixed batch size. A print that cannot be read or
prepared is a failure to process, and a print below the quality floor (`ifvit_data.quality`: no
fingerprint in the image) a failure to acquire: either way its pairs get NaN scores, which the FVC
metrics count as the lowest possible score (a genuine failure is a false non-match at every
threshold); the report counts both.

Besides IFViT's fused score, the report scores the same pairs with each Module 2 branch alone
(global cosine, ROI cosine) and with Module 1 alone (RANSAC inlier count): the ablation comes from
the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_data.imagefile import ImageReadError
from ifvit_data.protocol import PROTOCOLS, protocol_pairs  # noqa: F401 (re-exported)
from ifvit_data.quality import QUALITY_FLOOR, PrintQuality
from ifvit_data.readers import Entry, Skipped, scan
from ifvit_train.evaluation.metrics import verification_report
from ifvit_train.serving.bundle import LoadedBundle
from ifvit_train.serving.infer import FailureToAcquire, PreparedImage, Verifier
from ifvit_train.serving.pairs import (  # noqa: F401 (re-exported)
    QUALITY_COLUMNS,
    SCORE_COLUMNS,
    score_pairs,
    scores_csv,
)

# system name -> (column of the scores, what it is)
SYSTEMS = {
    "ifvit": ("score",
              "IFViT score: the decision score of the bundle (the fused cosine, weighted by "
                       "Module 1's inliers if the bundle was calibrated with evidence_k > 0)"),
    "cosine": ("cosine", "the paper's score: alpha * global + (1 - alpha) * ROI cosine"),
    "global": ("cos_global", "Module 2 global branch cosine alone"),
    "roi": ("cos_local", "Module 2 ROI branch cosine alone"),
    "module1": ("inliers", "Module 1 alone: RANSAC inlier count of the dense matches"),
}


@dataclass
class PrintSet:
    """The prints of a dataset folder, prepared for the model.

    entries: `[N]` parsed files (finger, impression); prepared: `[N]` model inputs, None where the
    print failed; failures: entry index -> reason; skipped: files that are not prints of the layout;
    quality: `[N]` each print's quality (None where the file could not be read); not_acquired: the
    entry indices below the quality floor (a subset of `failures`).
    """

    root: Path
    entries: list[Entry]
    prepared: list[PreparedImage | None]
    failures: dict[int, str] = field(default_factory=dict)
    skipped: Skipped = field(default_factory=Skipped)
    seconds: float = 0.0
    quality: list[PrintQuality | None] = field(default_factory=list)
    not_acquired: list[int] = field(default_factory=list)

    def quality_values(self) -> np.ndarray:
        """float64 `[N]` quality of each print, NaN where the file could not be read."""
        if len(self.quality) != len(self.entries):  # a set made without the quality
            return np.full(len(self.entries), np.nan)
        return np.array([np.nan if q is None else q.quality for q in self.quality], np.float64)


def load_prints(verifier: Verifier, root: str | Path, layout: str, *, dpi: float | None = None,
                pattern: str | None = None, fingers: Sequence[int] | None = None,
                progress: Callable[[int], None] | None = None) -> PrintSet:
    """Lists a dataset folder (`ifvit_data.readers.scan`) and prepares every print once.

    fingers: keep only these finger ids (the dense ids `scan` and `ifvit ingest` give, e.g. the
      held-out fingers of a training run on shards of this folder).

    Raises:
      ifvit_data.readers.DatasetError: not a folder of that layout, or no print in it.
    """
    from ifvit_data.readers import DatasetError

    root = Path(root)
    entries, skipped = scan(root, layout, pattern)
    if fingers is not None:
        keep = {int(f) for f in fingers}
        entries = [e for e in entries if e.finger in keep]
    if not entries:
        raise DatasetError(f"{root}: no {layout}-layout print found "
                           f"({skipped.ignored} other files); check --layout or --pattern")
    t0 = time.perf_counter()
    prepared: list[PreparedImage | None] = []
    quality: list[PrintQuality | None] = []
    failures: dict[int, str] = {}
    not_acquired: list[int] = []
    for i, e in enumerate(entries):
        try:
            p = verifier.prepare(e.path, dpi if dpi is not None else e.name_ppi)
        except FailureToAcquire as err:
            p, failures[i] = None, str(err)
            not_acquired.append(i)
            quality.append(err.quality)
        except (ImageReadError, ValueError, OSError) as err:
            p, failures[i] = None, str(err)
            quality.append(None)
        else:
            quality.append(p.quality)
        prepared.append(p)
        if progress is not None:
            progress(1)
    return PrintSet(root, entries, prepared, failures, skipped, time.perf_counter() - t0,
                    quality, not_acquired)


def evaluate_prints(verifier: Verifier, prints: PrintSet, protocol: str, batch_size: int = 8,
                    progress: Callable[[int], None] | None = None, **about: Any):
    """Pairs of `protocol` on `prints`, their scores and the report.

    Returns (pairs int32 [P, 2], is_genuine int32 [P], scores (`score_pairs`), report dict).
    Raises ValueError when the protocol has no genuine or no impostor pair on these prints.
    """
    pairs, genuine = protocol_pairs(prints.entries, protocol)
    if not genuine.any() or genuine.all():
        raise ValueError(f"{prints.root}: the {protocol} protocol needs at least two fingers and "
                         "two impressions of one finger")
    scores = score_pairs(verifier, prints.prepared, pairs, batch_size, progress=progress)
    names = [e.rel for e in prints.entries]
    q = prints.quality_values()
    scores["quality0"], scores["quality1"] = q[pairs[:, 0]], q[pairs[:, 1]]
    report = evaluation_report(
        scores, genuine, thresholds=verifier.thresholds, protocol=protocol, prints=len(names),
        prints_failed={names[i]: why for i, why in prints.failures.items()},
        prints_failed_to_acquire=len(prints.not_acquired),
        quality=quality_summary(q), seconds_per_print=prints.seconds / max(len(names), 1), **about)
    return pairs, genuine, scores, report


def quality_summary(q: np.ndarray) -> dict[str, Any]:
    """{'floor', 'min', 'median'} of the quality values `q` [N] (NaN: unreadable, left out)."""
    fin = np.asarray(q, np.float64)[np.isfinite(q)]

    def stat(f: Callable[[np.ndarray], Any]) -> float | None:
        return round(float(f(fin)), 4) if fin.size else None

    return {"floor": QUALITY_FLOOR, "min": stat(np.min), "median": stat(np.median)}


def reported_systems(scores: dict[str, np.ndarray]) -> dict[str, tuple[str, str]]:
    """`SYSTEMS` present in `scores`; 'cosine' only where it differs from the decision score (a
    bundle with `evidence_k` > 0), since otherwise the two are the same system."""
    same = np.array_equal(scores["score"], scores.get("cosine", scores["score"]), equal_nan=True)
    return {name: v for name, v in SYSTEMS.items()
            if v[0] in scores and not (name == "cosine" and same)}


def evaluation_report(scores: dict[str, np.ndarray], is_genuine: np.ndarray, *,
                      thresholds: dict[str, float] | None = None,
                      **about: Any) -> dict[str, Any]:
    """The report.json content: FVC indicators of every system, decisions at the bundle's
    thresholds, failures and timing.

    Args:
      scores: `score_pairs` output; is_genuine: int [P]; thresholds: the bundle's
        {'fmr_0.01': t, ...} (accept iff fused score >= t); about: extra fields (model, data, ...).
    """
    gen = np.asarray(is_genuine) == 1
    systems = {}
    for name, (col, what) in reported_systems(scores).items():
        s = scores[col]
        rep = verification_report(s[gen], s[~gen]).to_dict()
        systems[name] = {"what": what, **rep}
    decisions = {}
    s = scores["score"]
    for name, t in (thresholds or {}).items():
        acc = s >= t  # NaN (failed) -> reject
        decisions[name] = {"threshold": t, "fmr": float(acc[~gen].mean()) if (~gen).any() else None,
                           "fnmr": float((~acc[gen]).mean()) if gen.any() else None}
    scored = int(np.isfinite(s).sum())
    return {
        **about,
        "pairs": {"genuine": int(gen.sum()), "impostor": int((~gen).sum()),
                  "failed": int(len(s) - scored)},
        "systems": systems,
        "decisions_at_bundle_thresholds": decisions,
        "alignment_failed_pairs": int((~scores["ok"] & np.isfinite(s)).sum()),
        "seconds_per_pair": float(scores["seconds"]) / max(scored, 1),
    }


def write_plots(out: Path, scores: dict[str, np.ndarray], is_genuine: np.ndarray,
                thresholds: dict[str, float] | None = None, title: str = "") -> list[Path]:
    """det.png, roc.png (every system) and histogram.png (fused score) into `out`."""
    from ifvit_train.evaluation.plots import plot_det, plot_roc, plot_score_histograms

    gen = np.asarray(is_genuine) == 1
    systems = {name: (scores[col][gen], scores[col][~gen])
               for name, (col, _) in reported_systems(scores).items()}
    return [plot_det(systems, out / "det.png", title=f"DET {title}".strip()),
            plot_roc(systems, out / "roc.png", title=f"ROC {title}".strip()),
            plot_score_histograms(scores["score"][gen], scores["score"][~gen],
                                  out / "histogram.png",
                                  thresholds=thresholds, title=f"IFViT scores {title}".strip())]


def compare_with_baselines(bundle: LoadedBundle, root: str | Path, layout: str = "fvc",
                           protocol: str = "fvc", *, fingers: Sequence[int] | None = None,
                           batch_size: int = 8, det_png: Path | None = None,
                           progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """The trained model against its baselines on one set of prints, from one preparation.

    Rows: 'trained' (IFViT's score), 'scratch' (the network before any training,
    `ifvit_train.serving.bundle.from_scratch`), 'untrained' (the same network before Module 2
    training, `ifvit_train.serving.bundle.untrained`), 'module1' (Module 1 alone: RANSAC inliers).
    Each row holds the FVC indicators (`verification_report`). With `det_png`, draws the four DET
    curves there.
    """
    from ifvit_train.serving.bundle import from_scratch, untrained

    trained = Verifier(bundle)
    prints = load_prints(trained, root, layout, fingers=fingers)
    _, gen, s_t, rep = evaluate_prints(trained, prints, protocol, batch_size, progress)
    _, _, s_s, rep_s = evaluate_prints(Verifier(from_scratch(bundle)), prints, protocol, batch_size,
                                       progress)
    _, _, s_u, rep_u = evaluate_prints(Verifier(untrained(bundle)), prints, protocol, batch_size,
                                       progress)
    if det_png is not None:
        from ifvit_train.evaluation.plots import plot_det

        g = gen == 1
        plot_det({"trained": (s_t["score"][g], s_t["score"][~g]),
                  "no training": (s_s["score"][g], s_s["score"][~g]),
                  "Module 2 untrained": (s_u["score"][g], s_u["score"][~g]),
                  "Module 1 alone": (s_t["inliers"][g], s_t["inliers"][~g])},
                 det_png, title=f"DET {Path(root).name}")
    return {"data": str(root), "protocol": protocol, "pairs": rep["pairs"],
            "prints": rep["prints"], "seconds_per_pair": rep["seconds_per_pair"],
            "rows": {"trained": rep["systems"]["ifvit"], "scratch": rep_s["systems"]["ifvit"],
                     "untrained": rep_u["systems"]["ifvit"], "module1": rep["systems"]["module1"]}}
