"""Neck whitening (`ifvit_train.training.whiten`): the fitted transform whitens, and folding it into
the network computes exactly the unfolded formula."""

import numpy as np
import pytest

from ifvit_train.serving.bundle import load_bundle
from ifvit_train.training.necks import Whitening, fit_whitening, fit_within_finger, fold_whitening


def test_fit_whitening_gives_unit_covariance_and_zero_mean():
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((6, 6)) * np.array([10.0, 3, 1, 0.5, 0.1, 0.01])  # anisotropic
    h = rng.standard_normal((5000, 6)) @ mix + 7.0
    w = fit_whitening(h, eps=1e-12)
    z = (h - w.mean) @ w.matrix
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(6), atol=1e-4)  # eps * lam_max
    # the floor: directions of small variance are scaled by at most 1/sqrt(eps * lambda_max)
    floored = fit_whitening(h, eps=1e-2)
    lam = np.linalg.eigvalsh(np.cov((h - floored.mean) @ floored.matrix, rowvar=False))
    assert lam.max() <= 1.0 + 1e-9 and lam.min() < 0.1


def test_fit_whitening_refuses_too_few_vectors():
    with pytest.raises(ValueError, match="needs more than 6 vectors"):
        fit_whitening(np.ones((6, 6)))


def test_fit_within_finger_whitens_the_spread_of_each_finger():
    """Rows = finger centre + anisotropic per-impression noise: after the fit, the deviations from
    each finger's own mean (computed here finger by finger) have unit covariance, while the
    fingers' centres stay spread out."""
    rng = np.random.default_rng(2)
    e, fingers, per = 5, 300, 6
    centres = rng.standard_normal((fingers, e)) * 3.0
    noise_mix = rng.standard_normal((e, e)) * np.array([4.0, 2.0, 1.0, 0.3, 0.1])
    h = np.repeat(centres, per, axis=0) + rng.standard_normal((fingers * per, e)) @ noise_mix
    labels = np.repeat([f"set0/{i}" for i in range(fingers)], per)
    w = fit_within_finger(h, labels, eps=1e-12)
    z = (h - w.mean) @ w.matrix
    dev = np.concatenate([z[labels == f] - z[labels == f].mean(axis=0) for f in set(labels)])
    np.testing.assert_allclose(dev.T @ dev / (len(h) - fingers), np.eye(e), atol=1e-6)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    assert np.linalg.eigvalsh(np.cov(z, rowvar=False)).min() > 1.1  # identity spread kept


def test_fit_within_finger_refuses_too_few_impressions():
    h = np.random.default_rng(0).standard_normal((12, 8))
    with pytest.raises(ValueError, match="more impressions per finger"):
        fit_within_finger(h, np.repeat(np.arange(6), 2))  # 12 prints - 6 fingers <= 8


def test_folding_equals_the_formula(tiny_bundle):
    b = load_bundle(tiny_bundle / "match")
    rng = np.random.default_rng(1)
    d = b.matcher.global_branch.embed.kernel.shape[0]
    e = b.matcher.global_branch.embed.kernel.shape[1]
    p = rng.standard_normal((5, d)).astype(np.float32)
    w = {name: Whitening(rng.standard_normal(e), rng.standard_normal((e, e)) / np.sqrt(e))
         for name in ("global", "local")}
    before = {n: np.asarray(getattr(b.matcher, f"{n}_branch").embed(p), np.float64)
              for n in w}
    fold_whitening(b.matcher, w)
    for n in w:
        br = getattr(b.matcher, f"{n}_branch")
        got = np.asarray(br.embed_norm(br.embed(p)), np.float64)  # eval mode: running stats
        want = (before[n] - w[n].mean) @ w[n].matrix
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
