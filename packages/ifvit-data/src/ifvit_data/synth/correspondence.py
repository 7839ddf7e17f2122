"""Exact point correspondences between two impressions of one finger (via the master frame)."""

from __future__ import annotations

import numpy as np

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


def _in_mask(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    ok = np.all(np.isfinite(pts), axis=1)
    xi = np.clip(np.rint(np.where(ok, pts[:, 0], 0)).astype(np.int64), 0, w - 1)
    yi = np.clip(np.rint(np.where(ok, pts[:, 1], 0)).astype(np.int64), 0, h - 1)
    x, y = pts[:, 0], pts[:, 1]
    inside = ok & (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    return inside & mask[yi, xi]


class Correspondence:
    """Callable map of (N, 2) points (x, y) of impression `a` to impression `b`.

    The map is the composition of `a.imp_to_master` and `b.master_to_imp` (bilinear sampling of the
    stored fields). Points outside a's frame or contact region, or landing outside b's frame or
    contact region, map to NaN. `reverse` is the map from b to a.
    """

    def __init__(self, a: Impression, b: Impression) -> None:
        if a.finger != b.finger:
            raise ValueError(f"impressions of different fingers ({a.finger} vs {b.finger})")
        self.a = a
        self.b = b

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """Map points; returns float64 (N, 2) with NaN rows where undefined."""
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        valid_a = _in_mask(self.a.mask, pts)
        m = sample_field(self.a.imp_to_master, pts)
        q = sample_field(self.b.master_to_imp, m)
        ok = valid_a & _in_mask(self.b.mask, q)
        q[~ok] = np.nan
        return q

    @property
    def reverse(self) -> Correspondence:
        """The map from impression b to impression a."""
        return Correspondence(self.b, self.a)


def correspondence(imp_a: Impression, imp_b: Impression) -> Correspondence:
    """Exact map of pixel points of `imp_a` to `imp_b` (see `Correspondence`)."""
    return Correspondence(imp_a, imp_b)
