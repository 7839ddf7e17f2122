"""Ridge pattern by iterative space-variant Gabor filtering from seeds (SFinGe step 5).

The growth runs on a half-resolution grid (periods 2.5-7.5 px there) until the silhouette is
covered and the pattern is stable, then is upsampled and refined by a few full-resolution
iterations. Each iteration filters the whole image with every entry of a quantised bank
(orientation x period, one FFT product per entry) and keeps each pixel's own response by a
gather with bilinear weights over the neighbouring bins.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.fft

from ifvit_data.synth.gabor_bank import GaborBank

N_ORIENT = 16
N_PERIOD = 3
GAIN = 3.0


def _downsample_orientation(theta: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average doubled-angle vectors, back to an angle in [0, pi)."""
    c = cv2.resize(np.cos(2 * theta).astype(np.float32), shape[::-1], interpolation=cv2.INTER_AREA)
    s = cv2.resize(np.sin(2 * theta).astype(np.float32), shape[::-1], interpolation=cv2.INTER_AREA)
    return np.mod(0.5 * np.arctan2(s, c), np.pi).astype(np.float32)


def _bank_for(shape: tuple[int, int], period: np.ndarray, pad: int) -> GaborBank:
    lo, hi = float(period.min()), float(period.max())
    if hi - lo < 1e-3:
        hi = lo + 1e-3
    periods = np.geomspace(lo, hi, N_PERIOD)
    grid = (scipy.fft.next_fast_len(shape[0] + pad), scipy.fft.next_fast_len(shape[1] + pad, True))
    return GaborBank.build(grid, N_ORIENT, periods)


def _iterate(
    x: np.ndarray,
    bank: GaborBank,
    idx: np.ndarray,
    wgt: np.ndarray,
    region: np.ndarray,
    inside: np.ndarray,
    max_iter: int,
    tol: float,
) -> np.ndarray:
    """Filter-and-saturate until `inside` is covered and the image stops changing."""
    for _ in range(max_iter):
        new = np.clip(GAIN * bank.apply(x, idx, wgt), -1.0, 1.0) * region
        change = float(np.abs(new - x)[inside].mean())
        x = new
        # covered: a saturated ridge or valley within ~1 px (zero crossings are not saturated)
        envelope = cv2.dilate(np.abs(x), np.ones((3, 3), np.uint8))
        covered = float((envelope[inside] > 0.5).mean())
        if covered > 0.995 and change < tol:
            break
    return x


def grow_ridges(
    rng: np.random.Generator,
    theta: np.ndarray,
    period: np.ndarray,
    silhouette: np.ndarray,
    n_seeds: int,
    max_iter: int = 22,
    refine_iter: int = 1,
) -> np.ndarray:
    """Grow a ridge pattern that follows `theta` and `period` over the silhouette.

    Args:
        rng: Random stream (seed positions and signs).
        theta: float32 [H, W] ridge directions (mod pi).
        period: float32 [H, W] ridge periods (px).
        silhouette: bool [H, W] fingerprint area.
        n_seeds: Number of seeds (small dots) the growth starts from.
        max_iter: Maximum half-resolution iterations.
        refine_iter: Full-resolution iterations after upsampling.

    Returns:
        float32 [H, W] saturated ridge field in [-1, 1]: ridges > 0, valleys < 0; the area well
        outside the silhouette is 0.
    """
    h, w = theta.shape
    hs, ws = (h + 1) // 2, (w + 1) // 2
    # growth region: the silhouette plus a margin of about two ridge periods
    region_full = cv2.dilate(silhouette.astype(np.uint8), np.ones((21, 21), np.uint8)) > 0
    region = cv2.resize(region_full.astype(np.uint8), (ws, hs), interpolation=cv2.INTER_NEAREST) > 0
    inside = cv2.resize(silhouette.astype(np.uint8), (ws, hs), interpolation=cv2.INTER_NEAREST) > 0

    th_s = _downsample_orientation(theta, (hs, ws))
    per_s = cv2.resize(period, (ws, hs), interpolation=cv2.INTER_AREA) / 2.0
    bank = _bank_for((hs, ws), per_s, pad=12)
    idx, wgt = bank.gather_weights(th_s, per_s)

    x = np.zeros((hs, ws), np.float32)
    ys, xs = np.nonzero(inside)
    pick = rng.choice(len(ys), size=min(n_seeds, len(ys)), replace=False)
    for k in pick:
        cv2.circle(x, (int(xs[k]), int(ys[k])), 1, float(rng.choice([-1.0, 1.0])), -1)
    x = _iterate(x, bank, idx, wgt, region.astype(np.float32), inside, max_iter, tol=0.02)

    full = cv2.resize(x, (w, h), interpolation=cv2.INTER_CUBIC)
    if refine_iter > 0:
        bank_f = _bank_for((h, w), period, pad=24)
        idx_f, wgt_f = bank_f.gather_weights(theta, period)
        reg = region_full.astype(np.float32)
        for _ in range(refine_iter):
            full = np.clip(GAIN * bank_f.apply(full, idx_f, wgt_f), -1.0, 1.0) * reg
    return full.astype(np.float32)
