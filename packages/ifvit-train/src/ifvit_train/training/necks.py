"""The linear necks' fits, in numpy: PCA whitening, within-finger whitening, the BatchNorm neck
they replace, and folding a fit into a Module 2 branch's FC layer. `whiten` computes the features
they are fitted on and writes the bundle.

    w = fit_within_finger(h [N, e], fingers [N], eps)   # or fit_whitening(h, eps): no labels
    fold_whitening(matcher, {"global": w_g, "local": w_l})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from ifvit_core.ifvit.representation import Matcher

BRANCHES = ("global", "local")
DEFAULT_EPS = 1e-3  # eigenvalue floor, relative to the largest (chosen before any DB1_B run)
TEMPLATE_EPS = 0.1  # the template neck's eigenvalue floor (leave one training set out)


@dataclass(frozen=True)
class Whitening:
    """`z = (h - mean) @ matrix` of one branch: mean [e], matrix [e, e] (float64)."""

    mean: np.ndarray
    matrix: np.ndarray


def fit_whitening(h: np.ndarray, eps: float = DEFAULT_EPS) -> Whitening:
    """PCA whitening of rows `h` [N, e]: the covariance's eigenvalues λ are floored by adding
    `eps · λ_max` (directions without variance are not blown up). Needs N > e."""
    h = np.asarray(h, np.float64)
    n, e = h.shape
    if n <= e:
        raise ValueError(f"whitening {e}-d embeddings needs more than {e} vectors, got {n}: "
                         "give more prints or more pairs")
    mean = h.mean(axis=0)
    lam, vec = np.linalg.eigh(np.cov(h - mean, rowvar=False))
    lam = np.maximum(lam, 0.0)
    return Whitening(mean, vec / np.sqrt(lam + eps * lam.max()))


def batchnorm_neck(branch: Any, h: np.ndarray) -> np.ndarray:
    """A branch's BatchNorm neck in eval mode (running statistics) on pre-neck rows `h` [N, e]."""
    n = branch.embed_norm
    return ((h - np.asarray(n.mean[...])) / np.sqrt(np.asarray(n.var[...]) + n.epsilon)
            * np.asarray(n.scale[...]) + np.asarray(n.bias[...]))


def fit_within_finger(h: np.ndarray, fingers: np.ndarray, eps: float = TEMPLATE_EPS,
                      ) -> Whitening:
    """Whitening of rows `h` [N, e] by their within-finger covariance (`fingers` [N] labels, any
    hashable values; fingers with one row add nothing): mean = the mean of all rows, eigenvalues
    floored by adding `eps · λ_max`. Needs N - (number of fingers) > e."""
    h = np.asarray(h, np.float64)
    fingers = np.asarray(fingers)
    n, e = h.shape
    labels, inverse = np.unique(fingers, return_inverse=True)
    dof = n - len(labels)
    if dof <= e:
        raise ValueError(f"a within-finger whitening of {e}-d embeddings needs more than {e} "
                         f"vectors beyond one per finger, got {n} of {len(labels)} fingers: give "
                         "more impressions per finger")
    centres = np.zeros((len(labels), e))
    np.add.at(centres, inverse, h)
    centres /= np.bincount(inverse)[:, None]
    d = h - centres[inverse]
    lam, vec = np.linalg.eigh(d.T @ d / dof)
    lam = np.maximum(lam, 0.0)
    return Whitening(h.mean(axis=0), vec / np.sqrt(lam + eps * lam.max()))


def fold_whitening(matcher: Matcher, whitening: dict[str, Whitening]) -> None:
    """Folds each branch's whitening into its FC and makes its BatchNorm neck the identity (in
    place). Afterwards `branch.embed_norm(branch.embed(p)) == (FC_old(p) - mean) @ matrix`."""
    for name in BRANCHES:
        br = getattr(matcher, f"{name}_branch")
        w = whitening[name]
        k = np.asarray(br.embed.kernel[...], np.float64)
        b = np.asarray(br.embed.bias[...], np.float64)
        br.embed.kernel[...] = jnp.asarray(k @ w.matrix, jnp.float32)
        br.embed.bias[...] = jnp.asarray((b - w.mean) @ w.matrix, jnp.float32)
        norm = br.embed_norm
        e = w.mean.shape[0]
        norm.mean[...] = jnp.zeros(e, jnp.float32)
        norm.var[...] = jnp.full(e, 1.0 - norm.epsilon, jnp.float32)
        norm.scale[...] = jnp.ones(e, jnp.float32)
        norm.bias[...] = jnp.zeros(e, jnp.float32)
