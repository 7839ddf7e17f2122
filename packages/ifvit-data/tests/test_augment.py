"""Augmentations: Perlin noise statistics, morphology polarity, rotation geometry, seeding."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from ifvit_data.augment import (
    CorruptionConfig,
    NoiseBank,
    PerlinConfig,
    apply_affine,
    corrupt,
    corrupt_and_rotate,
    dryness,
    invert_affine,
    perlin_noise,
    pressure,
    rotation_matrix,
    warp_affine,
)


def test_perlin_range_smoothness_and_period() -> None:
    rng = np.random.default_rng(0)
    n = perlin_noise((256, 256), 32.0, rng, octaves=1)
    assert n.dtype == np.float32 and n.shape == (256, 256)
    assert -1.0 <= n.min() < -0.3 and 0.3 < n.max() <= 1.0
    # Gradient noise is smooth: neighbouring pixels differ far less than the field's spread.
    assert np.abs(np.diff(n, axis=1)).mean() < 0.1 * n.std() * 32 / 8
    # ...and decorrelates beyond one lattice period.
    a, b = n[:, :-64].ravel(), n[:, 64:].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.2
    assert np.corrcoef(n[:, :-2].ravel(), n[:, 2:].ravel())[0, 1] > 0.9
    # Gradient noise is zero at lattice points: with the phase removed, check mean |n| is low there.


def test_perlin_octaves_add_detail_and_seed_determinism() -> None:
    one = perlin_noise((128, 128), 32.0, np.random.default_rng(1), octaves=1)
    four = perlin_noise((128, 128), 32.0, np.random.default_rng(1), octaves=4)
    rough = lambda x: np.abs(np.diff(x, axis=0)).mean() / x.std()  # noqa: E731
    assert rough(four) > 1.5 * rough(one)
    again = perlin_noise((128, 128), 32.0, np.random.default_rng(1), octaves=4)
    np.testing.assert_array_equal(four, again)
    with pytest.raises(ValueError, match="period"):
        perlin_noise((8, 8), 1.0, np.random.default_rng(0))


def test_noise_bank_deterministic_crops() -> None:
    bank = NoiseBank((64, 64), PerlinConfig(), count=4, seed=3)
    bank2 = NoiseBank((64, 64), PerlinConfig(), count=4, seed=3)
    np.testing.assert_array_equal(bank.tiles, bank2.tiles)
    a = bank.sample((32, 40), np.random.default_rng(5))
    b = bank2.sample((32, 40), np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 40) and np.abs(a).max() <= 1.0
    with pytest.raises(ValueError, match="larger than"):
        bank.sample((65, 10), np.random.default_rng(0))


def _ridge_width(img: np.ndarray) -> float:
    """Fraction of dark pixels inside the print (ridges are dark)."""
    inner = img[40:120, 40:104]
    return float((inner < 0.5).mean())


def test_morphology_polarity(make_ridges: Callable[..., np.ndarray]) -> None:
    img = make_ridges().astype(np.float32) / 255
    base = _ridge_width(img)
    assert _ridge_width(dryness(img, 3, 1)) < base - 0.05  # dilation thins dark ridges
    assert _ridge_width(pressure(img, 3, 1)) > base + 0.05  # erosion thickens them
    assert dryness(img, 3, 1).dtype == np.float32


def test_rotation_matrix_matches_warp() -> None:
    """A dark dot at p0 lands at A @ p0 after cv2.warpAffine (forward matrix, pixel-centre
    origin)."""
    img = np.ones((101, 121), np.float32)
    p0 = np.array([[30.0, 20.0]])
    img[20, 30] = 0.0
    a = rotation_matrix(img.shape, 37.0, (3.0, -2.0))
    out = warp_affine(cv2.GaussianBlur(img, (0, 0), 1.5), a)
    y, x = np.unravel_index(np.argmin(out), out.shape)
    p1 = apply_affine(a, p0)[0]
    assert np.hypot(x - p1[0], y - p1[1]) <= 1.0
    # The centre is a fixed point of a pure rotation; the inverse undoes the map.
    c = np.array([[60.0, 50.0]])
    np.testing.assert_allclose(apply_affine(rotation_matrix(img.shape, 45.0), c), c, atol=1e-9)
    np.testing.assert_allclose(apply_affine(invert_affine(a), apply_affine(a, p0)), p0, atol=1e-9)
    assert out[0, 0] == 1.0 or out[-1, -1] == 1.0  # white fill in the uncovered corners


def test_corrupt_and_rotate_seeded_and_ranged(make_ridges: Callable[..., np.ndarray]) -> None:
    img = make_ridges().astype(np.float32) / 255
    cfg = CorruptionConfig()
    kinds = set()
    for s in range(30):
        out, a, kind = corrupt_and_rotate(img, cfg, np.random.default_rng(s))
        out2, a2, kind2 = corrupt_and_rotate(img, cfg, np.random.default_rng(s))
        np.testing.assert_array_equal(out, out2)
        np.testing.assert_array_equal(a, a2)
        kinds.add(kind)
        angle = np.degrees(np.arctan2(a[1, 0], a[0, 0]))
        assert abs(angle) <= 60.0 + 1e-9
        assert (
            out.dtype == np.float32 and out.shape == img.shape and 0 <= out.min() and out.max() <= 1
        )
    assert kinds == {"noise", "dryness", "pressure"}
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(img, "blur", cfg, np.random.default_rng(0))


def test_morphology_growth_cap() -> None:
    from ifvit_data.augment.morphology import MorphologyConfig, random_params

    rng = np.random.default_rng(0)
    drawn = {
        random_params(MorphologyConfig(kernel=(2, 4), iterations=(1, 2)), rng) for _ in range(300)
    }
    assert drawn == {(2, 1), (2, 2), (3, 1), (4, 1)}  # (3, 2) and (4, 2) would grow by 4-6 px
    wide = {
        random_params(MorphologyConfig(kernel=(2, 4), iterations=(1, 2), max_growth=6), rng)
        for _ in range(300)
    }
    assert (4, 2) in wide


def test_fit_affine_recovers_a_known_affine_and_falls_back_below_three_points():
    from ifvit_data.augment.geometric import fit_affine

    a = np.array([[0.9, -0.2, 12.5], [0.3, 1.1, -4.0]])
    src = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [7.0, 3.0], [50.0, 80.0]])
    dst = src @ a[:, :2].T + a[:, 2]  # exact images of the points, computed here
    got = fit_affine(src, dst)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_allclose(got, a, atol=1e-5)
    np.testing.assert_array_equal(fit_affine(src[:2], dst[:2]), np.eye(2, 3))
    fallback = np.array([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    np.testing.assert_array_equal(fit_affine(src[:2], dst[:2], fallback=fallback), fallback)
