"""Frequency-domain bank of even-symmetric Gabor filters (quantised orientation x period)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft


@dataclass(frozen=True)
class GaborBank:
    """Transfer functions of even Gabor filters on an rfft2 grid.

    Entry `k = j * n_orient + i` is tuned to ridge direction `i * pi / n_orient` and period
    `periods[j]`. Each filter's Gaussian envelope has standard deviation `sigma_n * period` across
    the ridges and `sigma_t * period` along them, and the gain is 1 at its centre frequency.

    Attributes:
        shape: Padded spatial grid (Hp, Wp) the transfer functions belong to.
        n_orient: Number of orientation bins over [0, pi).
        periods: float64 [n_period] bin centres (px), increasing.
        transfer: float32 [n_period * n_orient, Hp, Wp // 2 + 1].
    """

    shape: tuple[int, int]
    n_orient: int
    periods: np.ndarray
    transfer: np.ndarray

    @staticmethod
    def build(
        shape: tuple[int, int],
        n_orient: int,
        periods: np.ndarray,
        sigma_n: float = 0.42,
        sigma_t: float = 0.55,
    ) -> GaborBank:
        """Compute the transfer functions for a spatial grid of `shape` (H, W)."""
        hp, wp = shape
        ky = scipy.fft.fftfreq(hp)[:, None]
        kx = scipy.fft.rfftfreq(wp)[None, :]
        out = np.empty((len(periods) * n_orient, hp, wp // 2 + 1), np.float32)
        for j, per in enumerate(periods):
            f = 1.0 / per
            sn2 = (sigma_n * per) ** 2
            st2 = (sigma_t * per) ** 2
            for i in range(n_orient):
                th = i * np.pi / n_orient
                k_t = kx * np.cos(th) + ky * np.sin(th)
                k_n = -kx * np.sin(th) + ky * np.cos(th)
                g = np.exp(-2 * np.pi**2 * st2 * k_t**2)
                h = g * (
                    np.exp(-2 * np.pi**2 * sn2 * (k_n - f) ** 2)
                    + np.exp(-2 * np.pi**2 * sn2 * (k_n + f) ** 2)
                )
                h[0, 0] = 0.0  # zero DC: the filter ignores the local mean
                out[j * n_orient + i] = h
        return GaborBank((hp, wp), n_orient, np.asarray(periods, np.float64), out)

    def gather_weights(
        self, theta: np.ndarray, period: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bank entries and bilinear weights for each pixel's orientation and period.

        Args:
            theta: float [H, W] ridge directions (mod pi), H <= Hp, W <= Wp.
            period: float [H, W] periods (px).

        Returns:
            (index int64 [4, H*W] into the flattened bank response, weight float32 [4, H*W]).
        """
        h, w = theta.shape
        hp, wp = self.shape
        pos = np.mod(theta.astype(np.float64), np.pi) * (self.n_orient / np.pi)
        i0 = np.floor(pos).astype(np.int64)
        wi = pos - i0
        i0 %= self.n_orient
        i1 = (i0 + 1) % self.n_orient
        npr = len(self.periods)
        pj = np.interp(period.astype(np.float64), self.periods, np.arange(npr, dtype=np.float64))
        j0 = np.minimum(np.floor(pj).astype(np.int64), max(npr - 2, 0))
        wj = np.clip(pj - j0, 0.0, 1.0)
        j1 = np.minimum(j0 + 1, npr - 1)
        pix = (np.arange(h)[:, None] * wp + np.arange(w)[None, :]).astype(np.int64)
        plane = hp * wp
        idx = np.stack(
            [
                (j0 * self.n_orient + i0) * plane + pix,
                (j0 * self.n_orient + i1) * plane + pix,
                (j1 * self.n_orient + i0) * plane + pix,
                (j1 * self.n_orient + i1) * plane + pix,
            ]
        ).reshape(4, -1)
        wgt = np.stack(
            [(1 - wj) * (1 - wi), (1 - wj) * wi, wj * (1 - wi), wj * wi]
        ).reshape(4, -1)
        return idx, wgt.astype(np.float32)

    def apply(self, image: np.ndarray, idx: np.ndarray, wgt: np.ndarray) -> np.ndarray:
        """Space-variant filtering: convolve with every entry, then gather each pixel's response.

        Args:
            image: float32 [H, W] (zero-padded to the bank grid internally).
            idx: From `gather_weights`.
            wgt: From `gather_weights`.

        Returns:
            float32 [H, W] response of each pixel's own (interpolated) filter.
        """
        h, w = image.shape
        spec = scipy.fft.rfft2(image.astype(np.float32), s=self.shape)
        resp = scipy.fft.irfft2(spec[None] * self.transfer, s=self.shape, axes=(-2, -1))
        flat = resp.reshape(-1)
        return (flat[idx] * wgt).sum(axis=0).reshape(h, w).astype(np.float32)
