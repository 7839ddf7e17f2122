"""Fingerprint class, singular points and the ridge-orientation field (SFinGe step 2-3).

Conventions: points are `(x, y)` pixels of the master canvas (x = column, y = row, y down). An
orientation `theta` is the angle of the ridge *direction* measured in the same pixel frame,
`theta = atan2(dy, dx)`, defined modulo pi and stored in `[0, pi)`. With this convention a core
has Poincare index +1/2 and a delta -1/2 (the path and the angles are measured in one frame).

Loops, tented arches and whorls use the Sherlock-Monro zero-pole model, with each `arg(z - s)`
passed through a Vizcaya-Gerhardt piecewise-linear monotone warp of the circle. Arches use a
closed-form field: the ridges are level lines of `F(u, v) = v + B(v) exp(-u^2 / 2w^2)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ifvit_data.synth.config import CLASS_NAMES
from ifvit_data.synth.silhouette import Silhouette

#: Number of control angles of the Vizcaya-Gerhardt warp of each singular point.
VG_CONTROLS = 8


@dataclass(frozen=True)
class SingularPoint:
    """A core or a delta at pixel `(x, y)` of the master canvas."""

    x: float
    y: float
    kind: str  # "core" or "delta"


@dataclass(frozen=True)
class OrientationModel:
    """Parameters that define the orientation field of one finger.

    Attributes:
        class_name: One of `CLASS_NAMES`.
        points: Singular points in the master canvas (after the global rotation).
        vg_offsets: float [n_points, VG_CONTROLS] offsets (rad) of the warp control angles.
        rotation: Global rotation (rad) of the pattern around (cx, cy).
        cx: Rotation centre (x).
        cy: Rotation centre (y).
        arch: (amplitude, width, v0, s_lo, s_hi) of the arch field (zeros unless arch).
    """

    class_name: str
    points: tuple[SingularPoint, ...]
    vg_offsets: np.ndarray
    rotation: float
    cx: float
    cy: float
    arch: tuple[float, float, float, float, float]


def sample_class(rng: np.random.Generator, probs: tuple[float, ...]) -> str:
    """Draw a class name with the given probabilities of `CLASS_NAMES`."""
    p = np.asarray(probs, np.float64)
    return CLASS_NAMES[int(rng.choice(len(CLASS_NAMES), p=p / p.sum()))]


def _local_points(rng: np.random.Generator, cls: str) -> list[tuple[float, float, str]]:
    """Singular points relative to the pattern centre (u right, v down), before rotation."""
    n = rng.normal
    u = rng.uniform
    if cls == "arch":
        return []
    if cls == "tented_arch":
        cu, cv = n(0, 8), n(0, 12)
        return [(cu, cv, "core"), (cu + n(0, 5), cv + u(55, 85), "delta")]
    if cls in ("left_loop", "right_loop"):
        cu, cv = n(0, 12), n(-15, 12)
        side = 1.0 if cls == "left_loop" else -1.0  # delta opposite to where the loop opens
        return [(cu, cv, "core"), (cu + side * u(75, 110), cv + u(55, 90), "delta")]
    if cls == "whorl":
        sep = u(14, 40)
        ang = np.pi / 2 + u(-0.7, 0.7)
        du, dv = 0.5 * sep * np.cos(ang), 0.5 * sep * np.sin(ang)
        cu, cv = n(0, 10), n(-10, 10)
        return [
            (cu - du, cv - dv, "core"),
            (cu + du, cv + dv, "core"),
            (cu - u(70, 105), cv + u(65, 105), "delta"),
            (cu + u(70, 105), cv + u(65, 105), "delta"),
        ]
    raise ValueError(f"unknown class {cls!r}; expected one of {CLASS_NAMES}")


def sample_orientation_model(
    rng: np.random.Generator, cls: str, sil: Silhouette, max_rotation_deg: float = 12.0
) -> OrientationModel:
    """Place singular points for `cls` (with jitter) and draw the warp and rotation parameters.

    Args:
        rng: Random stream.
        cls: Class name.
        sil: Silhouette; the pattern centre sits slightly above its centre.
        max_rotation_deg: Maximum absolute global rotation of the pattern.

    Returns:
        The orientation model.
    """
    rot = float(np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg)))
    cx = sil.cx + rng.normal(0, 6)
    cy = sil.cy + rng.normal(0, 8)
    local = _local_points(rng, cls)
    c, s = np.cos(rot), np.sin(rot)
    pts = tuple(
        SingularPoint(float(cx + c * pu - s * pv), float(cy + s * pu + c * pv), kind)
        for pu, pv, kind in local
    )
    # Offsets with |difference| < pi/4 between neighbours keep each warp monotone.
    offs = rng.uniform(-0.3, 0.3, size=(len(pts), VG_CONTROLS))
    arch = (0.0, 0.0, 0.0, 0.0, 0.0)
    if cls == "arch":
        arch = (
            float(rng.uniform(25, 45)),  # bulge amplitude (px)
            float(rng.uniform(55, 85)),  # bulge half-width (px)
            float(rng.uniform(0, 40)),  # row of the strongest bulge (below the centre)
            float(rng.uniform(70, 90)),  # fading scale below
            float(rng.uniform(110, 160)),  # fading scale above
        )
    return OrientationModel(cls, pts, offs, rot, float(cx), float(cy), arch)


def vg_warp(alpha: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Vizcaya-Gerhardt piecewise-linear monotone warp of angles in [-pi, pi].

    Args:
        alpha: Angles (rad) in [-pi, pi], any shape.
        offsets: float [VG_CONTROLS] offsets of the equally spaced control angles.

    Returns:
        Warped angles, same shape; the warp fixes the winding (a full turn stays a full turn).
    """
    ctrl = np.linspace(-np.pi, np.pi, len(offsets) + 1)
    vals = np.append(offsets, offsets[0])
    return alpha + np.interp(alpha, ctrl, vals)


def orientation_field(model: OrientationModel, shape: tuple[int, int]) -> np.ndarray:
    """Ridge orientation over the canvas.

    Args:
        model: Orientation model.
        shape: Canvas (H, W).

    Returns:
        float32 [H, W] ridge-direction angles in [0, pi).
    """
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    if model.class_name == "arch":
        return _arch_field(model, xx, yy)
    theta = np.full(shape, model.rotation, np.float64)
    for p, offs in zip(model.points, model.vg_offsets, strict=True):
        # angle measured in the pattern's own (unrotated) frame, then warped
        a = np.arctan2(yy - p.y, xx - p.x) - model.rotation
        a = np.mod(a + np.pi, 2 * np.pi) - np.pi
        sign = 0.5 if p.kind == "core" else -0.5
        theta += sign * vg_warp(a, offs)
    return np.mod(theta, np.pi).astype(np.float32)


def _arch_field(model: OrientationModel, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Closed-form arch field: tangent of the level lines of F(u, v) = v + B(v) g(u)."""
    amp, width, v0, s_lo, s_hi = model.arch
    c, s = np.cos(model.rotation), np.sin(model.rotation)
    du, dv = xx - model.cx, yy - model.cy
    u = c * du + s * dv
    v = -s * du + c * dv
    sig = np.where(v > v0, s_lo, s_hi)
    b = amp * np.exp(-0.5 * ((v - v0) / sig) ** 2)
    db = -b * (v - v0) / sig**2
    g = np.exp(-0.5 * (u / width) ** 2)
    # F = v + B(v) g(u): on a level line v = const - B g, so ridges bulge upwards (smaller v)
    f_u = -b * g * u / width**2
    f_v = 1.0 + db * g
    theta = np.arctan2(-f_u, f_v) + model.rotation
    return np.mod(theta, np.pi).astype(np.float32)


def poincare_index(
    theta: np.ndarray, x: float, y: float, radius: float, n: int = 96
) -> float:
    """Poincare index of an orientation field along a circle.

    The circle is walked by increasing `atan2(y - cy, x - cx)` of the pixel frame (clockwise on
    screen, since y points down); angles are measured in the same frame, so the sign is the usual
    one.

    Args:
        theta: float [H, W] orientations (mod pi).
        x: Circle centre column.
        y: Circle centre row.
        radius: Circle radius (px); the circle must lie inside the canvas.
        n: Number of samples on the circle.

    Returns:
        The index: about +0.5 around a core, -0.5 around a delta, 0 with no singularity inside.
    """
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    px = np.clip(np.rint(x + radius * np.cos(t)).astype(int), 0, theta.shape[1] - 1)
    py = np.clip(np.rint(y + radius * np.sin(t)).astype(int), 0, theta.shape[0] - 1)
    a = theta[py, px].astype(np.float64)
    d = np.diff(np.append(a, a[0]))
    d = np.mod(d + np.pi / 2, np.pi) - np.pi / 2
    return float(d.sum() / (2 * np.pi))
