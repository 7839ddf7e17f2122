"""Rotation + translation about the image centre, returning the forward 2x3 matrix (OpenCV
convention).

A point is `(x, y)` with the origin at the centre of the top-left pixel, so the image centre is
`((W - 1) / 2, (H - 1) / 2)`. The forward matrix `A` maps a point of the input to the output:
`p1 = A @ [x0, y0, 1]`; `cv2.warpAffine(img, A, ...)` produces exactly that output.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class RotationConfig:
    """Ranges of the random rigid transform.

    Attributes:
      max_angle: rotation angle is drawn from `U(-max_angle, max_angle)` degrees.
      max_translation: each translation component is drawn from `U(-t, t)` pixels.
    """

    max_angle: float = 60.0
    max_translation: float = 0.0


def rotation_matrix(
    shape: tuple[int, int], angle: float, translation: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Forward matrix of a rotation about the image centre followed by a translation.

    Args:
      shape: `(H, W)` of the image.
      angle: degrees, counter-clockwise on screen (OpenCV's `getRotationMatrix2D` sign).
      translation: `(tx, ty)` in pixels.

    Returns:
      float64 `[2, 3]` matrix `A`.
    """
    h, w = shape
    a = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(angle), 1.0)
    a[:, 2] += np.asarray(translation, dtype=np.float64)
    return a


def invert_affine(a: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (float64 `[2, 3]`)."""
    return cv2.invertAffineTransform(np.asarray(a, dtype=np.float64))


def fit_affine(src: np.ndarray, dst: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    """The project's one least-squares affine fit in numpy: `dst ~ A @ [src, 1]` for points
    `src`, `dst` [N, 2], solved in float64; float32 [2, 3]. With fewer than 3 points: `fallback`
    (default: the identity)."""
    if len(src) < 3:
        return (np.eye(2, 3, dtype=np.float32) if fallback is None
                else np.asarray(fallback, np.float32).copy())
    x = np.concatenate([src, np.ones((len(src), 1))], axis=1).astype(np.float64)
    sol, *_ = np.linalg.lstsq(x, np.asarray(dst, np.float64), rcond=None)
    return sol.T.astype(np.float32)


def apply_affine(a: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Maps points: float64 `[N, 2]` -> `[N, 2]`, `p1 = A @ [p0; 1]`."""
    a = np.asarray(a, dtype=np.float64)
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ a[:, :2].T + a[:, 2]


def warp_affine(
    image: np.ndarray,
    a: np.ndarray,
    out_shape: tuple[int, int] | None = None,
    fill: float = 1.0,
    nearest: bool = False,
) -> np.ndarray:
    """Warps `image` forward by `A` (bilinear, constant `fill` outside).

    Args:
      image: `[H, W]` float32 in [0, 1] (or uint8 / bool-as-uint8 with `nearest`).
      a: forward `[2, 3]` matrix.
      out_shape: `(H, W)` of the output, default the input shape.
      fill: value for pixels that map from outside the input (white = 1.0).
      nearest: nearest-neighbour interpolation (for masks).

    Returns:
      `[H', W']` of the input dtype.
    """
    h, w = out_shape if out_shape is not None else image.shape[:2]
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(
        image,
        np.asarray(a, dtype=np.float64),
        (w, h),
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float(fill),
    )


def random_rotation(
    shape: tuple[int, int], cfg: RotationConfig, rng: np.random.Generator
) -> np.ndarray:
    """Draws a forward matrix: angle `U(-max_angle, max_angle)`, translation `U(-t, t)^2`.

    Args:
      shape: `(H, W)` of the image.
      cfg: ranges.
      rng: the per-record generator.

    Returns:
      float64 `[2, 3]`.
    """
    angle = rng.uniform(-cfg.max_angle, cfg.max_angle)
    t = (
        rng.uniform(-cfg.max_translation, cfg.max_translation, size=2)
        if cfg.max_translation > 0
        else (0.0, 0.0)
    )
    return rotation_matrix(shape, angle, (float(t[0]), float(t[1])))
