"""Coarse ground truth: exactness under affines, image agreement for every augmentation,
mutuality."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ifvit_data.augment import CorruptionConfig, apply_affine, corrupt, rotation_matrix, warp_affine
from ifvit_data.foreground import foreground_mask
from ifvit_data.groundtruth import affine_maps, coarse_ground_truth, empty_ground_truth
from ifvit_data.preprocess import CropConfig, crop_print


def _random_affine(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    a = rotation_matrix(shape, rng.uniform(-60, 60), tuple(rng.uniform(-12, 12, 2)))
    a[:, :2] *= rng.uniform(0.8, 1.2)
    a[:, :2] += rng.normal(0, 0.05, (2, 2))  # a little shear / anisotropy: a general affine
    return a


def _check_contract(gt: dict[str, np.ndarray], n: int) -> None:
    assert gt["gt_i"].dtype == np.int32 and gt["gt_i"].shape == (n,)
    assert gt["gt_j"].dtype == np.int32 and gt["gt_valid"].dtype == bool
    assert gt["gt_pts0"].dtype == np.float32 and gt["gt_pts0"].shape == (n, 2)
    v = gt["gt_valid"]
    k = int(v.sum())
    assert v[:k].all() and not v[k:].any()  # prefix mask
    assert (
        (gt["gt_i"][k:] == 0).all()
        and (gt["gt_j"][k:] == 0).all()
        and (gt["gt_pts1"][k:] == 0).all()
    )
    assert np.all(np.diff(gt["gt_i"][:k]) > 0)  # stable compaction: ascending i
    assert len(np.unique(gt["gt_j"][:k])) == k  # mutual check: no j used twice


@pytest.mark.parametrize("seed", range(25))
def test_affine_gt_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape0, shape1 = (128, 136), (144, 128)
    a = _random_affine(rng, shape0)
    fwd, bwd = affine_maps(a)
    gt = coarse_ground_truth(fwd, bwd, shape0, shape1)
    n = (128 // 8) * (136 // 8)
    _check_contract(gt, n)
    k = int(gt["gt_valid"].sum())
    assert k > n // 4
    i = gt["gt_i"][:k]
    np.testing.assert_array_equal(gt["gt_pts0"][:k], np.stack([i % 17, i // 17], 1) * 8.0)
    np.testing.assert_array_equal(
        gt["gt_pts1"][:k], apply_affine(a, gt["gt_pts0"][:k]).astype(np.float32)
    )
    # j is the rounded coarse cell of p1, in bounds; and cycle-consistent.
    c1 = np.round(apply_affine(a, gt["gt_pts0"][:k]) / 8).astype(int)
    np.testing.assert_array_equal(gt["gt_j"][:k], c1[:, 1] * 16 + c1[:, 0])
    back = np.round(apply_affine(cv2.invertAffineTransform(a), c1 * 8.0) / 8).astype(int)
    np.testing.assert_array_equal(back[:, 1] * 17 + back[:, 0], i)


def test_identity_gives_every_cell_and_masks_drop() -> None:
    a = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    fwd, bwd = affine_maps(a)
    gt = coarse_ground_truth(fwd, bwd, (64, 64), (64, 64))
    assert gt["gt_valid"].all() and (gt["gt_i"] == gt["gt_j"]).all()
    mask = np.zeros((64, 64), bool)
    mask[:32] = True
    gt = coarse_ground_truth(fwd, bwd, (64, 64), (64, 64), mask0=mask)
    assert gt["gt_valid"].sum() == 32
    gt = coarse_ground_truth(fwd, bwd, (64, 64), (64, 64), mask1=~mask)
    assert gt["gt_valid"].sum() == 32
    gt = coarse_ground_truth(fwd, bwd, (64, 64), (64, 64), drop_index0=True)
    assert gt["gt_valid"].sum() == 63 and 0 not in gt["gt_i"][:63]
    gt = coarse_ground_truth(fwd, bwd, (64, 64), (64, 64), stride=16)
    assert gt["gt_i"].shape == (16,)


def test_nan_means_no_correspondence() -> None:
    def fwd(p: np.ndarray) -> np.ndarray:
        q = p.copy()
        q[p[:, 0] >= 32] = np.nan
        return q

    gt = coarse_ground_truth(fwd, lambda p: p, (64, 64), (64, 64))
    assert gt["gt_valid"].sum() == 32
    assert np.isfinite(gt["gt_pts1"]).all()
    e = empty_ground_truth((64, 64))
    _check_contract(e, 64)
    assert not e["gt_valid"].any()


def _sample(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    m = pts.astype(np.float32)
    return cv2.remap(img, m[:, None, 0].copy(), m[:, None, 1].copy(), cv2.INTER_LINEAR).ravel()


def _check_agreement(img0: np.ndarray, kind: str, seed: int) -> None:
    """Warps a (corrupted) print by a random affine and compares both images at the GT points."""
    rng = np.random.default_rng(seed)
    src = img0 if kind == "none" else corrupt(img0, kind, CorruptionConfig(), rng)
    a = _random_affine(rng, img0.shape)
    img1 = warp_affine(src, a)
    mask0 = foreground_mask(img0)
    mask1 = warp_affine(mask0.astype(np.uint8), a, fill=0, nearest=True).astype(bool)
    fwd, bwd = affine_maps(a)
    gt = coarse_ground_truth(fwd, bwd, img0.shape, img1.shape, mask0, mask1)
    k = int(gt["gt_valid"].sum())
    assert k >= 40
    p0, p1 = gt["gt_pts0"][:k], gt["gt_pts1"][:k]
    v0, v1 = _sample(img0, p0), _sample(img1, p1)
    # Geometry: the corrupted source at p0 and the warped image at p1 are the same pixel, and a
    # 4-px error would be visible.
    geo = np.corrcoef(_sample(src, p0), v1)[0, 1]
    off = np.corrcoef(_sample(src, p0), _sample(img1, p1 + 4.0))[0, 1]
    assert geo > 0.93 and off < geo - 0.1, (kind, seed, geo, off)
    # Appearance: the clean print still agrees; shuffled partners are the control.
    corr = np.corrcoef(v0, v1)[0, 1]
    ctrl = np.corrcoef(v0, np.roll(v1, 7))[0, 1]
    assert corr > (0.97 if kind == "none" else 0.5), (kind, seed, corr)
    assert abs(ctrl) < corr - 0.3, (kind, seed, corr, ctrl)


KINDS = ["none", "noise", "dryness", "pressure"]


@pytest.mark.parametrize("kind", KINDS)
def test_images_agree_at_gt_points_for_every_augmentation(
    kind: str, make_ridges: Callable[..., np.ndarray]
) -> None:
    for seed in range(6):
        _check_agreement(make_ridges(seed=seed).astype(np.float32) / 255, kind, seed)


@pytest.mark.parametrize("kind", KINDS)
def test_images_agree_on_real_prints(kind: str, real_fvc: Path) -> None:
    for seed, name in enumerate(["101_1.tif", "103_2.tif", "104_3.tif"]):
        img = np.array(Image.open(real_fvc / name))
        window, _, _ = crop_print(img, CropConfig((160, 160)))
        _check_agreement(window, kind, seed)
