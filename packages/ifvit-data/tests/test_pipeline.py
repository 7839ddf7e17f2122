"""Grain pipelines: determinism, epochs, resume, sharding, Module-2 sampling, contract shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ifvit_data.augment.geometric import apply_affine
from ifvit_data.memory import MemorySource
from ifvit_data.pipeline import (
    MatchPairConfig,
    PairConfig,
    eval_dataset,
    make_iterator,
    module1_dataset,
    module2_dataset,
)
from ifvit_data.preprocess import CropConfig
from ifvit_data.protocol import fvc_pairs
from ifvit_data.schema import validate_batch
from ifvit_data.shards import RecordSource, write_shards

SMALL = PairConfig(crop=CropConfig((64, 64), jitter=4.0), noise_bank=4)
SHIFTS = [(0.0, 0.0), (7.0, -5.0), (-9.0, 4.0)]


@pytest.fixture(scope="module")
def shard_dir(
    tmp_path_factory: pytest.TempPathFactory, make_ridges: Callable[..., np.ndarray]
) -> Path:
    """6 fingers x 3 impressions; impression k is the finger's base print translated by
    SHIFTS[k]."""
    recs = []
    for f in range(6):
        base = make_ridges(112, 104, seed=f)
        for k, t in enumerate(SHIFTS):
            a = np.array([[1.0, 0, t[0]], [0, 1.0, t[1]]])
            img = cv2.warpAffine(
                base, a, (104, 112), borderMode=cv2.BORDER_CONSTANT, borderValue=255
            )
            recs.append(
                {
                    "image": img,
                    "subject": str(f),
                    "finger": f,
                    "impression": k + 1,
                    "dpi": 500.0,
                    "source": f"{f}_{k + 1}.png",
                }
            )
    out = tmp_path_factory.mktemp("shards") / "db"
    write_shards(recs, out, records_per_shard=5)
    return out


def _collect(it: Any, n: int) -> list[dict[str, np.ndarray]]:
    return [next(it) for _ in range(n)]


def _same(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        for x, y in zip(a, b, strict=True)
    )


def test_module1_contract_and_determinism(shard_dir: Path) -> None:
    src = RecordSource(shard_dir)
    ds = module1_dataset(src, SMALL, seed=7, batch_size=4, num_epochs=2)
    b1 = list(make_iterator(ds, num_threads=1))
    b2 = list(
        make_iterator(
            module1_dataset(src, SMALL, seed=7, batch_size=4, num_epochs=2), num_threads=2
        )
    )
    assert len(b1) == 9 and _same(b1, b2)  # 36 pairs / 4; thread count does not matter
    for b in b1:
        validate_batch(b, "module1")
        assert b["image0"].shape == (4, 64, 64, 1) and b["gt_i"].shape == (4, 64)
        assert b["gt_valid"].sum() > 0
        k = b["gt_valid"][0].sum()
        np.testing.assert_allclose(
            apply_affine(b["transform"][0], b["gt_pts0"][0, :k]), b["gt_pts1"][0, :k], atol=1e-3
        )
    other = list(make_iterator(module1_dataset(src, SMALL, seed=8, batch_size=4, num_epochs=2)))
    assert not _same(b1, other)
    # The second epoch is reshuffled and re-augmented.
    e1 = np.concatenate([b["transform"] for b in b1[:4]])
    e2 = np.concatenate([b["transform"] for b in b1[5:]])
    assert not np.allclose(e1[:16], e2[:16])


def test_resume_mid_epoch(shard_dir: Path) -> None:
    src = RecordSource(shard_dir)
    ds = module1_dataset(src, SMALL, seed=3, batch_size=2, num_epochs=None)
    it = make_iterator(ds)
    _collect(it, 3)
    state = it.get_state()
    expect = _collect(it, 4)
    it2 = make_iterator(module1_dataset(src, SMALL, seed=3, batch_size=2, num_epochs=None))
    it2.set_state(state)
    assert _same(_collect(it2, 4), expect)


def test_shards_disjoint_and_complete(shard_dir: Path) -> None:
    src = RecordSource(shard_dir)
    pairs, gen = fvc_pairs(src.fingers, src.impressions)
    seen = []
    for s in range(3):
        for b in eval_dataset(
            src, pairs, gen, CropConfig((64, 64)), batch_size=4, shard_index=s, shard_count=3
        ):
            validate_batch(b, "eval")
            seen += list(zip(b["key0"].tolist(), b["key1"].tolist(), strict=True))
    assert sorted(seen) == sorted(map(tuple, pairs.tolist())) and len(set(seen)) == len(seen)
    with pytest.raises(ValueError, match="shard_index"):
        eval_dataset(
            src, pairs, gen, CropConfig((64, 64)), batch_size=4, shard_index=3, shard_count=3
        )
    # Training streams: process slices are disjoint, and together they are exactly the 1-process
    # stream.
    whole = {
        b["transform"].tobytes()
        for b in module1_dataset(src, SMALL, seed=0, batch_size=1, num_epochs=2)
    }
    tr = [set() for _ in range(2)]
    for s in range(2):
        for b in module1_dataset(
            src, SMALL, seed=0, batch_size=1, num_epochs=2, shard_index=s, shard_count=2
        ):
            tr[s].add(b["transform"].tobytes())
    assert len(tr[0]) == len(tr[1]) == 18 and not tr[0] & tr[1] and tr[0] | tr[1] == whole


def test_module2_sampling(shard_dir: Path) -> None:
    src = RecordSource(shard_dir)
    cfg = MatchPairConfig(pair=SMALL, genuine_ratio=0.5)
    batches = list(make_iterator(module2_dataset(src, cfg, seed=1, batch_size=6, num_epochs=4)))
    gen, l0, l1 = (
        np.concatenate([b[k] for b in batches]) for k in ("is_genuine", "label0", "label1")
    )
    for b in batches:
        validate_batch(b, "module2")
        assert not b["gt_valid"].any()  # real genuine pairs and impostors carry no GT
    assert ((l0 == l1) == (gen == 1)).all() and set(l0.tolist()) == set(range(6))
    assert 0.3 < gen.mean() < 0.7
    syn = MatchPairConfig(pair=SMALL, genuine_ratio=1.0, synthetic_fraction=1.0)
    for b in module2_dataset(src, syn, seed=1, batch_size=6):
        assert b["gt_valid"].any(axis=1).all() and (b["is_genuine"] == 1).all()


def test_module2_correspondence_hook(shard_dir: Path) -> None:
    """Known translations between impressions become exact GT inside the crop windows."""
    src = RecordSource(shard_dir)

    def corr(a: dict, b: dict) -> tuple[Callable, Callable]:
        ta, tb = np.array(SHIFTS[a["impression"] - 1]), np.array(SHIFTS[b["impression"] - 1])
        return (lambda p: p - ta + tb), (lambda p: p - tb + ta)

    cfg = MatchPairConfig(
        pair=PairConfig(crop=CropConfig((64, 64)), noise_bank=4), genuine_ratio=1.0
    )
    n = 0
    for b in module2_dataset(src, cfg, seed=0, batch_size=3, correspondence=corr):
        for e in range(3):
            k = int(b["gt_valid"][e].sum())
            assert k > 10
            p0, p1 = b["gt_pts0"][e, :k], b["gt_pts1"][e, :k]
            np.testing.assert_allclose(apply_affine(b["transform"][e], p0), p1, atol=1e-3)
            v0 = b["image0"][e, p0[:, 1].astype(int), p0[:, 0].astype(int), 0]
            q = np.round(p1).astype(int)
            np.testing.assert_allclose(b["image1"][e, q[:, 1], q[:, 0], 0], v0, atol=1 / 255)
            n += 1
    assert n == 18


def test_memory_source_matches_shards(shard_dir: Path) -> None:
    src = RecordSource(shard_dir)
    mem = MemorySource([src[i] for i in range(len(src))])
    a = list(module1_dataset(src, SMALL, seed=5, batch_size=6))
    b = list(module1_dataset(mem, SMALL, seed=5, batch_size=6))
    assert _same(a, b)


def test_real_fvc_eval_protocol_end_to_end(real_fvc: Path, tmp_path: Path) -> None:
    """Ingest the real 4 x 3 prints, build the FVC pairs from the manifest, stream the batches."""
    from ifvit_data.ingest import ingest

    ingest(real_fvc, "fvc", tmp_path / "db", records_per_shard=5)
    src = RecordSource(tmp_path / "db")
    pairs, gen = fvc_pairs(src.fingers, src.impressions)
    n_gen = n_imp = 0
    for b in make_iterator(eval_dataset(src, pairs, gen, CropConfig((128, 128)), batch_size=8)):
        validate_batch(b, "eval")
        same = src.fingers[b["key0"]] == src.fingers[b["key1"]]
        assert (same == (b["is_genuine"] == 1)).all()
        n_gen += int(b["is_genuine"].sum())
        n_imp += int((b["is_genuine"] == 0).sum())
        assert 0.2 < b["image0"].mean() < 0.9  # real ridges in the windows, not white padding
    # FVC protocol, 4 fingers x 3 impressions: genuine 4 * C(3, 2), impostor C(4, 2) (first imps.)
    assert (n_gen, n_imp) == (4 * 3, 6)
