"""EpochShuffle: a permutation per epoch, deterministic, different across epochs and seeds."""

from __future__ import annotations

import grain
import numpy as np

from ifvit_data.shuffle import EpochShuffle


def test_epoch_permutations() -> None:
    ds = EpochShuffle(grain.MapDataset.range(50), seed=3)
    e0 = [ds[i] for i in range(50)]
    e1 = [ds[i] % 50 for i in range(50, 100)]
    assert sorted(e0) == list(range(50)) and sorted(e1) == list(range(50))
    assert e0 != e1 and e0 != list(range(50))
    assert e0 == [EpochShuffle(grain.MapDataset.range(50), seed=3)[i] for i in range(50)]
    assert e0 != [EpochShuffle(grain.MapDataset.range(50), seed=4)[i] for i in range(50)]
    assert list(ds[10:13]) == e0[10:13]
    # (Shipping it to Grain worker processes is covered by test_pipeline_workers.py.)
    # Upstream random maps see the epoch in the index: the same element gets a new generator.
    noisy = (
        grain.MapDataset.range(50)
        .seed(0)
        .random_map(lambda x, rng: (x, int(rng.integers(1 << 30))))
    )
    sh = EpochShuffle(noisy, seed=3)
    first = dict(sh[i] for i in range(50))
    second = dict(sh[i] for i in range(50, 100))
    assert first.keys() == second.keys() and all(first[k] != second[k] for k in first)
    rep = list(EpochShuffle(grain.MapDataset.range(5), seed=0).repeat(3))
    assert len(rep) == 15 and all(
        sorted(np.array(rep[k : k + 5]) % 5) == list(range(5)) for k in (0, 5, 10)
    )
