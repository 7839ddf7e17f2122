"""Cappelli-Maio-Maltoni plastic skin distortion and the global placement (exact, invertible).

Points are `(x, y)` pixels. The close-contact zone is an axis-aligned ellipse (centre `c0`,
semi-axes `ea`, `eb`); outside it every point moves by the rigid displacement `T(p) - p`
(`T(p) = R(phi) (p - c0) + c0 + d`) scaled by the brake function `b(r) = 1 - exp(-(r / k)^2)`,
where `r` is the distance from the ellipse boundary along the ray from `c0` (0 inside). With a few
degrees and a few pixels the map is a small, smooth perturbation of the identity, so it is
invertible; the inverse is computed by fixed-point iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlasticDistortion:
    """Parameters of the plastic distortion in the master frame."""

    c0x: float
    c0y: float
    ea: float
    eb: float
    k: float
    phi: float
    dx: float
    dy: float

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (du, dv) at points (x, y), arrays of one shape (float64)."""
        u = x - self.c0x
        v = y - self.c0y
        rho = np.sqrt((u / self.ea) ** 2 + (v / self.eb) ** 2)
        dist = np.hypot(u, v) * np.clip(1.0 - 1.0 / np.maximum(rho, 1e-9), 0.0, None)
        brake = 1.0 - np.exp(-((dist / self.k) ** 2))
        c, s = np.cos(self.phi), np.sin(self.phi)
        tx = c * u - s * v + self.dx - u
        ty = s * u + c * v + self.dy - v
        return brake * tx, brake * ty

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distorted position of master points."""
        du, dv = self.displacement(x, y)
        return x + du, y + dv

    def inverse(
        self, x: np.ndarray, y: np.ndarray, iters: int = 60, tol: float = 1e-6
    ) -> tuple[np.ndarray, np.ndarray]:
        """Master position whose distorted position is (x, y) (fixed-point iteration).

        Each point iterates until its own step is below `tol`, so a point's result does not depend
        on which other points are mapped with it (a dense grid and a single point agree exactly).
        NaN points stay NaN.
        """
        xs = np.asarray(x, np.float64)
        ys = np.asarray(y, np.float64)
        px, py = xs.reshape(-1).copy(), ys.reshape(-1).copy()
        fx, fy = px.copy(), py.copy()
        idx = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
        for _ in range(iters):
            if idx.size == 0:
                break
            du, dv = self.displacement(px[idx], py[idx])
            nx, ny = fx[idx] - du, fy[idx] - dv
            err = np.maximum(np.abs(nx - px[idx]), np.abs(ny - py[idx]))
            px[idx], py[idx] = nx, ny
            idx = idx[err >= tol]
        return px.reshape(xs.shape), py.reshape(ys.shape)


@dataclass(frozen=True)
class Placement:
    """Global rigid placement into the sensor frame: `q = R(alpha) (p - c) + t`."""

    alpha: float
    cx: float
    cy: float
    tx: float
    ty: float

    def matrix(self) -> np.ndarray:
        """float64 [2, 3] in the OpenCV convention (`q = A @ [x, y, 1]`)."""
        c, s = np.cos(self.alpha), np.sin(self.alpha)
        r = np.array([[c, -s], [s, c]])
        t = np.array([self.tx, self.ty]) - r @ np.array([self.cx, self.cy])
        return np.concatenate([r, t[:, None]], axis=1)

    def forward(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sensor position of (distorted) master points."""
        a = self.matrix()
        return a[0, 0] * x + a[0, 1] * y + a[0, 2], a[1, 0] * x + a[1, 1] * y + a[1, 2]

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Distorted) master position of sensor points."""
        c, s = np.cos(self.alpha), np.sin(self.alpha)
        u, v = x - self.tx, y - self.ty
        return c * u + s * v + self.cx, -s * u + c * v + self.cy
