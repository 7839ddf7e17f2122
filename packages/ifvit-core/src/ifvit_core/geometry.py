"""Alignment geometry between Module 1 and Module 2 (SPEC §2.8, §4.5), jit-able with fixed shapes.

Conventions (docs/contracts.md): a point is `(x, y)` in pixels, `x` = column, `y` = row, origin at
the centre of the top-left pixel; a 2-D affine map is a `[2, 3]` matrix `A` in the OpenCV convention
`p_dst = A @ [x, y, 1]`. Images are `[B, H, W, C]` float32.

Shape glossary (STYLE §3.4): `B` batch, `H, W` image, `C` channels, `M` (padded) point
correspondences, `N` RANSAC hypotheses.

Contents:
* weighted least-squares fits: `fit_similarity` (4 dof, closed form) and `fit_affine` (6 dof);
* `ransac_similarity`: fixed-iteration RANSAC (similarity or affine) with refits and an identity
  fallback (replaces OpenCV `estimateAffinePartial2D` / `estimateAffine2D`);
* affine algebra: `invert_affine`, `apply_affine`, `compose_affine`, `identity_affine`;
* `warp_image` (the `cv2.warpAffine` convention, bilinear, constant fill) and its validity mask;
* `effective_mask`, `overlap_roi`, `crop` for the Module-2 global/local inputs.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# --------------------------------------------------------------------------------------------------
# Affine algebra
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Weighted least-squares fits
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# RANSAC
# --------------------------------------------------------------------------------------------------


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
      key: PRNG key.
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
    g = jax.random.gumbel(key, (b, num_iters, m)) + logits  # [B, N, M]
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


# --------------------------------------------------------------------------------------------------
# Warping
# --------------------------------------------------------------------------------------------------


def _bilinear_sample(image: jax.Array, x: jax.Array, y: jax.Array, fill: float) -> jax.Array:
    """Bilinear samples of one image at float pixel coords, constant `fill` outside.

    image: [H, W, C]; x, y: [Ho, Wo] -> [Ho, Wo, C]. Each of the 4 neighbours outside the image
    contributes `fill` (OpenCV BORDER_CONSTANT behaviour).
    """
    h, w, c = image.shape
    x0 = jnp.floor(x)
    y0 = jnp.floor(y)
    fx = x - x0
    fy = y - y0
    x0 = x0.astype(jnp.int32)
    y0 = y0.astype(jnp.int32)
    flat = image.reshape(h * w, c)
    out = jnp.zeros((*x.shape, c), image.dtype)
    for dy, dx, wt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                       (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        v = flat[jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)]  # [Ho, Wo, C]
        v = jnp.where(inside[..., None], v, fill)
        out = out + wt[..., None] * v
    return out


def warp_image(
    image: jax.Array,
    A: jax.Array,
    out_shape: tuple[int, int],
    fill: float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """Warp images like `cv2.warpAffine(img, A, (W_out, H_out))` (bilinear, BORDER_CONSTANT).

    `A` maps a source pixel to its destination: a feature at `p` in `image` lands at `A @ [p; 1]` in
    the output, i.e. `out(q) = image(A⁻¹ q)`. Pixel centres are integer coordinates (contract). To
    align image 1 onto image 0 with RANSAC's `A` (image0 -> image1), pass `invert_affine(A)`.

    Args:
      image: [B, H, W, C].
      A: [B, 2, 3] source -> destination maps.
      out_shape: static `(H_out, W_out)`.
      fill: value outside the source (1.0 = white background of prints).

    Returns:
      (warped [B, H_out, W_out, C] float32, valid [B, H_out, W_out] bool): `valid` is True where the
      sample point lies inside the source image, `0 <= x <= W-1` and `0 <= y <= H-1`.
    """
    ho, wo = out_shape
    _, h, w, _ = image.shape
    # fp32 coordinates: bf16 cannot even represent integer pixel positions above 256.
    image = image.astype(jnp.float32)
    inv = invert_affine(A.astype(jnp.float32))  # [B, 2, 3]
    qy, qx = jnp.meshgrid(jnp.arange(ho, dtype=jnp.float32), jnp.arange(wo, dtype=jnp.float32),
                          indexing="ij")
    q = jnp.stack([qx, qy], axis=-1).reshape(1, ho * wo, 2)  # [1, Ho*Wo, 2]
    p = apply_affine(inv, q).reshape(-1, ho, wo, 2)  # [B, Ho, Wo, 2] source coordinates
    x, y = p[..., 0], p[..., 1]
    warped = jax.vmap(lambda im, xx, yy: _bilinear_sample(im, xx, yy, fill))(image, x, y)
    valid = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return warped, valid


# --------------------------------------------------------------------------------------------------
# Effective mask, overlap and ROI (SPEC §4.5)
# --------------------------------------------------------------------------------------------------


def _pool(x: jax.Array, size: int, op: Literal["max", "min", "sum"], pad_value: float) -> jax.Array:
    """Stride-1 `size x size` pooling of [B, H, W] with 'same' output and constant padding."""
    lo = (size - 1) // 2
    hi = size - 1 - lo
    x = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi)), constant_values=pad_value)
    fn = {"max": jax.lax.max, "min": jax.lax.min, "sum": jax.lax.add}[op]
    init = {"max": -jnp.inf, "min": jnp.inf, "sum": 0.0}[op]
    init = jnp.asarray(init, x.dtype)
    return jax.lax.reduce_window(x, init, fn, (1, size, size), (1, 1, 1), "VALID")


def _box_sum_1d(v: np.ndarray, size: int) -> np.ndarray:
    """Host-side 'same' box sum of a 1-D array with zero padding (window split as in `_pool`)."""
    lo = (size - 1) // 2
    c = np.concatenate([[0.0], np.cumsum(np.pad(v, (lo, size - 1 - lo)))])
    return c[size:] - c[:-size]


def _box_sum(x: jax.Array, size: int) -> jax.Array:
    """'same' `size x size` box sum of [B, H, W] with zero padding, via separable cumsums."""
    lo = (size - 1) // 2
    hi = size - 1 - lo
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (lo + 1, hi)  # one extra leading zero makes the difference of cumsums exact
        c = jnp.cumsum(jnp.pad(x, pad), axis=axis)
        n = x.shape[axis]
        x = jax.lax.slice_in_dim(c, size, size + n, axis=axis) - jax.lax.slice_in_dim(c, 0, n, axis=axis)
    return x


def effective_mask(
    image: jax.Array,
    *,
    box: int = 25,
    rel_threshold: float = 0.15,
    close_size: int = 5,
) -> jax.Array:
    """Foreground (ridge area) mask of fingerprints (SPEC §4.5), fixed shapes.

    |Sobel gradient| (edge-replicated borders, so image borders are not edges) -> `box x box` mean
    filter (normalised by the in-image pixel count near borders) -> `> rel_threshold · max` per
    image -> morphological closing (`close_size` max-pool then min-pool; the erosion treats outside
    as foreground, so closing never removes pixels). The "largest connected component" step of
    SPEC §4.5 is skipped: it needs iterative labelling with data-dependent work.

    Args:
      image: [B, H, W, 1] or [B, H, W] grey images.
      box: mean-filter side, ≈25 px at 500 ppi [PRIOR].
      rel_threshold: fraction of the per-image maximum, 0.15 [PRIOR].
      close_size: closing structuring-element side [INF].

    Returns:
      [B, H, W] bool mask.
    """
    if image.ndim == 4:
        image = image[..., 0]
    x = image.astype(jnp.float32)  # fp32: gradients of [0,1] images are small differences
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = x.shape[1:]

    def sl(dy: int, dx: int) -> jax.Array:  # the image shifted by (dy, dx), edge-replicated
        return xp[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx = (sl(-1, 1) + 2 * sl(0, 1) + sl(1, 1)) - (sl(-1, -1) + 2 * sl(0, -1) + sl(1, -1))
    gy = (sl(1, -1) + 2 * sl(1, 0) + sl(1, 1)) - (sl(-1, -1) + 2 * sl(-1, 0) + sl(-1, 1))
    mag = jnp.sqrt(gx * gx + gy * gy)
    # Box sums by separable cumulative sums (O(HW), unlike a 25x25 reduce_window), and the in-image
    # pixel count as a host constant (XLA spends seconds constant-folding it as a reduce_window).
    count = _box_sum_1d(np.ones(h), box)[:, None] * _box_sum_1d(np.ones(w), box)[None, :]
    energy = _box_sum(mag, box) / jnp.asarray(count, jnp.float32)
    peak = jnp.max(energy, axis=(1, 2), keepdims=True)
    # A flat image (peak 0) yields an empty mask rather than everything >= 0.
    mask = (energy > rel_threshold * peak) & (peak > 0)
    m = mask.astype(jnp.float32)
    m = _pool(m, close_size, "max", 0.0)
    m = _pool(m, close_size, "min", 1.0)
    return m > 0.5


def _as_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def overlap_roi(
    mask0: jax.Array, mask1: jax.Array, roi_size: int | tuple[int, int]
) -> tuple[jax.Array, jax.Array]:
    """Overlap of two aligned masks and the top-left corner of a fixed-size ROI at its centroid.

    The ROI `[x0, x0 + w) x [y0, y0 + h)` is centred on the overlap centroid `c`
    (`x0 = round(c_x - (w - 1) / 2)`) and clamped inside the image; an empty overlap uses the
    image centre.

    Args:
      mask0: [B, H, W] bool. mask1: [B, H, W] bool (already in the same frame).
      roi_size: static `h = w` int or `(h, w)`, at most `(H, W)`.

    Returns:
      (overlap [B, H, W] bool, origin [B, 2] int32 `(x0, y0)` in the contract's point order).
    """
    rh, rw = _as_hw(roi_size)
    _, h, w = mask0.shape
    if rh > h or rw > w:
        raise ValueError(f"roi_size {(rh, rw)} larger than the image {(h, w)}")
    overlap = mask0.astype(bool) & mask1.astype(bool)
    m = overlap.astype(jnp.float32)
    n = jnp.sum(m, axis=(1, 2))
    ys = jnp.arange(h, dtype=jnp.float32)
    xs = jnp.arange(w, dtype=jnp.float32)
    cx = jnp.sum(m * xs[None, None, :], axis=(1, 2)) / jnp.maximum(n, 1.0)
    cy = jnp.sum(m * ys[None, :, None], axis=(1, 2)) / jnp.maximum(n, 1.0)
    cx = jnp.where(n > 0, cx, (w - 1) / 2)
    cy = jnp.where(n > 0, cy, (h - 1) / 2)
    x0 = jnp.clip(jnp.round(cx - (rw - 1) / 2), 0, w - rw)
    y0 = jnp.clip(jnp.round(cy - (rh - 1) / 2), 0, h - rh)
    return overlap, jnp.stack([x0, y0], axis=-1).astype(jnp.int32)


def crop(
    image: jax.Array,
    origin: jax.Array,
    size: int | tuple[int, int],
    *,
    fill: float = 1.0,
) -> jax.Array:
    """Fixed-size crops at per-example origins (`jax.lax.dynamic_slice` under vmap).

    Pixels of the window outside the image take `fill` (so an unclamped origin pads with the white
    background instead of being silently shifted, as bare `dynamic_slice` would do).

    Args:
      image: [B, H, W, C].
      origin: [B, 2] int `(x0, y0)` top-left pixel of each window.
      size: static `h = w` int or `(h, w)`.
      fill: value outside the image.

    Returns:
      [B, h, w, C].
    """
    rh, rw = _as_hw(size)
    _, h, w, c = image.shape
    padded = jnp.pad(image, ((0, 0), (rh, rh), (rw, rw), (0, 0)), constant_values=fill)
    # Clamp to the padded frame so dynamic_slice never shifts the window itself.
    x0 = jnp.clip(origin[:, 0].astype(jnp.int32), -rw, w) + rw
    y0 = jnp.clip(origin[:, 1].astype(jnp.int32), -rh, h) + rh

    def one(im: jax.Array, yy: jax.Array, xx: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(im, (yy, xx, 0), (rh, rw, c))

    return jax.vmap(one)(padded, y0, x0)
