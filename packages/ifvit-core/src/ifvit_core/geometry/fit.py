"""Robust 2-D fits from point correspondences, jit-able with fixed shapes.

* weighted least-squares fits: `fit_similarity` (4 dof, closed form) and `fit_affine` (6 dof);
* `ransac_similarity`: fixed-iteration RANSAC (similarity or affine) with refits and an identity
  fallback (replaces OpenCV `estimateAffinePartial2D` / `estimateAffine2D`).

Conventions (docs/contracts.md): a point is `(x, y)` in pixels, `x` = column, `y` = row, origin at
the centre of the top-left pixel; a 2-D affine map is a `[2, 3]` matrix `A` in the OpenCV convention
`p_dst = A @ [x, y, 1]`. Shape glossary: `B` batch, `M` (padded) correspondences, `N` RANSAC
hypotheses.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from ifvit_core.geometry.affine import apply_affine, identity_affine


def _weighted_centering(
    src: jax.Array, dst: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    # fp32 and centring first: raw pixel coordinates (~1e3) squared in the normal equations would
    # lose the small residual structure; centred coordinates keep the system well conditioned.
    src = src.astype(jnp.float32)
    dst = dst.astype(jnp.float32)
    w = jnp.maximum(weights.astype(jnp.float32), 0.0)  # [..., M]
    wsum = jnp.sum(w, axis=-1, keepdims=True)  # [..., 1]
    # max(., tiny): an all-zero weight vector gives zero means instead of 0/0.
    wn = w / jnp.maximum(wsum, 1e-12)
    mu_s = jnp.einsum("...m,...mk->...k", wn, src)  # [..., 2]
    mu_d = jnp.einsum("...m,...mk->...k", wn, dst)
    return src - mu_s[..., None, :], dst - mu_d[..., None, :], wn, mu_s, mu_d


def _assemble(lin: jax.Array, mu_s: jax.Array, mu_d: jax.Array) -> jax.Array:
    t = mu_d - jnp.einsum("...ij,...j->...i", lin, mu_s)
    return jnp.concatenate([lin, t[..., None]], axis=-1)


def fit_similarity(src: jax.Array, dst: jax.Array, weights: jax.Array) -> jax.Array:
    """Weighted least-squares similarity (scale, rotation, translation; no reflection).

    Minimises `Σ w_m |s R src_m + t - dst_m|²`. In 2-D this is linear in `(a, b) = s (cos φ, sin φ)`
    and has the closed form (Umeyama 1991 specialised to 2-D, centred coordinates):
    `a = Σ w (xs·xd + ys·yd) / Σ w |src|²`, `b = Σ w (xs·yd - ys·xd) / Σ w |src|²`.

    Args:
      src: [..., M, 2] points in the source image.
      dst: [..., M, 2] corresponding points in the destination image.
      weights: [..., M] non-negative weights (0 = ignore).

    Returns:
      [..., 2, 3] `A = [[a, -b, tx], [b, a, ty]]` with `dst ≈ A @ [src; 1]`. Degenerate input (fewer
      than 2 distinct weighted points) gives a finite, rank-deficient `A`.
    """
    xs, xd, wn, mu_s, mu_d = _weighted_centering(src, dst, weights)
    den = jnp.sum(wn * jnp.sum(xs * xs, axis=-1), axis=-1)  # [...]
    num_a = jnp.sum(wn * (xs[..., 0] * xd[..., 0] + xs[..., 1] * xd[..., 1]), axis=-1)
    num_b = jnp.sum(wn * (xs[..., 0] * xd[..., 1] - xs[..., 1] * xd[..., 0]), axis=-1)
    den = jnp.maximum(den, 1e-12)  # coincident points: a = b = 0 instead of 0/0
    a, b = num_a / den, num_b / den
    lin = jnp.stack([jnp.stack([a, -b], -1), jnp.stack([b, a], -1)], -2)
    return _assemble(lin, mu_s, mu_d)


def fit_affine(
    src: jax.Array, dst: jax.Array, weights: jax.Array, *, ridge: float = 1e-6
) -> jax.Array:
    """Weighted least-squares affine map (6 dof) via centred normal equations.

    Solves `L = (Σ w xd xsᵀ)(Σ w xs xsᵀ + λ I)⁻¹`, `t = μ_d - L μ_s` with
    `λ = ridge · trace/2` (+1e-12), a relative ridge that keeps collinear / coincident point sets
    finite and barely biases a well-posed fit.

    Args:
      src: [..., M, 2]. dst: [..., M, 2]. weights: [..., M] non-negative (0 = ignore).
      ridge: relative Tikhonov term [INF].

    Returns:
      [..., 2, 3] affine `A` with `dst ≈ A @ [src; 1]`.
    """
    xs, xd, wn, mu_s, mu_d = _weighted_centering(src, dst, weights)
    cov_ss = jnp.einsum("...m,...mi,...mj->...ij", wn, xs, xs)  # [..., 2, 2]
    cov_ds = jnp.einsum("...m,...mi,...mj->...ij", wn, xd, xs)  # [..., 2, 2]
    lam = ridge * 0.5 * (cov_ss[..., 0, 0] + cov_ss[..., 1, 1]) + 1e-12
    p = cov_ss[..., 0, 0] + lam
    q = cov_ss[..., 0, 1]
    r = cov_ss[..., 1, 1] + lam
    det = p * r - q * q  # > 0: cov_ss is PSD and lam > 0
    inv = jnp.stack([jnp.stack([r, -q], -1), jnp.stack([-q, p], -1)], -2) / det[..., None, None]
    return _assemble(cov_ds @ inv, mu_s, mu_d)


class RansacResult(NamedTuple):
    """Output of `ransac_similarity` (a pytree).

    A: [B, 2, 3] fitted map (identity where `ok` is False).
    inliers: [B, M] bool inliers of the final model (all False where `ok` is False).
    num_inliers: [B] int32.
    ok: [B] bool, `num_inliers >= min_inliers` and the fit is finite.
    """

    A: jax.Array
    inliers: jax.Array
    num_inliers: jax.Array
    ok: jax.Array


def _residuals(A: jax.Array, src: jax.Array, dst: jax.Array) -> jax.Array:
    """|A src - dst| for A [..., 2, 3], src/dst [..., M, 2] -> [..., M]."""
    d = apply_affine(A, src) - dst
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


def ransac_similarity(
    key: jax.Array,
    src: jax.Array,
    dst: jax.Array,
    valid: jax.Array,
    *,
    weights: jax.Array | None = None,
    num_iters: int = 256,
    threshold: float = 8.0,
    model: Literal["similarity", "affine"] = "similarity",
    min_inliers: int = 10,
    refine_iters: int = 3,
) -> RansacResult:
    """Fixed-iteration RANSAC for a similarity (or affine) map, batched, no host sync.

    1. Draw `num_iters` minimal sets per pair (2 points for a similarity, 3 for an affine) uniformly
       among valid points, without replacement (Gumbel top-k on logits, -inf for invalid points).
    2. Fit each hypothesis exactly, score it by the (weighted) count of valid points with
       reprojection error `< threshold` px, keep the best (first on ties).
    3. `refine_iters` times: least-squares refit on the current inliers, weighted by confidence ×
       Tukey bisquare of the current residual (an IRLS step, so outliers just inside the threshold
       barely count), then re-select the inliers of the refit (default 3 rounds).
    4. `ok = num_inliers >= min_inliers` and a finite fit; otherwise identity and no inliers.

    Defaults: threshold 8 px at the 128-px Module-1 scale (OpenCV `estimateAffinePartial2D`-like)
    [INF, SPEC §2.8]; min_inliers 10 [INF, SPEC §2.8]; 256 iterations [INF] (with 50 % inliers a
    2-point sample is clean with p = 0.25, so 256 draws miss with p ≈ 1e-32).

    Args:
      key: PRNG key. One set of random draws [num_iters, M] serves every pair of the batch, so a
        pair's result does not depend on its position or neighbours in the batch (batched and
        one-by-one scoring agree, whatever the PRNG implementation).
      src: [B, M, 2] points in image 0 (e.g. Module-1 match pixels).
      dst: [B, M, 2] corresponding points in image 1.
      valid: [B, M] bool, real correspondences (padding False).
      weights: optional [B, M] non-negative confidences, used for scoring and refits (not sampling);
        points with weight 0 count as invalid.
      num_iters: hypotheses per pair (static).
      threshold: inlier reprojection error in pixels.
      model: "similarity" (4 dof) or "affine" (6 dof) (static).
      min_inliers: fewer final inliers -> `ok = False`, identity.
      refine_iters: inlier re-estimation + refit rounds (static).

    Returns:
      RansacResult(A [B,2,3], inliers [B,M], num_inliers [B], ok [B]) mapping src -> dst.
    """
    if model == "similarity":
        fit, k = fit_similarity, 2
    elif model == "affine":
        fit, k = fit_affine, 3
    else:
        raise ValueError(f"unknown model {model!r}")
    # RANSAC is a non-differentiable selection; keep it out of any surrounding autodiff.
    src = jax.lax.stop_gradient(src.astype(jnp.float32))
    dst = jax.lax.stop_gradient(dst.astype(jnp.float32))
    valid = valid.astype(bool)
    if weights is None:
        w = valid.astype(jnp.float32)
    else:
        w = jax.lax.stop_gradient(jnp.maximum(weights.astype(jnp.float32), 0.0))
        valid = valid & (w > 0)
        w = jnp.where(valid, w, 0.0)
    b, m, _ = src.shape

    # 1. minimal samples without replacement: Gumbel-max top-k over the valid points.
    logits = jnp.where(valid, 0.0, -jnp.inf)[:, None, :]  # [B, 1, M]
    g = jax.random.gumbel(key, (1, num_iters, m)) + logits  # [B, N, M], draws shared by the batch
    _, idx = jax.lax.top_k(g, k)  # [B, N, k]; picks padding only if fewer than k valid points
    take = jax.vmap(lambda p, i: p[i])  # per-pair gather: [M,2], [N,k] -> [N,k,2]
    hyp = fit(take(src, idx), take(dst, idx), jnp.ones(idx.shape, jnp.float32))  # [B, N, 2, 3]

    # 2. score every hypothesis on every point.
    res = _residuals(hyp, src[:, None], dst[:, None])  # [B, N, M]
    # A NaN/inf residual (degenerate hypothesis) compares False, so it scores no inliers.
    inl = (res < threshold) & valid[:, None, :]
    score = jnp.sum(jnp.where(inl, w[:, None, :], 0.0), axis=-1)  # [B, N]
    best = jnp.argmax(score, axis=-1)  # [B]
    inliers = jnp.take_along_axis(inl, best[:, None, None], axis=1)[:, 0]  # [B, M]
    A = jnp.take_along_axis(hyp, best[:, None, None, None], axis=1)[:, 0]  # [B, 2, 3]

    # 3. refit on the inliers, re-estimate the inliers. The refit weights are confidence × Tukey
    # bisquare of the current residual, (1 - (r/threshold)²)²: an outlier that lands just inside the
    # threshold (likely with uniform outliers and an 8 px threshold) barely pulls the least squares.
    def msac_cost(res: jax.Array) -> jax.Array:
        # Truncated quadratic (MSAC): inliers cost r², everything else threshold²; NaN -> outlier.
        r2 = jnp.where(res < threshold, res * res, threshold * threshold)
        return jnp.sum(jnp.where(valid, w * r2, 0.0), axis=-1)  # [B]

    def refine(_: int, carry: tuple[jax.Array, jax.Array, jax.Array]):
        A, res, inliers = carry
        u = res / threshold
        bisquare = jnp.square(jnp.clip(1.0 - u * u, 0.0, 1.0))
        A_new = fit(src, dst, jnp.where(inliers, w * bisquare, 0.0))
        res_new = _residuals(A_new, src, dst)
        # Keep the refit unless it is worse under MSAC (guards degenerate inlier sets); counting
        # inliers instead would reject a good refit that merely drops a lucky outlier.
        better = msac_cost(res_new) <= msac_cost(res)
        A = jnp.where(better[:, None, None], A_new, A)
        res = jnp.where(better[:, None], res_new, res)
        return A, res, (res < threshold) & valid

    # fori_loop rather than a Python loop: the body is compiled once, whatever refine_iters is.
    carry = (A, _residuals(A, src, dst), inliers)
    A, _, inliers = jax.lax.fori_loop(0, refine_iters, refine, carry)

    num = jnp.sum(inliers, axis=-1).astype(jnp.int32)
    ok = (num >= min_inliers) & jnp.all(jnp.isfinite(A), axis=(-2, -1))
    A = jnp.where(ok[:, None, None], A, identity_affine((b,)))
    inliers = inliers & ok[:, None]
    num = jnp.where(ok, num, 0)
    return RansacResult(A=A, inliers=inliers, num_inliers=num, ok=ok)
