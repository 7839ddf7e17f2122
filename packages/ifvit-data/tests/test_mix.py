"""`ifvit_data.mix`: the seeded per-element source choice and the joined record view."""

from __future__ import annotations

import grain
import numpy as np
import pytest

from ifvit_data.mix import BLOCK, JoinedRecords, WeightedMix, normalise_weights


def _parents(n: int = 3) -> list[grain.MapDataset]:
    """Parent p's element k is (p, k): the mix's output names its source and position."""
    return [grain.MapDataset.range(10**9).map(lambda k, p=p: (p, k)) for p in range(n)]


def test_each_element_comes_from_a_source_with_its_weight() -> None:
    mix = WeightedMix(_parents(), [2.0, 0.0, 6.0], seed=3)
    n = 2 * BLOCK + 100  # crosses block boundaries
    out = [mix[k] for k in range(n)]
    assert [k for _, k in out] == list(range(n))  # element k is element k of its source
    src = np.array([p for p, _ in out])
    assert not (src == 1).any()  # weight 0: never drawn
    # binomial(n, 0.25): sd 0.0066; 5 sd = 0.033 (a uniform or swapped mix is far outside)
    assert abs((src == 0).mean() - 0.25) < 0.033
    again = WeightedMix(_parents(), [1.0, 0.0, 3.0], seed=3)  # same normalised weights
    assert [again[k] for k in range(0, n, 7)] == out[::7]
    other = WeightedMix(_parents(), [1.0, 0.0, 3.0], seed=4)
    assert [other[k][0] for k in range(200)] != list(src[:200])


def test_process_slices_are_the_global_stream() -> None:
    mix = WeightedMix(_parents(2), [1.0, 1.0], seed=0)
    whole = [mix[k] for k in range(40)]
    for shard in range(2):
        part = mix[shard::2]
        assert [part[i] for i in range(20)] == whole[shard::2]


@pytest.mark.parametrize("weights, n, msg", [
    ([1.0], 2, "1 mix weights for 2 data folders"),
    ([1.0, -0.5], 2, "each must be >= 0"),
    ([0.0, 0.0], 2, "at least one > 0"),
    ([1.0, float("nan")], 2, "each must be >= 0"),
])
def test_bad_weights(weights, n, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        normalise_weights(weights, n)


class _Records:
    def __init__(self, fingers: list[int], tag: str):
        self.fingers = np.array(fingers)
        self.impressions = np.arange(len(fingers)) + 1
        self.tag = tag

    def __len__(self) -> int:
        return len(self.fingers)

    def __getitem__(self, k: int) -> dict:
        return {"image": f"{self.tag}{k}", "finger": int(self.fingers[k]), "index": k}


def test_joined_records_keep_fingers_apart_and_interleave_them() -> None:
    a, b = _Records([7, 7, 3, 3], "a"), _Records([7, 7, 9, 9, 1], "b")
    j = JoinedRecords([a, b])
    assert len(j) == 9 and j.part.tolist() == [0] * 4 + [1] * 5
    # a: 3 -> rank 0, 7 -> rank 1; b: 1 -> 0, 7 -> 1, 9 -> 2; id = rank * 2 + part
    assert j.fingers.tolist() == [2, 2, 0, 0, 3, 3, 5, 5, 1]
    assert [j[k]["image"] for k in range(9)] == [f"a{k}" for k in range(4)] + [
        f"b{k}" for k in range(5)]
    assert j[5]["index"] == 5 and j[5]["finger"] == 3 and j[5]["part"] == 1
