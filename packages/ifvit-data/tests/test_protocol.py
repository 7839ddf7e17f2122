"""Evaluation pair lists: FVC counts and all-pairs labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ifvit_data.protocol import all_pairs, fvc_pairs
from ifvit_data.readers import scan


def _index(n_fingers: int, n_imp: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    f, i = np.meshgrid(np.arange(n_fingers) + 1, np.arange(n_imp) + 1, indexing="ij")
    perm = np.random.default_rng(seed).permutation(f.size)  # records in any order
    return f.ravel()[perm], i.ravel()[perm]


def test_fvc_protocol_counts_100x8() -> None:
    fingers, imps = _index(100, 8)
    pairs, gen = fvc_pairs(fingers, imps)
    assert gen.sum() == 2800 and (gen == 0).sum() == 4950 and pairs.dtype == np.int32
    g, im = pairs[gen == 1], pairs[gen == 0]
    assert (fingers[g[:, 0]] == fingers[g[:, 1]]).all() and (imps[g[:, 0]] < imps[g[:, 1]]).all()
    assert (fingers[im[:, 0]] < fingers[im[:, 1]]).all()
    assert (imps[im] == 1).all()  # first impressions only
    assert len({tuple(sorted(p)) for p in pairs.tolist()}) == len(pairs)  # no symmetric duplicates


def test_all_pairs_counts() -> None:
    fingers, _ = _index(100, 8)
    pairs, gen = all_pairs(fingers)
    assert len(pairs) == 319600 and gen.sum() == 2800
    assert (pairs[:, 0] < pairs[:, 1]).all()


def test_fvc_protocol_on_real_index(real_fvc: Path) -> None:
    entries, _ = scan(real_fvc, "fvc")
    pairs, gen = fvc_pairs(
        np.array([e.finger for e in entries]), np.array([e.impression for e in entries])
    )
    # 4 fingers x 3 impressions: every pair of a finger's impressions, 4 * C(3, 2) genuine;
    # first impressions of two different fingers, C(4, 2) impostor.
    assert len(entries) == 12 and gen.sum() == 4 * 3 and (gen == 0).sum() == 6
    assert {entries[i].impression for i in pairs[gen == 0].ravel()} == {1}
    subj = [e.subject for e in entries]
    same = {(a, b) for a in range(12) for b in range(a + 1, 12) if subj[a] == subj[b]}
    assert {tuple(sorted(p)) for p in pairs[gen == 1].tolist()} == same


def test_sampled_impostor_pairs_baselines_protocol():
    from ifvit_data.protocol import sampled_impostor_pairs

    rng = np.random.default_rng(3)
    fingers = np.repeat(np.arange(10), 8)
    imps = np.tile(np.arange(1, 9), 10)
    perm = rng.permutation(80)  # record order must not matter
    fingers, imps = fingers[perm], imps[perm]
    pairs, gen = sampled_impostor_pairs(fingers, imps, 2000, seed=0)
    assert (gen == 1).sum() == 280 and (gen == 0).sum() == 2000
    imp = pairs[gen == 0]
    assert (fingers[imp[:, 0]] < fingers[imp[:, 1]]).all()  # cross-finger, f < g
    assert len({tuple(p) for p in imp}) == 2000
    g = pairs[gen == 1]
    assert (fingers[g[:, 0]] == fingers[g[:, 1]]).all() and (imps[g[:, 0]] < imps[g[:, 1]]).all()
    again, _ = sampled_impostor_pairs(fingers, imps, 2000, seed=0)
    np.testing.assert_array_equal(again, pairs)
    other, _ = sampled_impostor_pairs(fingers, imps, 2000, seed=1)
    assert not np.array_equal(other, pairs)
    every, gen_all = sampled_impostor_pairs(fingers, imps, 10_000)
    assert (gen_all == 0).sum() == 45 * 64  # 2,880 cross-finger pairs
    # lexicographic (f, i, g, j): the first is finger 0 impr. 1 vs finger 1 impr. 1, then impr. 2
    first = every[gen_all == 0][:2]
    got = [(fingers[a], imps[a], fingers[b], imps[b]) for a, b in first]
    assert got == [(0, 1, 1, 1), (0, 1, 1, 2)]
