"""Failure to acquire: is there a fingerprint in this image at all (FVC / NIST "FTA")?

A print below `QUALITY_FLOOR` is never scored: a blank capture, a uniform or noisy image, a photo or
a page of text has no ridges, and a matcher's score between two such images means nothing (two
blank images scored 0.993 with a bundle that does not weight by Module 1's inliers).

The measure: the image at 500 ppi is cut into `BLOCK` x `BLOCK` px blocks (1.6 mm, about 3.5 ridge
periods); a block is print when half of it lies in the project's one foreground segmentation
(`ifvit_data.preprocess.print_grid`, i.e. `ifvit_data.foreground`). Each print block gets a ridge
clarity in [0, 1]:

    clarity = coherence * max(0, peak - low)

  coherence: orientation coherence of the smoothed gradients' structure tensor (1: one direction,
    parallel ridges; ~0 for noise, checkerboards, blobs of every orientation);
  peak: the share of the block's power (Hann window, mean removed) within +-1 frequency bin of the
    strongest frequency in the ridge band `RIDGE_BAND` (periods 4-18 px at 500 ppi, i.e. 0.2-0.9
    mm): one narrow spectral peak is what parallel, periodic ridges give, and what strokes, edges
    and noise do not;
  low: the share of the power below that band (edges of blobs, gradients, shading).

The print's quality is the mean clarity of its `BEST_BLOCKS` clearest print blocks (missing blocks
count 0): "is there about 20 mm^2 of clear ridges somewhere", so a small print or a poor one with a
clear core still passes, and an image without print, or whose texture is not ridges, does not.
numpy + OpenCV, about 10 ms for a 400 x 400 print.

Calibration (benchmarked on every print of the project's real sets:
FVC2002 DB1-3_B, FVC2004 DB2-3_B, Neurotechnology CrossMatch and U.are.U, and SFinGe FVC2004
DB4_B, 1,408 prints): the lowest quality is 0.142 (FVC2002 DB3_B 110_3, a dry capacitive print),
the lowest of the other sets 0.217-0.516. Non-prints (`benchmarks/quality_floor.py`): blank white,
black or grey images, smooth gradients and random smooth blobs 0, uniform noise 0.007, a 40 px
sawtooth 0.026, checkerboards (2-32 px squares) <= 0.032, text 0.044, noise blurred with sigma 1 or
3 px 0.063 / 0.072. `QUALITY_FLOOR` = 0.08 sits 1.8x below the poorest real print and above every
one of these. Not refused (ridge-like by this measure): a dense drawing of random straight 1-3 px
lines (0.27), and noise blurred to ridge width (sigma 2 px, 0.11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ifvit_data.preprocess import print_grid

BLOCK = 32  # px at 500 ppi
BEST_BLOCKS = 8  # 8 blocks of 1.6 x 1.6 mm: ~20 mm^2 of clear ridges
RIDGE_BAND = (1.0 / 18.0, 1.0 / 4.0)  # cycles per pixel at 500 ppi
QUALITY_FLOOR = 0.08


@dataclass(frozen=True)
class PrintQuality:
    """Quality of one print.

    quality: [0, 1] (see the module docstring); foreground: share of the image that is print;
    acquired: quality >= the floor; reason: why not (None when acquired).
    """

    quality: float
    foreground: float
    acquired: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"acquired": self.acquired, "quality": round(self.quality, 4),
                "foreground": round(self.foreground, 4), "reason": self.reason}


def block_clarity(image: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Ridge clarity of the selected blocks.

    Args:
      image: uint8 `[nby * BLOCK, nbx * BLOCK]` print at 500 ppi.
      blocks: bool `[nby, nbx]` the blocks to measure.

    Returns:
      float `[blocks.sum()]` in [0, 1], in row-major block order.
    """
    nby, nbx = blocks.shape
    x = image.astype(np.float32) * np.float32(1.0 / 255.0)
    smooth = cv2.GaussianBlur(x, (0, 0), 1.0)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)

    def pick(a: np.ndarray) -> np.ndarray:  # [nby*B, nbx*B] -> [n, B, B] selected blocks
        return a.reshape(nby, BLOCK, nbx, BLOCK).transpose(0, 2, 1, 3)[blocks]

    gxx, gyy, gxy = (pick(a).sum((1, 2), dtype=np.float64) for a in (gx * gx, gy * gy, gx * gy))
    coherence = np.sqrt((gxx - gyy) ** 2 + 4 * gxy ** 2) / (gxx + gyy + 1e-12)

    b = pick(x).astype(np.float64)
    b -= b.mean((1, 2), keepdims=True)
    hann = np.hanning(BLOCK)
    power = np.fft.fftshift(np.abs(np.fft.fft2(b * np.outer(hann, hann))) ** 2, axes=(1, 2))
    f = np.fft.fftshift(np.fft.fftfreq(BLOCK))
    r = np.hypot(f[:, None], f[None, :])  # [B, B] radial frequency
    band = (r >= RIDGE_BAND[0]) & (r <= RIDGE_BAND[1])
    total = (power * (r > 0)).sum((1, 2)) + 1e-12
    low = (power * ((r > 0) & (r < RIDGE_BAND[0]))).sum((1, 2)) / total
    k = np.where(band, power, -1.0).reshape(len(b), -1).argmax(1)
    py, px = k // BLOCK, k % BLOCK
    yy, xx = np.mgrid[0:BLOCK, 0:BLOCK]
    c = BLOCK // 2  # the spectrum is symmetric about (c, c): take the peak and its mirror

    def near(y: np.ndarray, x_: np.ndarray) -> np.ndarray:
        return ((np.abs(yy[None] - y[:, None, None]) <= 1)
                & (np.abs(xx[None] - x_[:, None, None]) <= 1))

    around = (near(py, px) | near(2 * c - py, 2 * c - px)) & band
    peak = (power * around).sum((1, 2)) / total
    return coherence * np.maximum(0.0, peak - low)


def assess_print(image: np.ndarray, floor: float = QUALITY_FLOOR) -> PrintQuality:
    """Quality of a uint8 `[H, W]` print at 500 ppi (ridges dark on light) and whether it is
    acquired (quality >= `floor`)."""
    grid, cell, _ = print_grid(image)
    foreground = float(grid.mean()) if grid.size else 0.0
    nby, nbx = image.shape[0] // BLOCK, image.shape[1] // BLOCK
    k = BLOCK // cell
    blocks = np.zeros((nby, nbx), bool)
    if nby and nbx:
        g = grid[:nby * k, :nbx * k]
        if g.shape == (nby * k, nbx * k):
            blocks = g.reshape(nby, k, nbx, k).mean((1, 3)) >= 0.5
    if not blocks.any():
        return PrintQuality(0.0, foreground, False,
                            "no print found: no area with ridge contrast (blank, uniform or tiny "
                            "image)")
    clarity = block_clarity(image[:nby * BLOCK, :nbx * BLOCK], blocks)
    quality = float(np.sort(clarity)[::-1][:BEST_BLOCKS].sum() / BEST_BLOCKS)
    if quality >= floor:
        return PrintQuality(quality, foreground, True)
    return PrintQuality(quality, foreground, False,
                        f"no fingerprint ridges found: quality {quality:.3f} is below the floor "
                        f"{floor:g} (noise, text, a photo or a very poor capture)")
