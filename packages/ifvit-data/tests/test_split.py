"""Finger-disjoint splits and subset renumbering."""

import numpy as np
import pytest

from ifvit_data.split import Subset, split_by_finger


class _Source:
    def __init__(self, fingers):
        self.fingers = np.asarray(fingers)
        self.impressions = np.arange(len(fingers)) % 3 + 1

    def __len__(self):
        return len(self.fingers)

    def __getitem__(self, i):
        return {"finger": int(self.fingers[i]), "index": int(i), "tag": f"r{i}"}


def test_split_is_finger_disjoint_and_complete():
    src = _Source(np.repeat(np.arange(10), 3))
    train, held = split_by_finger(src, 0.3, seed=1)
    assert len(set(held.fingers)) == 3 and len(set(train.fingers)) == 7
    assert not set(train.fingers) & set(held.fingers)
    assert sorted(np.concatenate([train.indices, held.indices])) == list(range(30))
    again, _ = split_by_finger(src, 0.3, seed=1)
    np.testing.assert_array_equal(again.indices, train.indices)
    _, other = split_by_finger(src, 3, seed=2)
    assert len(set(other.fingers)) == 3


def test_subset_renumbers_records():
    src = _Source([5, 5, 6, 7])
    sub = Subset(src, [2, 3])
    rec = sub[1]
    assert rec["index"] == 1 and rec["source_index"] == 3 and rec["tag"] == "r3"
    np.testing.assert_array_equal(sub.fingers, [6, 7])


@pytest.mark.parametrize("holdout", [0.0, 1.5, 10, -1])
def test_bad_holdout(holdout):
    with pytest.raises(ValueError):
        split_by_finger(_Source(np.repeat(np.arange(10), 2)), holdout)
