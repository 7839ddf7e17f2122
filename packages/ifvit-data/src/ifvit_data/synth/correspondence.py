"""Exact point correspondences between two impressions of one finger (via the master frame)."""

from __future__ import annotations

import numpy as np

from ifvit_data.synth.geometry import ImpressionGeometry
from ifvit_data.synth.impression import Impression


def sample_field(field: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear sample of a dense vector field at sub-pixel points.

    Args:
        field: float [H, W, C].
        pts: float (N, 2) points (x, y), pixel centres at integers.

    Returns:
        float64 (N, C); NaN for points outside `[0, W-1] x [0, H-1]` or NaN input.
    """
    h, w = field.shape[:2]
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    x, y = pts[:, 0], pts[:, 1]
    ok = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (y >= 0) & (x <= w - 1) & (y <= h - 1)
    xs = np.where(ok, x, 0.0)
    ys = np.where(ok, y, 0.0)
    x0 = np.minimum(np.floor(xs).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(ys).astype(np.int64), max(h - 2, 0))
    ax = (xs - x0)[:, None]
    ay = (ys - y0)[:, None]
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    f = field.astype(np.float64)
    out = (
        f[y0, x0] * (1 - ax) * (1 - ay)
        + f[y0, x1] * ax * (1 - ay)
        + f[y1, x0] * (1 - ax) * ay
        + f[y1, x1] * ax * ay
    )
    out[~ok] = np.nan
    return out


class Correspondence:
    """Callable map of (N, 2) points (x, y) of impression `a` to impression `b` (same finger).

    Analytic composition of a's sensor->master map and b's master->sensor map
    (`ImpressionGeometry`). A point maps to NaN unless it lies in a's frame and contact region and
    its master position lies in b's contact region and lands in b's frame. `reverse` is the map from
    b to a.

    Args:
        a: Geometry of the source impression.
        b: Geometry of the target impression.
    """

    def __init__(self, a: ImpressionGeometry, b: ImpressionGeometry) -> None:
        self.a = a
        self.b = b

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """Map points; returns float64 (N, 2) with NaN rows where undefined."""
        m, ok = self.a.seen(pts)
        q = self.b.from_master(m)
        ok &= self.b.in_contact(m) & self.b.in_frame(q)
        q[~ok] = np.nan
        return q

    @property
    def reverse(self) -> Correspondence:
        """The map from impression b to impression a."""
        return Correspondence(self.b, self.a)


def correspondence(imp_a: Impression, imp_b: Impression) -> Correspondence:
    """Exact map of pixel points of `imp_a` to `imp_b` (see `Correspondence`).

    Raises:
        ValueError: The impressions belong to different fingers.
    """
    if imp_a.finger != imp_b.finger:
        raise ValueError(f"impressions of different fingers ({imp_a.finger} vs {imp_b.finger})")
    return Correspondence(imp_a.geometry, imp_b.geometry)
