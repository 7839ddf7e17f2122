"""FVC verification metrics and CMC: hand-worked cases, and an independent brute force on random
data.

Expected values are worked out by hand in the comments (accept iff score >= t;
FMR(t) = #{imp >= t} / Ni, FNMR(t) = #{gen < t} / Ng; failed pairs score -inf).
"""

import json
import math
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from ifvit_train.evaluation.metrics import (
    calibrate_threshold,
    cmc,
    error_curve,
    fmr,
    fnmr,
    verification_report,
)

NAN = float("nan")


def up(x: float) -> float:
    """The smallest float above x."""
    return float(np.nextafter(x, np.inf))


def test_ties_at_the_threshold_are_accepted():
    # gen 0.5, 0.5, 0.7; imp 0.5, 0.2. At t = 0.5 both 0.5-genuines are accepted (FNMR 0) and the
    # 0.5-impostor is a false match (FMR 1/2). Just above 0.5 the two 0.5-genuines are rejected
    # (FNMR 2/3) and no impostor is accepted (FMR 0).
    gen, imp = [0.5, 0.5, 0.7], [0.5, 0.2]
    assert fnmr(gen, 0.5) == 0.0 and fmr(imp, 0.5) == 0.5
    assert fnmr(gen, up(0.5)) == pytest.approx(2 / 3) and fmr(imp, up(0.5)) == 0.0
    # vectorised over thresholds, shape kept
    assert fmr(imp, [[0.1, 0.3]]).tolist() == [[1.0, 0.5]]


def test_error_curve_points_of_the_worked_example():
    # gen 0.9 0.6 0.4 (Ng 3); imp 0.7 0.5 0.3 0.2 (Ni 4).
    #   t        -inf .2 .3 .4 .5 .6 .7 .9 +inf
    #   #gen<t     0  0  0  0  1  1  2  2  3
    #   #imp>=t    4  4  3  2  2  1  1  0  0
    c = error_curve([0.9, 0.6, 0.4], [0.7, 0.5, 0.3, 0.2])
    assert c.thresholds.tolist() == [-math.inf, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, math.inf]
    assert c.false_non_matches.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3]
    assert c.false_matches.tolist() == [4, 4, 3, 2, 2, 1, 1, 0, 0]
    assert c.fmr[2] == 0.75 and c.fnmr[4] == pytest.approx(1 / 3)
    assert c.tar[4] == pytest.approx(2 / 3)


def test_worked_example_3_genuine_4_impostor():
    # Table above. FNMR <= FMR holds up to t = .5 (1/3 <= 1/2), not at .6 (1/3 > 1/4): t1 = .5.
    # FNMR >= FMR first at t = .6: t2 = .6. FNMR+FMR: t1 1/3+1/2 = 5/6 > t2 1/4+1/3 = 7/12, so
    # [EER_low, EER_high] = [FMR(t2), FNMR(t2)] = [1/4, 1/3], EER = 7/24, threshold .6.
    # FMR <= 1% (and 0.1%, 0) with Ni = 4 allows no false match: t just above .7, where
    # genuines .6 and .4 are rejected -> FMR100 = FMR1000 = ZeroFMR = 2/3, TAR@FAR = 1/3.
    # ZeroFNMR: the highest t accepting every genuine is .4, where FMR = 2/4.
    r = verification_report([0.9, 0.6, 0.4], [0.7, 0.5, 0.3, 0.2])
    assert (r.eer_low, r.eer_high) == (0.25, pytest.approx(1 / 3))
    assert r.eer == pytest.approx(7 / 24)
    assert r.thresholds["eer"] == 0.6
    assert r.fmr100 == r.fmr1000 == r.zerofmr == pytest.approx(2 / 3)
    assert r.thresholds["fmr100"] == r.thresholds["zerofmr"] == up(0.7)
    assert r.tar_at_far_1e3 == r.tar_at_far_1e4 == pytest.approx(1 / 3)
    assert r.zerofnmr == 0.5 and r.thresholds["zerofnmr"] == 0.4
    assert (r.n_genuine, r.n_impostor, r.failed) == (3, 4, 0)


def test_eer_first_branch_interval():
    # gen .9 .5 .45; imp .6 .4 .3 .1.
    #   t        -inf .1  .3  .4  .45 .5  .6  .9  +inf
    #   #gen<t     0   0   0   0   0   1   2   2   3     (/3)
    #   #imp>=t    4   4   3   2   1   1   1   0   0     (/4)
    # t1 = .45 (0 <= 1/4; at .5 1/3 > 1/4), t2 = .5. Sums: 0+1/4 <= 1/3+1/4, so the interval is
    # [FNMR(t1), FMR(t1)] = [0, 1/4], EER = 1/8 at threshold .45.
    r = verification_report([0.9, 0.5, 0.45], [0.6, 0.4, 0.3, 0.1])
    assert (r.eer_low, r.eer_high, r.eer) == (0.0, 0.25, 0.125)
    assert r.thresholds["eer"] == 0.45


def test_eer_equal_sums_take_the_t1_interval():
    # Ng = Ni = 10. gen: .1, three at .5, six at .9; imp: five at 0, three at .5, two at .8.
    #   t        -inf  0  .1  .5  .8  .9  +inf
    #   #gen<t     0   0   0   1   4   4   10
    #   #imp>=t   10  10   5   5   2   0    0
    # t1 = .5 (1 <= 5; at .8 4 > 2), t2 = .8 (4 >= 2). Sums are equal (6/10 both), and FVC then
    # takes [FNMR(t1), FMR(t1)] = [.1, .5] at threshold .5 (not [FMR(t2), FNMR(t2)] = [.2, .4]).
    r = verification_report([0.1] + [0.5] * 3 + [0.9] * 6, [0.0] * 5 + [0.5] * 3 + [0.8] * 2)
    assert (r.eer_low, r.eer_high, r.eer) == (0.1, 0.5, pytest.approx(0.3))
    assert r.thresholds["eer"] == 0.5


def test_perfect_separation_has_zero_eer():
    # gen 3 4 above imp 1 2: at t = 3 FNMR = 0 and FMR = 0 (t1 = t2 = 3). Every operating point
    # is error-free: just above 2 all genuines pass; ZeroFNMR t = 3 has FMR 0.
    r = verification_report([3.0, 4.0], [1.0, 2.0])
    assert (r.eer, r.eer_low, r.eer_high) == (0.0, 0.0, 0.0)
    assert r.thresholds["eer"] == 3.0
    assert r.fmr100 == r.fmr1000 == r.zerofmr == r.zerofnmr == 0.0
    assert r.tar_at_far_1e3 == r.tar_at_far_1e4 == 1.0


def test_all_equal_scores_give_eer_one_half():
    # Every score 5. t in {-inf, 5, +inf}: FNMR 0, 0, 1; FMR 1, 1, 0. t1 = 5, t2 = +inf; sums
    # 0+1 <= 1+0 -> [FNMR(5), FMR(5)] = [0, 1], EER 1/2. ZeroFMR (t just above 5) rejects all
    # genuines: 1. ZeroFNMR (t = 5) accepts all impostors: 1.
    r = verification_report([5.0] * 3, [5.0] * 4)
    assert (r.eer_low, r.eer_high, r.eer) == (0.0, 1.0, 0.5)
    assert r.thresholds["eer"] == 5.0
    assert r.zerofmr == 1.0 and r.zerofnmr == 1.0 and r.tar_at_far_1e3 == 0.0


def test_reversed_scores_give_eer_one():
    # gen 1 2 below imp 3 4. FNMR: -inf 0, 1 0, 2 1/2, 3 1, 4 1, +inf 1;
    # FMR: 1, 1, 1, 1, 1/2, 0. t1 = t2 = 3 with FNMR = FMR = 1 -> EER 1.
    r = verification_report([1.0, 2.0], [3.0, 4.0])
    assert (r.eer_low, r.eer_high, r.eer) == (1.0, 1.0, 1.0)
    assert r.thresholds["eer"] == 3.0
    assert r.zerofmr == 1.0


def test_failed_pairs_count_as_rejections():
    # gen .9 .8 NaN, imp .1 .2 NaN .3; failures score -inf, still in Ng = 3 and Ni = 4.
    #   t        -inf .1  .2  .3  .8  .9  +inf
    #   #gen<t     0   1   1   1   1   2   3   (/3; the failed genuine is below every finite t)
    #   #imp>=t    4   3   2   1   0   0   0   (/4; the failed impostor is never accepted)
    # t1 = .2 (1/3 <= 1/2), t2 = .3 (1/3 >= 1/4); sums 5/6 > 7/12 -> [1/4, 1/3], EER 7/24.
    # (Dropping the failures instead would give perfect separation, EER 0.)
    # ZeroFMR: t just above .3 rejects only the failed genuine: 1/3. FNMR = 0 only at t = -inf
    # (accept everything), so ZeroFNMR = 1 and its threshold is -inf (null in JSON).
    r = verification_report([0.9, 0.8, NAN], [0.1, 0.2, NAN, 0.3])
    assert (r.eer_low, r.eer_high) == (0.25, pytest.approx(1 / 3))
    assert r.eer == pytest.approx(7 / 24) and r.thresholds["eer"] == 0.3
    assert r.zerofmr == pytest.approx(1 / 3) and r.tar_at_far_1e3 == pytest.approx(2 / 3)
    assert r.zerofnmr == 1.0 and r.thresholds["zerofnmr"] == -math.inf
    assert (r.n_genuine, r.n_impostor) == (3, 4)
    assert (r.failed, r.failed_genuine, r.failed_impostor) == (2, 1, 1)
    # -inf is read as a failure too: the same report
    assert verification_report([0.9, 0.8, -math.inf], [0.1, 0.2, -math.inf, 0.3]) == r
    assert fnmr([0.9, NAN], 0.0) == 0.5 and fmr([0.1, NAN], -1e300) == 0.5


def test_report_to_dict_is_json_safe():
    r = verification_report([0.9, 0.8, NAN], [0.1, 0.2, NAN, 0.3])
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["thresholds"]["zerofnmr"] is None  # -inf
    assert d["thresholds"]["eer"] == 0.3
    for key in ("eer", "eer_low", "eer_high", "fmr100", "fmr1000", "zerofmr", "zerofnmr",
                "tar_at_far_1e3", "tar_at_far_1e4"):
        assert 0.0 <= d[key] <= 1.0, key
    assert (d["n_genuine"], d["n_impostor"], d["failed"]) == (3, 4, 2)


def test_calibrate_threshold_by_hand():
    imp = [0.9, 0.8, 0.8, 0.5]  # Ni = 4
    # FMR 0: above the top score. 1/4: one false match allowed -> just above the 2nd score (.8).
    # 1/2: two allowed, but the 2nd and 3rd scores tie at .8; accepting .8 would give 3/4, so t
    # stays just above .8 (FMR 1/4). 3/4: just above the 4th score .5.
    assert calibrate_threshold(imp, 0.0) == up(0.9)
    assert calibrate_threshold(imp, 0.25) == up(0.8)
    assert calibrate_threshold(imp, 0.5) == up(0.8)
    assert calibrate_threshold(imp, 0.74) == up(0.8)  # floor(2.96) = 2
    assert calibrate_threshold(imp, 0.75) == up(0.5)
    # floor(0.29 * 100) must be 29 although 0.29 * 100 == 28.999999999999996 in floats: with
    # scores 0.00 .. 0.99, 29 false matches are 0.71 .. 0.99, so t is just above 0.70.
    assert calibrate_threshold(np.arange(100) / 100, 0.29) == up(0.70)


def test_calibrate_threshold_is_the_lowest_meeting_the_target():
    rng = np.random.default_rng(0)
    imp = np.round(rng.normal(size=500), 2)  # many ties
    for target in (0.0, 0.001, 0.01, 0.1, 0.5, 0.9):
        t = calibrate_threshold(imp, target)
        assert fmr(imp, t) <= target
        assert fmr(imp, np.nextafter(t, -np.inf)) > target  # one float lower breaks the target


def test_calibrate_threshold_with_failures_and_bad_targets():
    # Ni = 3, two failed; FMR 1/2 allows one false match: the one processed pair (.4) may be
    # accepted, failures never are: t is the float just above -inf, which is finite.
    t = calibrate_threshold([NAN, NAN, 0.4], 0.5)
    assert math.isfinite(t) and t < -1e300
    assert fmr([NAN, NAN, 0.4], t) == pytest.approx(1 / 3)
    for bad in (1.0, -0.1, NAN, "x", None):
        with pytest.raises(ValueError, match="target FMR"):
            calibrate_threshold([0.1, 0.2], bad)


@pytest.mark.parametrize("bad, match", [
    ([], "empty"),
    ([[0.1, 0.2]], "1-D"),
    ([0.1, math.inf], r"\+inf"),
    (["a", "b"], "must be numbers"),
])
def test_bad_score_lists_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        verification_report(bad, [0.1])
    with pytest.raises(ValueError, match="impostor scores"):
        verification_report([0.1], bad)


def _brute_force(gen: list[float], imp: list[float]) -> dict[str, Fraction]:
    """FVC indicators by direct counting at every candidate threshold, in exact fractions."""
    gen = [-math.inf if math.isnan(g) else g for g in gen]
    imp = [-math.inf if math.isnan(i) else i for i in imp]
    finite = sorted({s for s in gen + imp if math.isfinite(s)})
    # midpoints between neighbours too, to check that observed scores already visit every point
    mids = [(a + b) / 2 for a, b in zip(finite, finite[1:], strict=False)]
    ts = sorted([-math.inf, math.inf] + finite + mids)
    FMR = [Fraction(sum(1 for i in imp if i >= t), len(imp)) for t in ts]
    FNMR = [Fraction(sum(1 for g in gen if g < t), len(gen)) for t in ts]
    t1 = max(k for k in range(len(ts)) if FNMR[k] <= FMR[k])
    t2 = min(k for k in range(len(ts)) if FNMR[k] >= FMR[k])
    if FNMR[t1] + FMR[t1] <= FMR[t2] + FNMR[t2]:
        low, high = FNMR[t1], FMR[t1]
    else:
        low, high = FMR[t2], FNMR[t2]
    out = {"eer_low": low, "eer_high": high, "eer": (low + high) / 2}
    for name, cap in (("fmr100", Fraction(1, 100)), ("fmr1000", Fraction(1, 1000)),
                      ("zerofmr", Fraction(0))):
        out[name] = min(FNMR[k] for k in range(len(ts)) if FMR[k] <= cap)
    out["zerofnmr"] = min(FMR[k] for k in range(len(ts)) if FNMR[k] == 0)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_report_matches_brute_force_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    ng, ni = rng.integers(5, 60), rng.integers(5, 300)
    gen = rng.normal(1.0 + seed % 3, 1.0, ng)
    imp = rng.normal(0.0, 1.0, ni)
    if seed % 2:  # coarse scores: many ties, within and across the two sets
        gen, imp = np.round(gen, 1), np.round(imp, 1)
    if seed >= 3:  # some failures
        gen[rng.random(ng) < 0.1] = np.nan
        imp[rng.random(ni) < 0.1] = np.nan
    want = _brute_force(gen.tolist(), imp.tolist())
    r = verification_report(gen, imp)
    for key, value in want.items():
        assert getattr(r, key) == pytest.approx(float(value), abs=1e-12), key


def _brute_force_rank(sims: list[float], mates: list[bool]) -> int:
    """Position of the first mate after sorting by score, non-mates first among equal scores."""
    order = sorted(range(len(sims)), key=lambda g: (-sims[g], mates[g]))
    return 1 + [mates[g] for g in order].index(True)


def test_cmc_by_hand_with_absent_identity_and_ties():
    gallery = ["A", "B", "C", "A"]
    probes = ["A", "B", "D", "C"]
    sim = np.array([
        [0.90, 0.50, 0.95, 0.10],  # A: best mate .90; C (.95) above it -> rank 2
        [0.20, 0.80, 0.80, 0.30],  # B: mate .80 ties with C .80; ties count against -> rank 2
        [0.99, 0.10, 0.10, 0.10],  # D: not in the gallery -> rank 0, never found
        [0.10, 0.20, 0.70, 0.30],  # C: mate .70 is the top score -> rank 1
    ])
    r = cmc(sim, probes, gallery, max_rank=5)
    assert r.probe_ranks.tolist() == [2, 2, 0, 1]
    assert (r.n_probes, r.n_mated, r.n_counted) == (4, 3, 3)
    # excluded absent probe: rank 1 = 1/3, rank >= 2 = 3/3 (ranks past G = 4 repeat rank 4)
    assert r.rates.tolist() == pytest.approx([1 / 3, 1, 1, 1, 1])
    assert r.ranks.tolist() == [1, 2, 3, 4, 5] and r.rank(1) == pytest.approx(1 / 3)
    # counted as a miss: 1/4, then 3/4
    m = cmc(sim, probes, gallery, max_rank=3, absent="miss")
    assert m.rates.tolist() == pytest.approx([1 / 4, 3 / 4, 3 / 4]) and m.n_counted == 4
    json.dumps(m.to_dict(), allow_nan=False)
    with pytest.raises(IndexError):
        m.rank(4)


def test_cmc_failed_comparison_is_lowest():
    # probe C's only mate comparison failed (NaN = -inf): all 3 other entries rank above it -> 4
    sim = np.array([[0.1, 0.2, NAN, 0.3]])
    assert cmc(sim, ["C"], ["A", "B", "C", "A"]).probe_ranks.tolist() == [4]


def test_cmc_matches_brute_force_on_random_scores():
    rng = np.random.default_rng(3)
    gallery = rng.integers(0, 15, 40)
    probes = rng.integers(0, 20, 60)  # identities 15..19 are absent
    sim = np.round(rng.normal(size=(60, 40)), 1)  # ties
    sim[probes[:, None] == gallery[None, :]] += 1.0
    r = cmc(sim, probes, gallery, max_rank=40)
    for p in range(60):
        mates = (gallery == probes[p]).tolist()
        want = _brute_force_rank(sim[p].tolist(), mates) if any(mates) else 0
        assert r.probe_ranks[p] == want
    mated = [p for p in range(60) if probes[p] in gallery]
    for k in (1, 5, 40):
        want = sum(1 for p in mated if 1 <= r.probe_ranks[p] <= k) / len(mated)
        assert r.rank(k) == pytest.approx(want)
    assert r.rank(40) == 1.0


def test_cmc_bad_inputs():
    with pytest.raises(ValueError, match=r"\[P, G\]"):
        cmc(np.zeros(3), [1], [1, 2, 3])
    with pytest.raises(ValueError, match="labels"):
        cmc(np.zeros((2, 3)), [1], [1, 2, 3])
    with pytest.raises(ValueError, match="no probe identity"):
        cmc(np.zeros((1, 2)), [9], [1, 2])
    with pytest.raises(ValueError, match="max_rank"):
        cmc(np.zeros((1, 2)), [1], [1, 2], max_rank=0)
    with pytest.raises(ValueError, match="absent"):
        cmc(np.zeros((1, 2)), [1], [1, 2], absent="drop")


def test_metrics_do_not_import_jax():
    code = "import sys, ifvit_train.evaluation.metrics; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
