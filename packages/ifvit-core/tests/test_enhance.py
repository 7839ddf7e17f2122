"""Ridge enhancement (`ifvit_core.enhance`) against analytic ridge patterns.

Expected values come from the patterns themselves (the known angle of a sinusoid, the clean
pattern before noise), never from the functions under test.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ifvit_core.enhance import BACKGROUND, EnhanceConfig, enhance, gabor_bank, orientation_field

CFG = EnhanceConfig(ridge_period=7.0)
S = 96
_orient = jax.jit(orientation_field, static_argnums=2)
_enhance = jax.jit(enhance, static_argnums=2)


def _grid(h=S, w=S):
    return np.mgrid[0:h, 0:w].astype(np.float64)  # (y, x)


def ridges_at(theta: float, period: float = 7.0, h=S, w=S) -> np.ndarray:
    """Dark-ridge sinusoid whose ridges run along (cos theta, sin theta) in (x, y) pixels."""
    y, x = _grid(h, w)
    across = -x * math.sin(theta) + y * math.cos(theta)
    return 0.5 + 0.5 * np.cos(2 * math.pi * across / period)


def circles(cx: float, cy: float, period: float = 7.0):
    """Concentric ridges around (cx, cy): image, analytic ridge angle and radius, each [S, S]."""
    y, x = _grid()
    r = np.hypot(x - cx, y - cy)
    tangent = np.mod(np.arctan2(y - cy, x - cx) + math.pi / 2, math.pi)
    return 0.5 + 0.5 * np.cos(2 * math.pi * r / period), tangent, r


def angle_error_deg(a, b):
    """|a - b| modulo pi, in degrees (ridge orientations are undirected)."""
    return np.degrees(np.abs((np.asarray(a) - b + math.pi / 2) % math.pi - math.pi / 2))


def batch(*images):
    return jnp.asarray(np.stack(images)[..., None], jnp.float32)


INTERIOR = (slice(14, -14), slice(14, -14))


def test_orientation_of_straight_ridges_matches_the_analytic_angle():
    angles = (0.0, 0.3, math.pi / 4, 1.2, math.pi / 2, 2.0, 2.9)
    x = batch(*[ridges_at(t) for t in angles])
    theta, coherence = _orient(x, jnp.ones(x.shape[:3], bool), CFG)
    theta, coherence = np.asarray(theta), np.asarray(coherence)
    assert theta.min() >= 0.0 and theta.max() < math.pi
    for i, t in enumerate(angles):
        err = angle_error_deg(theta[i][INTERIOR], t)
        assert err.max() < 1.0, (t, err.max())  # measured: <= 0.06 deg
        assert coherence[i][INTERIOR].min() > 0.95


def test_orientation_of_a_varying_field_matches_the_analytic_angle():
    img, tangent, r = circles(30.0, 55.0)  # the angle covers all of [0, pi) over the image
    theta, _ = _orient(batch(img), jnp.ones((1, S, S), bool), CFG)
    err = angle_error_deg(np.asarray(theta)[0], tangent)
    far = (r > 2 * 7.0)
    far[:14], far[-14:], far[:, :14], far[:, -14:] = False, False, False, False
    assert np.median(err[far]) < 0.5 and err[far].max() < 3.0  # measured: 0.003 / 0.23 deg


def test_orientation_under_noise_stays_within_a_few_degrees():
    rng = np.random.default_rng(1)
    img, tangent, r = circles(30.0, 55.0)
    noisy = np.clip(img + rng.normal(0, 0.4, img.shape), 0, 1)
    theta, _ = _orient(batch(noisy), jnp.ones((1, S, S), bool), CFG)
    err = angle_error_deg(np.asarray(theta)[0], tangent)
    far = (r > 3 * 7.0)
    far[:14], far[-14:], far[:, :14], far[:, -14:] = False, False, False, False
    assert np.median(err[far]) < 3.0 and np.percentile(err[far], 95) < 8.0


def _corrupt(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise, 10% salt pixels and 12 black/white blobs of radius 3-6 px."""
    y, x = _grid()
    out = clean + rng.normal(0.0, 0.5, clean.shape)
    out[rng.random(clean.shape) < 0.1] = 1.0
    for _ in range(12):
        cy, cx = rng.integers(0, S, 2)
        out[np.hypot(y - cy, x - cx) < rng.integers(3, 7)] = rng.choice([0.0, 1.0])
    return np.clip(out, 0.0, 1.0)


def test_enhancement_restores_a_noisy_sinusoid():
    rng = np.random.default_rng(0)
    clean = [circles(30.0, 55.0)[0], ridges_at(0.7)]
    noisy = [_corrupt(c, rng) for c in clean]
    out = np.asarray(_enhance(batch(*noisy), jnp.ones((2, S, S), bool), CFG))[..., 0]
    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return np.corrcoef(a[INTERIOR].ravel(), b[INTERIOR].ravel())[0, 1]

    for c, n, o in zip(clean, noisy, out, strict=True):
        before, after = corr(n, c), corr(o, c)
        # measured: before 0.46 / 0.47, after 0.93 / 0.96
        assert before < 0.6 < 0.85 < after, (before, after)


@pytest.mark.parametrize("ratio", [0.8, 1.25])
def test_a_period_off_by_a_quarter_is_still_restored(ratio):
    """The spread of real periods (p10-p90 of FVC prints: 0.88x-1.13x the median) is covered."""
    rng = np.random.default_rng(6)
    clean = circles(30.0, 55.0, period=7.0 * ratio)[0]
    noisy = np.clip(clean + rng.normal(0.0, 0.5, clean.shape), 0.0, 1.0)
    out = np.asarray(_enhance(batch(noisy), jnp.ones((1, S, S), bool), CFG))[0, ..., 0]
    def corr(a: np.ndarray) -> float:
        return np.corrcoef(a[INTERIOR].ravel(), clean[INTERIOR].ravel())[0, 1]

    assert corr(noisy) < 0.6 < 0.85 < corr(out)  # measured: 0.57 -> 0.92 / 0.95


def test_background_outside_the_mask_is_the_model_background():
    img = ridges_at(1.0)
    mask = np.zeros((S, S), bool)
    mask[20:80, 10:70] = True
    out = np.asarray(_enhance(batch(img), jnp.asarray(mask[None]), CFG))[0, ..., 0]
    assert BACKGROUND == 1.0  # docs/contracts.md: white background
    assert np.all(out[~mask] == 1.0)
    inside = out[30:70, 20:60]
    assert inside.min() < 0.1 and inside.max() > 0.9  # ridges and valleys inside the mask


def test_empty_mask_gives_the_background_everywhere():
    out = np.asarray(_enhance(batch(ridges_at(0.2)), jnp.zeros((1, S, S), bool), CFG))
    assert np.all(out == 1.0)


def test_polarity_dark_ridges_stay_dark():
    for img in (ridges_at(0.4), 1.0 - ridges_at(0.4)):  # both phases of the pattern
        out = np.asarray(_enhance(batch(img), jnp.ones((1, S, S), bool), CFG))[0, ..., 0]
        r = np.corrcoef(out[INTERIOR].ravel(), img[INTERIOR].ravel())[0, 1]
        assert r > 0.9, r


def test_each_image_is_enhanced_independently_of_its_batch():
    rng = np.random.default_rng(2)
    imgs = [_corrupt(ridges_at(t), rng) for t in (0.1, 1.1, 2.1)]
    masks = np.ones((3, S, S), bool)
    masks[1, :, :40] = False
    together = np.asarray(_enhance(batch(*imgs), jnp.asarray(masks), CFG))
    for i in range(3):
        alone = np.asarray(_enhance(batch(imgs[i]), jnp.asarray(masks[i:i + 1]), CFG))[0]
        np.testing.assert_allclose(together[i], alone, atol=1e-5)


@pytest.mark.parametrize("hw", [(8, 8), (24, 40)])
def test_shapes_dtype_and_range_under_jit(hw):
    h, w = hw
    x = jnp.asarray(ridges_at(0.5, h=h, w=w)[None, ..., None], jnp.float32)
    m = jnp.ones((1, h, w), bool)
    out = _enhance(x, m, CFG)
    theta, coh = _orient(x, m, CFG)
    assert out.shape == (1, h, w, 1) and out.dtype == jnp.float32
    assert theta.shape == coh.shape == (1, h, w) and theta.dtype == jnp.float32
    assert np.isfinite(np.asarray(out)).all() and 0.0 <= float(out.min()) <= float(out.max()) <= 1.0


def test_gabor_bank_kernel_n_is_tuned_to_orientation_n():
    bank = gabor_bank(CFG)  # [K, K, 1, N]
    n = bank.shape[-1]
    assert n == CFG.num_orientations
    np.testing.assert_allclose(bank.sum(axis=(0, 1, 2)), 0.0, atol=1e-6)  # flat area -> 0
    k = bank.shape[0]
    for i in range(0, n, 3):
        patch = ridges_at(i * math.pi / n, h=k, w=k, period=7.0)
        resp = np.abs(np.einsum("hw,hwn->n", patch - patch.mean(), bank[:, :, 0]))
        assert int(np.argmax(resp)) == i, (i, resp.round(3))


def test_config_round_trip_and_validation():
    c = EnhanceConfig.for_downscale(1.6, num_orientations=12)
    assert c.ridge_period == pytest.approx(9.5 / 1.6) and c.num_orientations == 12
    assert EnhanceConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="ridge_period"):
        EnhanceConfig(ridge_period=1.0)
    with pytest.raises(ValueError, match="unknown"):
        EnhanceConfig.from_dict({**c.to_dict(), "bogus": 1})


def test_fft_gabor_responses_equal_the_direct_convolution():
    from ifvit_core.enhance.gabor import gabor_responses

    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.standard_normal((2, 40, 56, 1)), jnp.float32)
    cfg = EnhanceConfig(ridge_period=6.0, num_orientations=8)
    ref = jax.lax.conv_general_dilated(x, jnp.asarray(gabor_bank(cfg)), (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       precision=jax.lax.Precision.HIGHEST)
    np.testing.assert_allclose(np.asarray(gabor_responses(x, cfg)), np.asarray(ref), atol=2e-5)


@pytest.mark.parametrize("mode", ["constant", "edge"])
def test_separable_filter_equals_numpy_correlation(mode):
    from ifvit_core.enhance.filters import gaussian_1d, separable

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 12, 17, 2)).astype(np.float32)
    kr, kc = gaussian_1d(1.3), gaussian_1d(0.9, order=1)
    rr, rc = len(kr) // 2, len(kc) // 2
    pad = np.pad(x, ((0, 0), (rr, rr), (rc, rc), (0, 0)), mode=mode)
    ref = np.zeros_like(x)
    for a in range(len(kr)):
        for b in range(len(kc)):
            ref += kr[a] * kc[b] * pad[:, a:a + 12, b:b + 17]
    np.testing.assert_allclose(np.asarray(separable(jnp.asarray(x), kr, kc, mode)), ref, atol=1e-5)
