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

import cv2
import numpy as np

from ifvit_data.synth.config import CLASS_NAMES
from ifvit_data.synth.silhouette import Silhouette

#: Number of control angles of the Vizcaya-Gerhardt warp of each singular point.
VG_CONTROLS = 8
#: Coarse grid (rows, cols) of the smooth per-finger orientation perturbation over the canvas.
PERTURB_GRID = (7, 6)
#: Range of its amplitude (rad, standard deviation of the coarse nodes).
PERTURB_AMP = (0.12, 0.32)


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
        perturb: float [PERTURB_GRID] coarse nodes (rad) of a smooth orientation perturbation,
            upsampled over the canvas and added to the field. It is single-valued, so it moves
            ridges without changing any Poincare index; it gives each finger its own flow.
    """

    class_name: str
    points: tuple[SingularPoint, ...]
    vg_offsets: np.ndarray
    rotation: float
    cx: float
    cy: float
    arch: tuple[float, float, float, float, float]
    perturb: np.ndarray


def sample_class(rng: np.random.Generator, probs: tuple[float, ...]) -> str:
    """Draw a class name with the given probabilities of `CLASS_NAMES`."""
    p = np.asarray(probs, np.float64)
    return CLASS_NAMES[int(rng.choice(len(CLASS_NAMES), p=p / p.sum()))]


def _local_points(rng: np.random.Generator, cls: str) -> list[tuple[float, float, str]]:
    """Singular points relative to the pattern centre (u right, v down), before rotation.

    The spreads are wide on purpose: real fingers of one class differ in where the core sits, how
    far the delta is from it and on which diagonal, which is what keeps same-class impostors apart.
    """
    n = rng.normal
    u = rng.uniform
    if cls == "arch":
        return []
    if cls == "tented_arch":
        cu, cv = n(0, 10), n(0, 20)
        return [(cu, cv, "core"), (cu + n(0, 8), cv + u(45, 100), "delta")]
    if cls in ("left_loop", "right_loop"):
        cu, cv = n(0, 15), n(-5, 25)
        side = 1.0 if cls == "left_loop" else -1.0  # delta opposite to where the loop opens
        return [(cu, cv, "core"), (cu + side * u(60, 130), cv + u(45, 115), "delta")]
    if cls == "whorl":
        sep = u(10, 50)
        ang = np.pi / 2 + u(-0.9, 0.9)
        du, dv = 0.5 * sep * np.cos(ang), 0.5 * sep * np.sin(ang)
        cu, cv = n(0, 12), n(-5, 18)
        return [
            (cu - du, cv - dv, "core"),
            (cu + du, cv + dv, "core"),
            (cu - u(60, 120), cv + u(50, 120), "delta"),
            (cu + u(60, 120), cv + u(50, 120), "delta"),
        ]
    raise ValueError(f"unknown class {cls!r}; expected one of {CLASS_NAMES}")


def _vg_offsets(rng: np.random.Generator, n_points: int) -> np.ndarray:
    """Warp offsets in [-0.55, 0.55] rad whose cyclic neighbour differences stay below 0.7 < pi/4.

    A difference below pi/4 (the control spacing) keeps each warp monotone; larger offsets than the
    plain +-0.3 give each finger its own bend of the ridges around the cores and deltas.
    """
    offs = rng.uniform(-0.55, 0.55, size=(n_points, VG_CONTROLS))
    for k in range(n_points):
        d = np.abs(np.diff(np.append(offs[k], offs[k, 0])))
        if d.max() > 0.7:
            offs[k] *= 0.7 / d.max()
    return offs


def sample_orientation_model(
    rng: np.random.Generator, cls: str, sil: Silhouette, max_rotation_deg: float = 15.0
) -> OrientationModel:
    """Place singular points for `cls` (with jitter) and draw the warp and rotation parameters.

    Args:
        rng: Random stream.
        cls: Class name.
        sil: Silhouette; the pattern centre sits near its centre.
        max_rotation_deg: Maximum absolute global rotation of the pattern.

    Returns:
        The orientation model.
    """
    rot = float(np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg)))
    cx = sil.cx + rng.normal(0, 8)
    cy = sil.cy + rng.normal(0, 12)
    local = _local_points(rng, cls)
    c, s = np.cos(rot), np.sin(rot)
    pts = tuple(
        SingularPoint(float(cx + c * pu - s * pv), float(cy + s * pu + c * pv), kind)
        for pu, pv, kind in local
    )
    offs = _vg_offsets(rng, len(pts))
    arch = (0.0, 0.0, 0.0, 0.0, 0.0)
    if cls == "arch":
        arch = (
            float(rng.uniform(15, 60)),  # bulge amplitude (px)
            float(rng.uniform(45, 100)),  # bulge half-width (px)
            float(rng.uniform(-20, 60)),  # row of the strongest bulge (below the centre)
            float(rng.uniform(60, 100)),  # fading scale below
            float(rng.uniform(100, 170)),  # fading scale above
        )
    amp = rng.uniform(*PERTURB_AMP)
    perturb = (amp * rng.standard_normal(PERTURB_GRID)).astype(np.float64)
    return OrientationModel(cls, pts, offs, rot, float(cx), float(cy), arch, perturb)


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
        theta = _arch_field(model, xx, yy)
    else:
        theta = np.full(shape, model.rotation, np.float64)
        for p, offs in zip(model.points, model.vg_offsets, strict=True):
            # angle measured in the pattern's own (unrotated) frame, then warped
            a = np.arctan2(yy - p.y, xx - p.x) - model.rotation
            a = np.mod(a + np.pi, 2 * np.pi) - np.pi
            sign = 0.5 if p.kind == "core" else -0.5
            theta += sign * vg_warp(a, offs)
    return np.mod(theta + perturbation(model, shape), np.pi).astype(np.float32)


def perturbation(model: OrientationModel, shape: tuple[int, int]) -> np.ndarray:
    """The smooth orientation perturbation (rad, float64 [H, W]) of `model` over a canvas."""
    h, w = shape
    coarse = np.asarray(model.perturb, np.float32)
    f = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    sigma = 0.25 * min(h / coarse.shape[0], w / coarse.shape[1])
    return cv2.GaussianBlur(f, (0, 0), sigma).astype(np.float64)


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
    return theta


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
