"""Fingerprint silhouette: four quarter-ellipses joined by a central rectangle (SFinGe step 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Silhouette:
    """Convex fingerprint area in the master frame.

    The shape is centred at (cx, cy); its left/right half-widths are a1/a2, the top quarter-ellipses
    have half-height b1, the bottom ones b2, and a rectangle of height c joins them. Coordinates are
    pixels `(x, y)` (x = column, y = row, y down).
    """

    cx: float
    cy: float
    a1: float
    a2: float
    b1: float
    b2: float
    c: float

    @property
    def top(self) -> float:
        """Row of the topmost silhouette point."""
        return self.cy - self.c / 2 - self.b1

    @property
    def bottom(self) -> float:
        """Row of the lowest silhouette point."""
        return self.cy + self.c / 2 + self.b2

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points lie inside the silhouette.

        Args:
            x: Columns, any shape.
            y: Rows, same shape as `x`.

        Returns:
            bool array of the broadcast shape.
        """
        u = np.asarray(x, np.float64) - self.cx
        v = np.asarray(y, np.float64) - self.cy
        a = np.where(u < 0, self.a1, self.a2)
        half = self.c / 2
        vv = np.where(v > half, (v - half) / self.b2, 0.0)
        vv = np.where(v < -half, (v + half) / self.b1, vv)
        return (u / a) ** 2 + vv**2 <= 1.0

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Rasterise the silhouette (pixel centres at integers), row by row.

        Args:
            shape: Canvas (H, W).

        Returns:
            bool [H, W], True inside.
        """
        h, w = shape
        v = np.arange(h, dtype=np.float64) - self.cy
        half = self.c / 2
        vv = np.where(v > half, (v - half) / self.b2, 0.0)
        vv = np.where(v < -half, (v + half) / self.b1, vv)
        root = np.sqrt(np.clip(1.0 - vv**2, 0.0, None))
        u = np.arange(w, dtype=np.float64)[None, :] - self.cx
        inside = (u >= -self.a1 * root[:, None]) & (u <= self.a2 * root[:, None])
        return inside & (vv**2 <= 1.0)[:, None]


def sample_silhouette(rng: np.random.Generator, master_size: tuple[int, int]) -> Silhouette:
    """Draw a silhouette that fits the master canvas with a margin of about 12 px.

    Sizes follow real fingertips at 500 dpi (about 230-300 px wide, 290-440 px tall: a 300x300
    sensor sees only part of the finger), shrunk if the canvas is smaller.

    Args:
        rng: Random stream.
        master_size: Canvas (H, W).

    Returns:
        The silhouette, centred on the canvas (with a little jitter).
    """
    h, w = master_size
    margin = 12.0
    sw = min(1.0, (w - 2 * margin) / 300.0)
    sh = min(1.0, (h - 2 * margin) / 435.0)
    a1 = rng.uniform(115, 150) * sw
    a2 = rng.uniform(115, 150) * sw
    b1 = rng.uniform(120, 165) * sh
    b2 = rng.uniform(80, 120) * sh
    c = rng.uniform(80, 150) * sh
    cx = (w - 1) / 2 + (a1 - a2) / 2
    height = b1 + b2 + c
    cy = (h - 1) / 2 - height / 2 + b1 + c / 2
    jx = max(0.0, (w - 2 * margin - a1 - a2) / 2)
    jy = max(0.0, (h - 2 * margin - height) / 2)
    cx += rng.uniform(-jx, jx)
    cy += rng.uniform(-jy, jy)
    return Silhouette(float(cx), float(cy), float(a1), float(a2), float(b1), float(b2), float(c))
