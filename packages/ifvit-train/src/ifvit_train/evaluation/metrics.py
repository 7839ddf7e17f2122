"""Verification and identification metrics from similarity scores (FVC protocol definitions).

numpy only. Scores are similarities: higher = more alike. The decision rule is the FVC one,
**accept iff score >= t**, so a score equal to the threshold is a match. For a threshold t
(bias.csr.unibo.it/fvc2002/perfeval.asp; Maio et al., "FVC2000", IEEE TPAMI 2002):

    FMR(t)  = #{impostor scores >= t} / N_impostor      (false match rate, FAR)
    FNMR(t) = #{genuine scores  <  t} / N_genuine       (false non-match rate, FRR)

Failures to process. A pair whose score is NaN (or -inf) failed (bad image, no overlap, ...). As in
FVC, it still counts in N_genuine / N_impostor and is scored as the lowest possible score, -inf:
a failed genuine pair is a false non-match at every threshold, a failed impostor pair a correct
rejection at every threshold. Only the degenerate threshold t = -inf ("accept everything, failures
included", FVC's t = 0 on its [0, 1] scores) accepts them; it is the (FMR, FNMR) = (1, 0) end of
the curves. `+inf` is not a valid score.

Operating points are exact for the empirical step functions: FMR and FNMR only change at observed
scores, so sweeping t over {-inf} u {observed finite scores} u {+inf} visits every distinct
(FMR, FNMR) pair. Nothing is interpolated.

- EER, FVC style: t1 = max{t : FNMR(t) <= FMR(t)}, t2 = min{t : FNMR(t) >= FMR(t)};
  [EER_low, EER_high] = [FNMR(t1), FMR(t1)] if FNMR(t1) + FMR(t1) <= FNMR(t2) + FMR(t2), else
  [FMR(t2), FNMR(t2)]; EER = (EER_low + EER_high) / 2.
- FMR100 / FMR1000 / ZeroFMR: the lowest FNMR with FMR <= 1% / 0.1% / 0%.
- ZeroFNMR: the lowest FMR with FNMR = 0 (1.0 when a genuine pair failed: FNMR = 0 only at -inf).
- TAR@FAR=f (convention: threshold from the impostor quantile): t_f = `calibrate_threshold(
  impostor, f)`, the lowest threshold whose FMR on the impostor set is <= f, i.e. strictly above
  the (floor(f * N_impostor) + 1)-th highest impostor score; TAR = #{genuine >= t_f} / N_genuine.
  So TAR@FAR=0.1% = 1 - FMR1000 exactly. With N_impostor < 1/f the target is below the resolution
  of the impostor set (no false match allowed) and the point equals ZeroFMR's: 45 FVC impostor
  pairs (a 10x8 set) cannot resolve FAR 0.1%; 4,950 (100x8) resolve 1% and 0.1%, not 0.01%.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CMCResult",
    "ErrorCurve",
    "VerificationReport",
    "calibrate_threshold",
    "cmc",
    "error_curve",
    "fmr",
    "fnmr",
    "prepare_scores",
    "verification_report",
]


def prepare_scores(scores: ArrayLike, name: str = "scores") -> tuple[np.ndarray, int]:
    """Validates one score list and maps failures to -inf.

    Args:
      scores: `[N]` similarity scores; NaN or -inf marks a pair that failed to process.
      name: what to call the list in error messages (e.g. "genuine scores").

    Returns:
      `(float64 [N] scores with failures as -inf, number of failures)`.

    Raises:
      ValueError: empty, not 1-D, not numeric, or containing +inf.
    """
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numbers, got {type(scores).__name__}: {e}") from None
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of scores, got shape {s.shape}")
    if s.size == 0:
        raise ValueError(f"{name} is empty: at least one pair is needed")
    if np.any(s == np.inf):
        raise ValueError(f"{name} contains +inf; a failed pair is NaN (or -inf), not +inf")
    failed = np.isnan(s) | (s == -np.inf)
    s = np.where(failed, -np.inf, s)
    return s, int(failed.sum())


def fmr(impostor: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """FMR(t) = fraction of impostor scores >= t (failed pairs never match at a finite t).

    Args:
      impostor: `[Ni]` impostor scores (NaN = failed).
      thresholds: scalar or `[T]` thresholds.

    Returns:
      float64 array shaped like `thresholds`, in [0, 1].
    """
    imp, _ = prepare_scores(impostor, "impostor scores")
    imp.sort()
    t = np.asarray(thresholds, dtype=np.float64)
    return (imp.size - np.searchsorted(imp, t, side="left")) / imp.size


def fnmr(genuine: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """FNMR(t) = fraction of genuine scores < t (failed pairs are non-matches at a finite t).

    Args:
      genuine: `[Ng]` genuine scores (NaN = failed).
      thresholds: scalar or `[T]` thresholds.

    Returns:
      float64 array shaped like `thresholds`, in [0, 1].
    """
    gen, _ = prepare_scores(genuine, "genuine scores")
    gen.sort()
    t = np.asarray(thresholds, dtype=np.float64)
    return np.searchsorted(gen, t, side="left") / gen.size


@dataclass(frozen=True)
class ErrorCurve:
    """Every distinct operating point, thresholds ascending (FMR falls, FNMR rises).

    thresholds: `[T]` float64, `-inf`, the unique finite scores, `+inf`.
    false_matches: `[T]` int64, impostor scores >= t.  false_non_matches: `[T]` int64, genuine < t.
    n_genuine, n_impostor: the denominators (failed pairs included).
    """

    thresholds: np.ndarray
    false_matches: np.ndarray
    false_non_matches: np.ndarray
    n_genuine: int
    n_impostor: int

    @property
    def fmr(self) -> np.ndarray:
        """`[T]` FMR(t) (= FAR), in [0, 1]."""
        return self.false_matches / self.n_impostor

    @property
    def fnmr(self) -> np.ndarray:
        """`[T]` FNMR(t) (= FRR), in [0, 1]."""
        return self.false_non_matches / self.n_genuine

    @property
    def tar(self) -> np.ndarray:
        """`[T]` true accept rate 1 - FNMR(t): the ROC's y against `fmr`."""
        return 1.0 - self.fnmr


def error_curve(genuine: ArrayLike, impostor: ArrayLike) -> ErrorCurve:
    """FMR(t) and FNMR(t) at every threshold where either changes (DET and ROC points).

    Args:
      genuine: `[Ng]` genuine scores; impostor: `[Ni]` impostor scores (NaN = failed).

    Returns:
      An `ErrorCurve`; DET = (`fmr`, `fnmr`), ROC = (`fmr`, `tar`).
    """
    gen, _ = prepare_scores(genuine, "genuine scores")
    imp, _ = prepare_scores(impostor, "impostor scores")
    gen.sort()
    imp.sort()
    both = np.concatenate([gen, imp])
    t = np.concatenate([[-np.inf], np.unique(both[np.isfinite(both)]), [np.inf]])
    fm = imp.size - np.searchsorted(imp, t, side="left")
    fnm = np.searchsorted(gen, t, side="left")
    return ErrorCurve(t, fm.astype(np.int64), fnm.astype(np.int64), gen.size, imp.size)


def _eer(curve: ErrorCurve) -> tuple[float, float, float, float]:
    """(EER, EER_low, EER_high, threshold) by the FVC rule, compared in exact integer arithmetic."""
    ng, ni = curve.n_genuine, curve.n_impostor
    a = curve.false_non_matches * ni  # FNMR * ng * ni as an exact integer
    b = curve.false_matches * ng  # FMR * ng * ni
    i1 = int(np.flatnonzero(a <= b)[-1])  # exists: t = -inf has FNMR 0 <= FMR 1
    i2 = int(np.flatnonzero(a >= b)[0])  # exists: t = +inf has FNMR 1 >= FMR 0
    fmr_, fnmr_ = curve.fmr, curve.fnmr
    if a[i1] + b[i1] <= a[i2] + b[i2]:
        low, high, t = fnmr_[i1], fmr_[i1], curve.thresholds[i1]
    else:
        low, high, t = fmr_[i2], fnmr_[i2], curve.thresholds[i2]
    return (float(low) + float(high)) / 2, float(low), float(high), float(t)


def calibrate_threshold(impostor: ArrayLike, target_fmr: float) -> float:
    """The decision threshold for a target FMR, from impostor scores (e.g. a validation set).

    Returns the lowest threshold t with FMR(t) <= target_fmr on these scores: with
    k = floor(target_fmr * Ni) false matches allowed, t is the smallest float strictly above the
    (k+1)-th highest impostor score, so ties with that score are rejected. Always finite: when
    fewer than k+1 impostor pairs were processed (the rest failed), t is just above -inf and
    accepts every processed pair. Use it as `accept = score >= t` (NaN scores compare False).

    Args:
      impostor: `[Ni]` impostor scores (NaN = failed, counted in Ni).
      target_fmr: in [0, 1); 0 gives the ZeroFMR threshold (above the highest impostor score).

    Returns:
      The threshold (float).
    """
    try:
        target = float(target_fmr)
    except (TypeError, ValueError):
        target = math.nan
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target FMR must be a fraction in [0, 1), got {target_fmr!r}")
    imp, _ = prepare_scores(impostor, "impostor scores")
    imp[::-1].sort()  # descending in place
    # round() guards floor against products like 0.29 * 100 = 28.999999999999996
    k = math.floor(round(target * imp.size, 9))
    if k >= imp.size:
        return float(np.nextafter(-np.inf, 0.0))
    return float(np.nextafter(imp[k], np.inf))


@dataclass(frozen=True)
class VerificationReport:
    """FVC verification indicators; every rate is a fraction in [0, 1] (not %).

    eer, eer_low, eer_high: the FVC EER estimate and interval.
    fmr100, fmr1000, zerofmr: lowest FNMR with FMR <= 1%, <= 0.1%, = 0.
    zerofnmr: lowest FMR with FNMR = 0.
    tar_at_far_1e3, tar_at_far_1e4: 1 - FNMR at the impostor-quantile thresholds for FAR 0.1% and
      0.01%.
    n_genuine, n_impostor: pairs in each set, failures included.
    failed, failed_genuine, failed_impostor: pairs that failed to process (NaN / -inf score).
    thresholds: name -> threshold (accept iff score >= t) of each point: "eer", "fmr100",
      "fmr1000", "zerofmr", "zerofnmr", "far_1e3", "far_1e4"; may be +-inf for "eer"/"zerofnmr"
      in degenerate cases (`to_dict` writes those as null).
    """

    eer: float
    eer_low: float
    eer_high: float
    fmr100: float
    fmr1000: float
    zerofmr: float
    zerofnmr: float
    tar_at_far_1e3: float
    tar_at_far_1e4: float
    n_genuine: int
    n_impostor: int
    failed: int
    failed_genuine: int
    failed_impostor: int
    thresholds: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (`json.dumps(d, allow_nan=False)` works); inf thresholds -> None."""
        d = asdict(self)
        d["thresholds"] = {k: (float(v) if math.isfinite(v) else None)
                           for k, v in self.thresholds.items()}
        return d


def verification_report(genuine: ArrayLike, impostor: ArrayLike) -> VerificationReport:
    """All FVC indicators (module docstring) for one set of genuine and impostor scores.

    Args:
      genuine: `[Ng]` genuine-pair similarity scores; impostor: `[Ni]` impostor-pair scores.
        NaN (or -inf) = the pair failed to process.

    Returns:
      A `VerificationReport`.
    """
    gen, gen_failed = prepare_scores(genuine, "genuine scores")
    imp, imp_failed = prepare_scores(impostor, "impostor scores")
    curve = error_curve(gen, imp)
    eer, low, high, t_eer = _eer(curve)
    thresholds = {"eer": t_eer}
    rejected = {}  # genuine pairs below each threshold
    gen.sort()
    for name, target in (("fmr100", 1e-2), ("fmr1000", 1e-3), ("zerofmr", 0.0),
                         ("far_1e3", 1e-3), ("far_1e4", 1e-4)):
        t = calibrate_threshold(imp, target)
        thresholds[name] = t
        rejected[name] = int(np.searchsorted(gen, t, side="left"))
    ng = gen.size
    # ZeroFNMR: the highest threshold that still accepts every genuine pair.
    i = int(np.flatnonzero(curve.false_non_matches == 0)[-1])
    thresholds["zerofnmr"] = float(curve.thresholds[i])
    return VerificationReport(
        eer=eer, eer_low=low, eer_high=high,
        fmr100=rejected["fmr100"] / ng, fmr1000=rejected["fmr1000"] / ng,
        zerofmr=rejected["zerofmr"] / ng, zerofnmr=float(curve.fmr[i]),
        tar_at_far_1e3=(ng - rejected["far_1e3"]) / ng,
        tar_at_far_1e4=(ng - rejected["far_1e4"]) / ng,
        n_genuine=int(gen.size), n_impostor=int(imp.size),
        failed=gen_failed + imp_failed, failed_genuine=gen_failed, failed_impostor=imp_failed,
        thresholds=thresholds,
    )


@dataclass(frozen=True)
class CMCResult:
    """Cumulative match characteristic of a closed-set search.

    rates: `[K]` float64, rates[k-1] = fraction of counted probes whose identity is found at
      rank <= k (rank-1 accuracy = rates[0]).
    probe_ranks: `[P]` int64, rank of the first gallery entry of the probe's identity (1 = top);
      0 for a probe whose identity is absent from the gallery.
    n_probes: P.  n_mated: probes whose identity is in the gallery.  n_counted: the denominator
      (n_mated with absent="exclude", n_probes with absent="miss").
    """

    rates: np.ndarray
    probe_ranks: np.ndarray
    n_probes: int
    n_mated: int
    n_counted: int

    @property
    def ranks(self) -> np.ndarray:
        """`[K]` the ranks 1..K of `rates`."""
        return np.arange(1, self.rates.size + 1)

    def rank(self, k: int) -> float:
        """Identification rate at rank k (1-based; k beyond K raises IndexError)."""
        if not 1 <= k <= self.rates.size:
            raise IndexError(f"rank {k} is outside 1..{self.rates.size}")
        return float(self.rates[k - 1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: rates by rank and the probe counts (not the per-probe ranks)."""
        return {"rates": [float(r) for r in self.rates], "n_probes": self.n_probes,
                "n_mated": self.n_mated, "n_counted": self.n_counted}


def cmc(
    similarity: ArrayLike,
    probe_labels: ArrayLike,
    gallery_labels: ArrayLike,
    max_rank: int = 10,
    absent: Literal["exclude", "miss"] = "exclude",
) -> CMCResult:
    """Rank-k identification rates (CMC) of probes searched against a gallery.

    The rank of a probe is 1 + the number of gallery entries of *other* identities scoring >= its
    best-scoring mate (ties go against the probe; a gallery holding several entries per identity
    is ranked by entries, as a top-k candidate list is). NaN similarities (failed comparisons)
    count as -inf. A probe whose identity has no gallery entry cannot be found: with
    absent="exclude" (closed-set CMC, ISO/IEC 19795-1 mated searches) it is left out of the
    denominator; with absent="miss" it counts as never found.

    Args:
      similarity: `[P, G]` probe x gallery similarities (higher = more alike).
      probe_labels: `[P]` identity of each probe; gallery_labels: `[G]` of each gallery entry
        (ints or strings, compared with ==).
      max_rank: K >= 1; rates for ranks 1..K (ranks past G repeat rank G's rate).
      absent: "exclude" or "miss", see above.

    Returns:
      A `CMCResult`.
    """
    s = np.asarray(similarity, dtype=np.float64)
    pl, gl = np.asarray(probe_labels), np.asarray(gallery_labels)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"similarity must be a non-empty [P, G] matrix, got shape {s.shape}")
    if pl.shape != (s.shape[0],) or gl.shape != (s.shape[1],):
        raise ValueError(f"labels must be [P]={s.shape[0]} and [G]={s.shape[1]}, "
                         f"got {pl.shape} and {gl.shape}")
    if not (isinstance(max_rank, (int, np.integer)) and max_rank >= 1):
        raise ValueError(f"max_rank must be an integer >= 1, got {max_rank!r}")
    if absent not in ("exclude", "miss"):
        raise ValueError(f'absent must be "exclude" or "miss", got {absent!r}')
    if np.any(s == np.inf):
        raise ValueError("similarity contains +inf; a failed comparison is NaN")
    s = np.where(np.isnan(s), -np.inf, s)
    mate = pl[:, None] == gl[None, :]  # [P, G]
    mated = mate.any(axis=1)  # [P]
    best = np.where(mate, s, -np.inf).max(axis=1)  # [P] best mate score
    rivals = np.sum(~mate & (s >= best[:, None]), axis=1)  # [P]
    ranks = np.where(mated, 1 + rivals, 0).astype(np.int64)
    counted = int(mated.sum()) if absent == "exclude" else s.shape[0]
    if counted == 0:
        raise ValueError("no probe identity is present in the gallery: the CMC is undefined")
    k = np.arange(1, max_rank + 1)
    found = (ranks[None, :] >= 1) & (ranks[None, :] <= k[:, None])  # [K, P]
    rates = found.sum(axis=1) / counted
    return CMCResult(rates.astype(np.float64), ranks, int(s.shape[0]), int(mated.sum()), counted)
