"""Branch ground truth: raw-frame correspondences carried through alignment, resize and ROI crop.

The reference is a known pattern: image 0 is a linear ramp (x or y), image 1 its affine warp. A
branch cell of image 0 and the point the mapping gives for it in image 1's branch input must show
the same ramp value, i.e. the same raw point of the pattern — whatever alignment (even a wrong one)
produced the branch inputs.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ifvit_core import geometry
from ifvit_core.ifvit import registration, targets

H = W = 64
G, R = 48, 32  # global branch side (a 0.75x resize) and ROI side


def _affine(deg, tx, ty, cx=31.5, cy=31.5):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    rot = np.array([[c, -s], [s, c]])
    t = np.array([cx + tx, cy + ty]) - rot @ np.array([cx, cy])
    return np.concatenate([rot, t[:, None]], axis=1).astype(np.float32)


def _raw_gt(A):
    """Independent numpy GT: cell corners of image 0 and their exact image-1 points (in bounds)."""
    rows, cols = np.divmod(np.arange((H // 8) * (W // 8)), W // 8)
    p0 = np.stack([cols, rows], 1).astype(np.float64) * 8
    p1 = p0 @ A[:, :2].T.astype(np.float64) + A[:, 2]
    ok = (p1[:, 0] >= 0) & (p1[:, 0] <= W - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= H - 1)
    n = len(p0)
    gi, gv, g1 = np.zeros(n, np.int32), np.zeros(n, bool), np.zeros((n, 2), np.float32)
    idx = np.flatnonzero(ok)
    gi[: len(idx)], gv[: len(idx)], g1[: len(idx)] = idx, True, p1[idx]
    return gi, gv, g1


def _inputs(image0, image1, A01):
    """Module 2 inputs for a given alignment, with full foregrounds."""
    b = image0.shape[0]
    A01 = jnp.asarray(A01)
    aligned1, _ = geometry.warp_image(image1, geometry.invert_affine(A01), (H, W), fill=1.0)
    full = jnp.ones((b, H, W), bool)
    overlap, origin = geometry.overlap_roi(full, full, R)
    ali = registration.Alignment(A01, aligned1, overlap, origin, jnp.zeros(b, jnp.int32),
                                 jnp.ones(b, bool), jnp.zeros((b, 1), bool))
    return registration.module2_inputs(image0, ali, global_hw=(G, G), roi_size=R)


def _sample(img, pts):
    """Bilinear sample of [h, w] at [N, 2] (x, y) points (numpy reference)."""
    x, y = pts[:, 0], pts[:, 1]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    def v(yy, xx):
        return img[np.clip(yy, 0, img.shape[0] - 1), np.clip(xx, 0, img.shape[1] - 1)]

    return (v(y0, x0) * (1 - fx) * (1 - fy) + v(y0, x0 + 1) * fx * (1 - fy)
            + v(y0 + 1, x0) * (1 - fx) * fy + v(y0 + 1, x0 + 1) * fx * fy)


@pytest.mark.parametrize("error_deg", [0.0, 4.0])
def test_branch_points_land_on_the_same_pattern_point(error_deg):
    A = _affine(20.0, 3.0, -2.0)  # the true map image 0 -> image 1
    A01 = _affine(20.0 + error_deg, 3.0, -1.0)  # the alignment "actually used" (maybe wrong)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    gi, gv, g1 = _raw_gt(A)
    for ramp in (xx / W, yy / H):
        image0 = jnp.asarray(ramp)[None, ..., None]
        image1, _ = geometry.warp_image(image0, jnp.asarray(A)[None], (H, W), fill=1.0)
        inp = _inputs(image0, image1, A01[None])
        for frame, side, b0, b1 in ((inp.global_frame, G, inp.global0, inp.global1),
                                    (inp.roi_frame, R, inp.roi0, inp.roi1)):
            q1, known = targets.branch_points(gi[None], gv[None], g1[None], (H, W),
                                              jnp.asarray(A01)[None], frame, (side, side))
            q1, known = np.asarray(q1[0]), np.asarray(known[0])
            rows, cols = np.divmod(np.arange((side // 8) ** 2), side // 8)
            u = np.stack([cols, rows], 1) * 8.0
            # Interior of both branch inputs (resize borders are not linear; white outside).
            keep = known & (q1.min(1) >= 3) & (q1.max(1) <= side - 4) & (u.min(1) >= 3)
            keep &= u.max(1) <= side - 4
            v0 = np.asarray(b0[0, ..., 0])[u[keep, 1].astype(int), u[keep, 0].astype(int)]
            v1 = _sample(np.asarray(b1[0, ..., 0]), q1[keep])
            assert keep.sum() >= 4
            np.testing.assert_allclose(v1, v0, atol=2e-3)


def test_branch_points_match_closed_form_affine():
    A = _affine(-35.0, -4.0, 5.0)
    A01 = _affine(-30.0, -2.0, 4.0)
    gi, gv, g1 = _raw_gt(A)
    frame = registration.resize_frame((H, W), (G, G), 1)
    q1, known = targets.branch_points(gi[None], gv[None], g1[None], (H, W), jnp.asarray(A01)[None],
                                      frame, (G, G))
    F = np.asarray(frame[0], np.float64)
    def inv(M):
        return np.linalg.inv(np.vstack([M, [0, 0, 1]]))[:2]

    rows, cols = np.divmod(np.arange((G // 8) ** 2), G // 8)
    u = np.stack([cols, rows], 1) * 8.0

    def ap(M, p):
        return p @ M[:, :2].T + M[:, 2]

    want = ap(F, ap(inv(A01.astype(np.float64)), ap(A.astype(np.float64), ap(inv(F), u))))
    known = np.asarray(known[0])
    assert known.sum() > 10
    np.testing.assert_allclose(np.asarray(q1[0])[known], want[known], atol=1e-3)
    # A cell is known iff its raw point lies inside the raw GT grid hull where every neighbour
    # had ground truth: never outside image 1.
    p1 = ap(A.astype(np.float64), ap(inv(F), u))
    assert np.all((p1[known] >= -8) & (p1[known] <= W + 8))


def test_branch_ground_truth_is_one_to_one_and_rounds():
    A = _affine(10.0, 2.0, 2.0)
    gi, gv, g1 = _raw_gt(A)
    frame = registration.resize_frame((H, W), (G, G), 1)
    mask = jnp.ones((1, (G // 8) ** 2), bool).at[0, :6].set(False)
    gt = jax.jit(targets.branch_ground_truth, static_argnums=(3, 6))(
        gi[None], gv[None], g1[None], (H, W), jnp.asarray(A)[None], frame, (G, G), mask)
    q1, known = targets.branch_points(gi[None], gv[None], g1[None], (H, W), jnp.asarray(A)[None],
                                      frame, (G, G))
    v = np.asarray(gt["gt_valid"][0])
    j = np.asarray(gt["gt_j"][0])
    assert v.sum() > 10
    assert len(np.unique(j[v])) == v.sum()  # one-to-one
    c = np.round(np.asarray(q1[0]) / 8)
    np.testing.assert_array_equal(j[v], (c[:, 1] * (G // 8) + c[:, 0])[v])
    assert not v[:6].any() and not np.isin(j[v], np.arange(6)).any()  # token mask on both sides
    assert np.all(np.asarray(known[0])[v])


def test_no_ground_truth_gives_no_targets():
    n = (H // 8) * (W // 8)
    gt = targets.branch_ground_truth(
        np.zeros((2, n), np.int32), np.zeros((2, n), bool), np.zeros((2, n, 2), np.float32),
        (H, W), geometry.identity_affine((2,)), registration.resize_frame((H, W), (G, G), 2),
        (G, G))
    assert not np.asarray(gt["gt_valid"]).any()


def test_pseudo_labels_of_exact_matches_are_the_exact_targets():
    """Module 1 rows that match every in-bounds cell to its exact point (all RANSAC inliers) give,
    through `pseudo_ground_truth`, the same branch targets as the exact ground truth; a row below
    the confidence floor or off RANSAC's inliers gives none."""
    A = _affine(12.0, 3.0, -2.0)
    gi, gv, g1 = _raw_gt(A)
    n = (H // 8) * (W // 8)
    rows, cols = np.divmod(np.arange(n), W // 8)
    p1 = np.stack([cols, rows], 1).astype(np.float32) * 8 @ A[:, :2].T + A[:, 2]
    inb = (p1[:, 0] >= 0) & (p1[:, 0] <= W - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= H - 1)
    dense = {"i_ids": jnp.arange(n)[None], "valid": jnp.asarray(inb)[None],
             "mconf": jnp.full((1, n), 0.9), "mkpts1_f": jnp.asarray(p1)[None],
             "mkpts1_c": jnp.zeros((1, n, 2))}
    image = jnp.zeros((1, H, W, 1))
    inputs = _inputs(image, image, A[None])
    exact = targets.module2_targets(gi[None], gv[None], g1[None], (H, W), jnp.asarray(A)[None],
                                    inputs)
    pseudo = targets.module2_targets(*targets.pseudo_ground_truth(dense, jnp.ones((1, n), bool),
                                                                  0.5),
                                     (H, W), jnp.asarray(A)[None], inputs)
    for k in exact:
        np.testing.assert_array_equal(np.asarray(pseudo[k]), np.asarray(exact[k]), err_msg=k)
    assert np.asarray(exact["global_gt_valid"]).sum() > 10
    for inl, floor in ((jnp.zeros((1, n), bool), 0.5), (jnp.ones((1, n), bool), 0.95)):
        none = targets.module2_targets(*targets.pseudo_ground_truth(dense, inl, floor), (H, W),
                                       jnp.asarray(A)[None], inputs)
        assert not np.asarray(none["global_gt_valid"]).any()
