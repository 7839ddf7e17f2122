"""Ground-truth minutiae of a binary master: Zhang-Suen thinning plus the crossing number."""

from __future__ import annotations

import cv2
import numpy as np

ENDING = 1
BIFURCATION = 3


def _neighbours(img: np.ndarray) -> list[np.ndarray]:
    """The 8 neighbours P2..P9 (clockwise from north) of every pixel, zero-padded."""
    p = np.pad(img, 1)
    h, w = img.shape
    offs = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]
    return [p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offs]


def thin(binary: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Zhang-Suen thinning to a one-pixel-wide skeleton.

    Args:
        binary: bool [H, W] ridge pixels.
        max_iter: Maximum number of (two sub-step) passes.

    Returns:
        bool [H, W] skeleton.
    """
    img = binary.astype(np.uint8)
    for _ in range(max_iter):
        changed = False
        for step in (0, 1):
            n = _neighbours(img)
            b = sum(n)
            seq = n + [n[0]]
            a = sum(((seq[i] == 0) & (seq[i + 1] == 1)).astype(np.uint8) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                c1, c2 = p2 * p4 * p6, p4 * p6 * p8
            else:
                c1, c2 = p2 * p4 * p8, p2 * p6 * p8
            rm = (img == 1) & (b >= 2) & (b <= 6) & (a == 1) & (c1 == 0) & (c2 == 0)
            if rm.any():
                img[rm] = 0
                changed = True
        if not changed:
            break
    return img.astype(bool)


def extract_minutiae(binary: np.ndarray, region: np.ndarray, border: int = 12) -> np.ndarray:
    """Ridge endings and bifurcations of a binary ridge image.

    Args:
        binary: bool [H, W] ridge pixels.
        region: bool [H, W] area to report (e.g. the silhouette); minutiae closer than `border`
            pixels to its boundary are dropped (the ridges are cut there).
        border: Margin (px) inside `region`.

    Returns:
        int64 (N, 3) rows `(x, y, type)` with type `ENDING` (1) or `BIFURCATION` (3).
    """
    sk = thin(binary)
    n = _neighbours(sk.astype(np.uint8))
    seq = n + [n[0]]
    cn = sum(np.abs(seq[i + 1].astype(np.int16) - seq[i]) for i in range(8)) // 2
    k = 2 * border + 1
    inner = cv2.erode(region.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    keep = sk & inner & ((cn == ENDING) | (cn == BIFURCATION))
    ys, xs = np.nonzero(keep)
    return np.stack([xs, ys, cn[ys, xs]], axis=1).astype(np.int64)
