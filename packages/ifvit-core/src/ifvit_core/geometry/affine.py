"""Affine algebra on `[..., 2, 3]` maps: identity, apply, invert, compose.

Conventions (docs/contracts.md): a point is `(x, y)` in pixels, `x` = column, `y` = row, origin at
the centre of the top-left pixel; a 2-D affine map is a `[2, 3]` matrix `A` in the OpenCV convention
`p_dst = A @ [x, y, 1]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def identity_affine(batch_shape: tuple[int, ...] = ()) -> jax.Array:
    """Identity maps, `[*batch_shape, 2, 3]` float32."""
    eye = jnp.eye(2, 3, dtype=jnp.float32)
    return jnp.broadcast_to(eye, (*batch_shape, 2, 3))


def apply_affine(A: jax.Array, pts: jax.Array) -> jax.Array:
    """Map points: `A @ [x, y, 1]`.

    Args:
      A: [..., 2, 3] affine maps.
      pts: [..., M, 2] points `(x, y)`; leading axes broadcast with those of `A`.

    Returns:
      [..., M, 2] mapped points.
    """
    return jnp.einsum("...ij,...mj->...mi", A[..., :2], pts) + A[..., None, :, 2]


def invert_affine(A: jax.Array) -> jax.Array:
    """Inverse map `A⁻¹` (closed-form 2x2 inverse), `[..., 2, 3]` -> `[..., 2, 3]`.

    A singular `A` gives non-finite entries; callers guard with the RANSAC `ok` flag.
    """
    a, b, tx = A[..., 0, 0], A[..., 0, 1], A[..., 0, 2]
    c, d, ty = A[..., 1, 0], A[..., 1, 1], A[..., 1, 2]
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    itx = -(ia * tx + ib * ty)
    ity = -(ic * tx + id_ * ty)
    return jnp.stack(
        [jnp.stack([ia, ib, itx], axis=-1), jnp.stack([ic, id_, ity], axis=-1)], axis=-2
    )


def compose_affine(A2: jax.Array, A1: jax.Array) -> jax.Array:
    """`A2 ∘ A1`: the map that applies `A1` first, then `A2`. `[..., 2, 3]` each."""
    lin = A2[..., :2] @ A1[..., :2]
    t = jnp.einsum("...ij,...j->...i", A2[..., :2], A1[..., 2]) + A2[..., 2]
    return jnp.concatenate([lin, t[..., None]], axis=-1)
