"""Batch schema validation catches wrong keys, dtypes, ranks and GT lengths."""

from __future__ import annotations

import numpy as np
import pytest

from ifvit_data.schema import MODULE1_KEYS, validate_batch


def _batch(b: int = 2, h: int = 32, w: int = 40) -> dict[str, np.ndarray]:
    n = (h // 8) * (w // 8)
    return {
        "image0": np.zeros((b, h, w, 1), np.float32),
        "image1": np.zeros((b, h, w, 1), np.float32),
        "mask0": np.zeros((b, h, w), bool),
        "mask1": np.zeros((b, h, w), bool),
        "gt_i": np.zeros((b, n), np.int32),
        "gt_j": np.zeros((b, n), np.int32),
        "gt_valid": np.zeros((b, n), bool),
        "gt_pts0": np.zeros((b, n, 2), np.float32),
        "gt_pts1": np.zeros((b, n, 2), np.float32),
        "transform": np.zeros((b, 2, 3), np.float32),
    }


def test_validate_batch() -> None:
    validate_batch(_batch(), "module1")
    assert set(_batch()) == set(MODULE1_KEYS)
    bad = _batch()
    bad["gt_i"] = bad["gt_i"].astype(np.int64)
    with pytest.raises(ValueError, match="'gt_i'"):
        validate_batch(bad, "module1")
    with pytest.raises(ValueError, match="keys"):
        validate_batch({**_batch(), "extra": np.zeros(2)}, "module1")
    short = _batch()
    short["gt_i"] = short["gt_i"][:, :-1]
    with pytest.raises(ValueError, match="gt length"):
        validate_batch(short, "module1")
    with pytest.raises(ValueError, match="rank"):
        validate_batch(_batch(), "module1", batched=False)
    with pytest.raises(ValueError, match="keys"):
        validate_batch(_batch(), "module2")
