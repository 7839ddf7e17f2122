"""Tests for ifvit_core.geometry against closed-form cases and naive numpy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from ifvit_core import geometry as geo

# One compiled executable per function and shape keeps the suite fast (eager mode would compile
# every primitive separately).
_ransac = jax.jit(geo.ransac_similarity, static_argnames=("num_iters", "model", "refine_iters"))
_warp = jax.jit(geo.warp_image, static_argnames=("out_shape",))
_overlap = jax.jit(geo.overlap_roi, static_argnames=("roi_size",))
_crop = jax.jit(geo.crop, static_argnames=("size",))


def _sim(deg, scale, tx, ty):
    c, s = scale * math.cos(math.radians(deg)), scale * math.sin(math.radians(deg))
    return np.array([[c, -s, tx], [s, c, ty]], np.float64)


def _apply_np(A, p):
    return p @ A[:, :2].T + A[:, 2]


# --------------------------------------------------------------------------------------------------
# Affine algebra and least-squares fits
# --------------------------------------------------------------------------------------------------


def test_affine_algebra_against_homogeneous_matrices():
    A1 = np.array([[1.2, 0.3, 5.0], [-0.2, 0.9, -4.0]])
    A2 = _sim(30, 0.8, -3.0, 7.0)
    h = lambda a: np.vstack([a, [0, 0, 1]])  # noqa: E731
    np.testing.assert_allclose(geo.invert_affine(A1), np.linalg.inv(h(A1))[:2], atol=1e-5)
    np.testing.assert_allclose(geo.compose_affine(A2, A1), (h(A2) @ h(A1))[:2], atol=1e-5)
    p = np.array([[1.0, 2.0], [-3.0, 0.5]])
    np.testing.assert_allclose(geo.apply_affine(A1, p), [[6.8, -2.4], [1.55, -2.95]], atol=1e-5)


def _np_weighted_lstsq(src, dst, w, model):
    """Weighted least squares by np.linalg.lstsq on sqrt(w)-scaled linear systems."""
    rows, rhs = [], []
    for (x, y), (u, v), wi in zip(src, dst, w, strict=True):
        sw = math.sqrt(wi)
        if model == "similarity":  # unknowns a, b, tx, ty
            rows += [[sw * x, -sw * y, sw, 0], [sw * y, sw * x, 0, sw]]
        else:  # unknowns a11 a12 tx a21 a22 ty
            rows += [[sw * x, sw * y, sw, 0, 0, 0], [0, 0, 0, sw * x, sw * y, sw]]
        rhs += [sw * u, sw * v]
    sol = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    if model == "similarity":
        a, b, tx, ty = sol
        return np.array([[a, -b, tx], [b, a, ty]])
    return sol.reshape(2, 3)


def test_fits_match_numpy_weighted_lstsq():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 128, size=(2, 20, 2))
    dst = np.stack(
        [_apply_np(_sim(37, 1.05, 12, -7), src[0]), _apply_np(_sim(-10, 0.9, 3, 4), src[1])]
    )
    dst = dst + rng.normal(0, 2.0, size=dst.shape)
    w = rng.uniform(0, 1, size=(2, 20))
    w[:, :4] = 0.0  # ignored points: corrupt them heavily
    dst[:, :4] += 500.0
    for model, fit in (("similarity", geo.fit_similarity), ("affine", geo.fit_affine)):
        f32 = [a.astype(np.float32) for a in (src, dst, w)]
        got = np.asarray(jax.jit(fit)(*f32))
        for b in range(2):
            ref = _np_weighted_lstsq(src[b], dst[b], w[b], model)
            np.testing.assert_allclose(got[b], ref, atol=2e-3, rtol=1e-3, err_msg=model)


def test_fits_degenerate_inputs_are_finite():
    src = np.zeros((1, 4, 2), np.float32)  # all points coincide
    dst = np.ones((1, 4, 2), np.float32)
    for fit in (jax.jit(geo.fit_similarity), jax.jit(geo.fit_affine)):
        assert np.all(np.isfinite(fit(src, dst, np.ones((1, 4), np.float32))))
        assert np.all(np.isfinite(fit(src, dst, np.zeros((1, 4), np.float32))))


# --------------------------------------------------------------------------------------------------
# RANSAC
# --------------------------------------------------------------------------------------------------

M = 80


def _ransac_problem(transforms, n_valid, outlier_frac=0.4, sigma=0.3, seed=0):
    rng = np.random.default_rng(seed)
    b = len(transforms)
    src = np.full((b, M, 2), 1e4, np.float32)  # padding holds junk on purpose
    dst = np.full((b, M, 2), -1e4, np.float32)
    valid = np.zeros((b, M), bool)
    true_inl = np.zeros((b, M), bool)
    for k, (A, n) in enumerate(zip(transforms, n_valid, strict=True)):
        p = rng.uniform(0, 128, size=(n, 2))
        q = _apply_np(A, p) + rng.normal(0, sigma, size=(n, 2))
        is_out = rng.permutation(n) < int(round(outlier_frac * n))
        q[is_out] = rng.uniform(0, 128, size=(is_out.sum(), 2))
        src[k, :n], dst[k, :n], valid[k, :n] = p, q, True
        true_inl[k, :n] = ~is_out
    return src, dst, valid, true_inl


def test_ransac_similarity_recovers_known_transforms_batched():
    transforms = [_sim(37, 1.05, 12, -7), _sim(-20, 0.95, -5, 3), _sim(55, 1.1, 20, 15)]
    n_valid = [80, 60, 30]
    src, dst, valid, true_inl = _ransac_problem(transforms, n_valid)
    out = _ransac(jax.random.PRNGKey(0), src, dst, valid, min_inliers=10)  # 8 px, 256 iterations
    assert out.A.shape == (3, 2, 3) and out.inliers.shape == (3, M)
    assert np.all(out.ok)
    for k, A_true in enumerate(transforms):
        A = np.asarray(out.A[k], np.float64)
        ang = math.atan2(A[1, 0], A[0, 0]) - math.atan2(A_true[1, 0], A_true[0, 0])
        ang_err = abs(math.degrees(ang))
        p = src[k][true_inl[k]].astype(np.float64)
        reproj = np.linalg.norm(_apply_np(A, p) - _apply_np(A_true, p), axis=1).mean()
        assert ang_err < 0.5, (k, ang_err)
        assert reproj < 0.5, (k, reproj)
        inl = np.asarray(out.inliers[k])
        assert not inl[~valid[k]].any()
        assert inl[true_inl[k]].all()  # σ=0.3 noise is far below the 8 px threshold
        # Extra inliers can only be outliers that happen to land within the threshold of the model.
        res_out = np.linalg.norm(_apply_np(A_true, src[k]) - dst[k], axis=1)
        lucky = (~true_inl[k]) & valid[k] & (res_out < 9.0)
        assert inl.sum() <= true_inl[k].sum() + lucky.sum()
        assert int(out.num_inliers[k]) == inl.sum()


def test_ransac_pair_result_is_independent_of_its_batch():
    transforms = [_sim(37, 1.05, 12, -7), _sim(-20, 0.95, -5, 3), _sim(55, 1.1, 20, 15)]
    src, dst, valid, _ = _ransac_problem(transforms, [40, 12, 30], outlier_frac=0.6, seed=4)
    key = jax.random.key(5)
    kw = dict(num_iters=2, refine_iters=0)  # two hypotheses, no refit: results depend on the key
    together = _ransac(key, src, dst, valid, **kw)
    for k in range(3):  # alone, and in another position of a batch with other neighbours
        alone = _ransac(key, src[k:k + 1], dst[k:k + 1], valid[k:k + 1], **kw)
        moved = _ransac(key, src[[k, k - 1]], dst[[k, k - 1]], valid[[k, k - 1]], **kw)
        np.testing.assert_array_equal(np.asarray(moved.inliers[0]), np.asarray(together.inliers[k]))
        np.testing.assert_array_equal(np.asarray(alone.inliers[0]), np.asarray(together.inliers[k]))
        np.testing.assert_allclose(np.asarray(alone.A[0]), np.asarray(together.A[k]), atol=1e-5)
    # the check is sensitive: other keys give other results for at least one pair
    other = _ransac(jax.random.key(6), src, dst, valid, **kw)
    assert not np.allclose(np.asarray(other.A), np.asarray(together.A), atol=1e-3)


def test_ransac_similarity_with_confidence_weights():
    transforms = [_sim(37, 1.05, 12, -7), _sim(-20, 0.95, -5, 3)]
    src, dst, valid, true_inl = _ransac_problem(transforms, [70, 50], seed=1)
    w = np.random.default_rng(2).uniform(0.2, 1.0, size=valid.shape).astype(np.float32)
    w[0, :5] = 0.0  # zero weight == invalid
    out = _ransac(jax.random.PRNGKey(1), src, dst, valid, weights=w)
    assert np.all(out.ok)
    assert not np.asarray(out.inliers)[0, :5].any()
    for k, A_true in enumerate(transforms):
        p = src[k][true_inl[k]]
        A = np.asarray(out.A[k], np.float64)
        err = np.linalg.norm(_apply_np(A, p) - _apply_np(A_true, p), axis=1)
        assert err.mean() < 0.5


def test_ransac_affine_recovers_known_affine():
    transforms = [
        np.array([[1.1, 0.2, 5.0], [-0.1, 0.9, -3.0]]),
        np.array([[0.8, -0.3, 20.0], [0.25, 1.15, 2.0]]),
        np.array([[1.0, 0.0, -8.0], [0.1, 1.0, 6.0]]),
    ]
    src, dst, valid, true_inl = _ransac_problem(transforms, [80, 50, 35], outlier_frac=0.3, seed=3)
    out = _ransac(jax.random.PRNGKey(2), src, dst, valid, model="affine")
    assert np.all(out.ok)
    for k, A_true in enumerate(transforms):
        A = np.asarray(out.A[k], np.float64)
        np.testing.assert_allclose(A[:, :2], A_true[:, :2], atol=0.01)
        p = src[k][true_inl[k]]
        assert np.linalg.norm(_apply_np(A, p) - _apply_np(A_true, p), axis=1).mean() < 0.5
    # A similarity cannot explain the shear of pair 0: its fit is visibly worse.
    sim = _ransac(jax.random.PRNGKey(2), src, dst, valid, min_inliers=10)
    p = src[0][true_inl[0]]
    A_sim = np.asarray(sim.A[0], np.float64)
    err_sim = np.linalg.norm(_apply_np(A_sim, p) - _apply_np(transforms[0], p), axis=1)
    assert err_sim.mean() > 1.0


def test_ransac_too_few_points_falls_back_to_identity():
    transforms = [_sim(37, 1.05, 12, -7)] * 3
    src, dst, valid, _ = _ransac_problem(transforms, [6, 1, 0], outlier_frac=0.0, sigma=0.0)
    out = _ransac(jax.random.PRNGKey(0), src, dst, valid, min_inliers=10)
    assert not np.any(out.ok)
    np.testing.assert_array_equal(out.A, np.tile(np.eye(2, 3), (3, 1, 1)))
    np.testing.assert_array_equal(out.num_inliers, [0, 0, 0])
    assert not np.any(out.inliers)
    # With min_inliers below the 6 clean points, the first pair is accepted and exact.
    out2 = _ransac(jax.random.PRNGKey(0), src, dst, valid, min_inliers=5)
    assert list(np.asarray(out2.ok)) == [True, False, False]
    np.testing.assert_allclose(out2.A[0], _sim(37, 1.05, 12, -7), atol=0.05)


def test_ransac_jit_compiles_once_for_new_data():
    traces = []

    @jax.jit
    def run(key, s, d, v):
        traces.append(1)
        return geo.ransac_similarity(key, s, d, v, num_iters=64)

    for seed in range(3):
        transforms = [_sim(10 * seed, 1.0, seed, -seed)] * 2
        src, dst, valid, _ = _ransac_problem(transforms, [40 + seed, 30], seed=seed)
        out = run(jax.random.PRNGKey(seed), src, dst, valid)
        assert np.all(out.ok)
    assert len(traces) == 1


# --------------------------------------------------------------------------------------------------
# Warping
# --------------------------------------------------------------------------------------------------


def _np_warp(image, A, out_shape, fill):
    """Naive bilinear cv2.warpAffine reference: out(q) = image(A^-1 q), BORDER_CONSTANT."""
    h, w, c = image.shape
    inv = np.linalg.inv(np.vstack([A, [0, 0, 1]]))
    out = np.zeros((*out_shape, c))
    for qy in range(out_shape[0]):
        for qx in range(out_shape[1]):
            x, y, _ = inv @ np.array([qx, qy, 1.0])
            x0, y0 = math.floor(x), math.floor(y)
            acc = np.zeros(c)
            for yy in (y0, y0 + 1):
                for xx in (x0, x0 + 1):
                    wt = (1 - abs(x - xx)) * (1 - abs(y - yy))
                    val = image[yy, xx] if (0 <= xx < w and 0 <= yy < h) else np.full(c, fill)
                    acc += wt * val
            out[qy, qx] = acc
    return out


def test_warp_image_matches_numpy_reference():
    rng = np.random.default_rng(4)
    img = rng.uniform(size=(2, 9, 11, 2)).astype(np.float32)
    A = np.stack([_sim(23, 1.1, 1.5, -2.25), [[0.9, 0.15, 2.3], [-0.1, 1.05, 0.7]]])
    A = A.astype(np.float32)
    out, valid = _warp(img, A, (10, 12), fill=0.75)
    assert out.shape == (2, 10, 12, 2) and valid.shape == (2, 10, 12)
    for b in range(2):
        ref = _np_warp(img[b].astype(np.float64), A[b].astype(np.float64), (10, 12), 0.75)
        np.testing.assert_allclose(out[b], ref, atol=1e-5)
    # valid pixels are exactly those whose pre-image lies within the source grid.
    inv = np.linalg.inv(np.vstack([A[1], [0, 0, 1]]))
    qy, qx = np.mgrid[0:10, 0:12]
    p = np.einsum("ij,jhw->ihw", inv, np.stack([qx, qy, np.ones_like(qx)]).astype(np.float64))
    np.testing.assert_array_equal(valid[1], (p[0] >= 0) & (p[0] <= 10) & (p[1] >= 0) & (p[1] <= 8))


def test_warp_image_convention_moves_dot_like_cv2():
    img = np.zeros((2, 32, 32, 1), np.float32)
    img[:, 20, 10] = 1.0  # dot at (x=10, y=20)
    A = np.stack([
        [[1.0, 0.0, 5.0], [0.0, 1.0, -3.0]],  # translation by (+5, -3)
        [[0.0, -1.0, 31.0], [1.0, 0.0, 0.0]],  # rotation by 90° about the centre (15.5, 15.5)
    ]).astype(np.float32)
    out, valid = _warp(img, A, (32, 32), fill=0.0)
    out = np.asarray(out)[..., 0]
    assert np.unravel_index(out[0].argmax(), out[0].shape) == (17, 15)  # (row y, col x)
    assert np.unravel_index(out[1].argmax(), out[1].shape) == (10, 11)
    np.testing.assert_allclose(out[0].sum(), 1.0, atol=1e-6)
    v = np.asarray(valid[0])
    assert not v[:, :5].any() and v[:29, 5:].all() and not v[29:].any()
    assert np.asarray(valid[1]).all()


# --------------------------------------------------------------------------------------------------
# Overlap and ROI
# --------------------------------------------------------------------------------------------------


def test_overlap_roi_centroid_and_crop():
    h, w = 80, 100
    m0 = np.zeros((3, h, w), bool)
    m1 = np.zeros((3, h, w), bool)
    m0[0, 10:50, 20:70] = True
    m1[0, 30:80, 0:60] = True  # overlap rows 30..49, cols 20..59: centroid (39.5, 39.5)
    m0[1, 0:6, 90:100] = True
    m1[1] = True  # overlap at the top-right corner: ROI clamped inside
    overlap, origin = _overlap(m0, m1, 16)
    np.testing.assert_array_equal(overlap, m0 & m1)
    x0 = round(39.5 - 7.5)
    np.testing.assert_array_equal(origin[0], [x0, x0])
    np.testing.assert_array_equal(origin[1], [w - 16, 0])
    # Empty overlap: the image centre (49.5, 39.5).
    np.testing.assert_array_equal(origin[2], [round(49.5 - 7.5), round(39.5 - 7.5)])
    img = np.tile(np.arange(h * w, dtype=np.float32).reshape(1, h, w, 1), (3, 1, 1, 1))
    crops = _crop(img, origin, 16)
    for b in range(3):
        xo, yo = np.asarray(origin[b])
        np.testing.assert_array_equal(crops[b], img[b, yo : yo + 16, xo : xo + 16])
    # A window hanging off the image is padded with `fill`, not shifted.
    c = np.asarray(_crop(img[:1], jnp.array([[-2, -3]]), (5, 4), fill=-1.0))[0, ..., 0]
    assert np.all(c[:3] == -1.0) and np.all(c[:, :2] == -1.0)
    np.testing.assert_array_equal(c[3:, 2:], img[0, 0:2, 0:2, 0])


def test_on_mask_nearest_pixel_and_outside():
    mask = np.zeros((1, 4, 5), bool)
    mask[0, 1, 2] = mask[0, 3, 4] = True
    pts = np.array([[[2.0, 1.0], [2.4, 0.6], [2.6, 1.0], [4.0, 3.0], [4.49, 3.4], [4.6, 3.0],
                     [-0.6, 0.0], [0.0, 0.0]]], np.float32)
    got = np.asarray(geo.on_mask(jnp.asarray(mask), jnp.asarray(pts)))
    # (2,1) and its nearest-pixel neighbourhood hit; (2.6,1) rounds to x=3 (off); (4.6,3) rounds
    # to x=5, outside the image (not clipped back onto the mask)
    np.testing.assert_array_equal(got, [[True, True, False, True, True, False, False, False]])
