"""Neck whitening: Module 2's embedding neck re-estimated on real prints, without labels.

Each branch embeds a print as `z = L2norm(BN(FC(mean tokens)))`. The BatchNorm neck's running
statistics come from the training prints (for the shipped model: synthetic ones). On real prints
the pre-neck vectors `h = FC(...)` are distributed otherwise: with the shipped model on FVC2002
DB1_B, two directions carry 96% of the unit embeddings' energy (effective dimension 1.5), so the
cosine of almost any two prints is near +1 or -1 and the fused cosine sits at 18.3% EER.

Whitening replaces the per-dimension neck by the full one of the sensor domain: from the pre-neck
vectors `H` [N, e] of pairs of real prints (any pairs: no identity label is used), the mean `μ`
and covariance `C = V diag(λ) Vᵀ` give `W = V diag(1 / sqrt(λ + ε·λ_max))` and
`z = L2norm((h - μ) W)` (PCA whitening, as in image retrieval). It is folded into the model
exactly: FC's kernel becomes `K W`, its bias `(b - μ) W`, and the BatchNorm becomes the identity,
so a whitened bundle is an ordinary bundle (same network, same graphs, pairwise scores and
templates alike), and `z` differs from the unfolded formula only by float rounding.

The pairs are the prints' own protocol pairs (`evaluate.protocol_pairs`, 'baselines'),
subsampled; both images of a pair give a vector (the global branch's depends on the partner
through the overlap and cross attention, as at inference). The statistics come from the
preparation and forward path of `ifvit match` (`Verifier`), so they describe what inference sees.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core.ifvit.representation import Matcher, masked_mean_tokens
from ifvit_core.ifvit.verify import register_pair
from ifvit_train.bundle import LoadedBundle
from ifvit_train.evaluate import PrintSet, protocol_pairs
from ifvit_train.infer import Verifier, shape_groups
from ifvit_train.preprocessing import enhance_inputs

BRANCHES = ("global", "local")
DEFAULT_EPS = 1e-3  # eigenvalue floor, relative to the largest (chosen before any DB1_B run)
DEFAULT_PAIRS = 400  # pairs per data set


@functools.cache
def _feature_graph(cfg: Any, enh: Any):
    """jit `(graphdef, state, key, i0, i1, k0, k1) -> {'global0', 'global1', 'local0', 'local1'}`
    pre-neck vectors [B, e] of both images of each pair (the path of `verify_pairs`)."""

    @functools.partial(jax.jit, static_argnums=0)
    def run(graphdef, state, key, i0, i1, k0, k1):
        m1, m2 = nnx.merge(graphdef, state)
        i0, i1 = enhance_inputs(enh, i0, k0), enhance_inputs(enh, i1, k1)
        _, _, inp = register_pair(cfg, m1, key, i0, i1, k0, k1)
        out = {}
        for name, br, x0, x1, mask in (
                ("global", m2.global_branch, inp.global0, inp.global1, inp.global_mask),
                ("local", m2.local_branch, inp.roi0, inp.roi1, None)):
            c0, c1, _, _ = br.extract(x0, x1, fine=False)
            f0, f1 = br.encode_coarse(c0, c1, mask, mask)
            out[f"{name}0"] = br.embed(masked_mean_tokens(f0, mask))
            out[f"{name}1"] = br.embed(masked_mean_tokens(f1, mask))
        return out

    return run


def neck_features(verifier: Verifier, prints: PrintSet, pairs: np.ndarray, batch_size: int = 8,
                  progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Pre-neck vectors of `pairs` [P, 2] (entry indices of `prints`).

    Returns {'kept': int [P'] indices into `pairs` of the pairs whose prints were both prepared,
    in order; 'global0', 'global1', 'local0', 'local1': float64 [P', e] the vectors of image 0 and
    image 1 of those pairs, row k for pair kept[k]}.
    """
    run = _feature_graph(verifier.cfg, verifier.enhance)
    kept = np.array([k for k, (a, b) in enumerate(np.asarray(pairs).reshape(-1, 2))
                     if prints.prepared[a] is not None and prints.prepared[b] is not None],
                    np.int64)
    prep = [(prints.prepared[pairs[k][0]], prints.prepared[pairs[k][1]]) for k in kept]
    out = {f"{b}{s}": np.zeros((len(kept), 0)) for b in BRANCHES for s in "01"}
    for idx in shape_groups([(a.window.shape, b.window.shape) for a, b in prep], batch_size):
        full = [prep[i] for i in idx] + [prep[idx[-1]]] * (batch_size - len(idx))

        def arr(xs: list[np.ndarray]) -> jax.Array:
            return jnp.asarray(np.stack(xs))

        o = jax.device_get(run(*verifier.models, verifier.key,
                               arr([a.window[..., None] for a, _ in full]),
                               arr([b.window[..., None] for _, b in full]),
                               arr([a.mask for a, _ in full]), arr([b.mask for _, b in full])))
        for k, v in o.items():
            if out[k].shape[1] == 0:
                out[k] = np.zeros((len(kept), v.shape[1]))
            out[k][idx] = np.asarray(v[:len(idx)], np.float64)
        if progress is not None:
            progress(len(idx))
    return {"kept": kept, **out}


def stacked(f: dict[str, np.ndarray], branch: str) -> np.ndarray:
    """The vectors of both images of `neck_features` output for one branch, [2P', e]."""
    return np.concatenate([f[f"{branch}0"], f[f"{branch}1"]])


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


def sample_pairs(prints: PrintSet, max_pairs: int, seed: int) -> np.ndarray:
    """Up to `max_pairs` of the set's 'baselines' protocol pairs [P, 2], seeded."""
    pairs, _ = protocol_pairs(prints.entries, "baselines")
    if len(pairs) > max_pairs:
        pairs = pairs[np.sort(np.random.default_rng(seed).choice(len(pairs), max_pairs,
                                                                 replace=False))]
    return pairs


def files_digest(prints: PrintSet) -> str:
    """SHA-256 over the set's files (relative name and content, sorted): names a data set by what
    it holds, not where it lies."""
    h = hashlib.sha256()
    for e in sorted(prints.entries, key=lambda e: str(e.path)):
        h.update(str(Path(e.path).relative_to(prints.root)).encode() + b"\0")
        h.update(hashlib.sha256(Path(e.path).read_bytes()).digest())
    return h.hexdigest()


def whiten(verifier: Verifier, sets: Sequence[PrintSet], pairs_per_set: int = DEFAULT_PAIRS,
           eps: float = DEFAULT_EPS, seed: int = 0,
           progress: Callable[[int], None] | None = None,
           dpis: Sequence[float | None] | None = None) -> tuple[dict[str, Whitening], dict]:
    """Fits each branch's whitening on pairs of `sets` (never an evaluation set; `dpis`: the
    resolution each set was prepared at, for the record).

    Returns (whitening per branch, the record bundle.json keeps: sets by folder name, file hash,
    prints and pairs; eps; vectors per branch)."""
    feats: dict[str, list[np.ndarray]] = {b: [] for b in BRANCHES}
    record = []
    for i, ps in enumerate(sets):
        pairs = sample_pairs(ps, pairs_per_set, seed + i)
        f = neck_features(verifier, ps, pairs, progress=progress)
        for b in BRANCHES:
            feats[b].append(stacked(f, b))
        record.append({"data": ps.root.name, "files_sha256": files_digest(ps),
                       "dpi": dpis[i] if dpis and dpis[i] else "the files'",
                       "prints": len(ps.entries), "pairs": int(len(f["kept"]))})
    w = {b: fit_whitening(np.concatenate(feats[b]), eps) for b in BRANCHES}
    return w, {"sets": record, "eps": eps, "seed": seed, "vectors_per_branch":
               int(sum(len(x) for x in feats["global"])), "method": "PCA whitening of the "
               "pre-neck embeddings, folded into FC; BatchNorm neck set to the identity"}


def whiten_bundle(bundle: LoadedBundle, whitening: dict[str, Whitening], record: dict[str, Any],
                  dst: str | Path) -> dict[str, Any]:
    """Writes `bundle` with each branch's whitening folded in (`fold_whitening`) as a
    weights-only bundle into the empty folder `dst`; returns its bundle.json content.

    The thresholds and the evidence-weight calibration of the source were fitted to the old
    cosines: they are dropped (recorded under `whitened.replaced`); run `ifvit calibrate` on the
    new bundle. `bundle`'s matcher is changed in place.
    """
    from ifvit_train.bundle import BUNDLE_FILE, portable, state_hash, write_json_atomic
    from ifvit_train.checkpoint import save_weights

    if bundle.matcher is None:
        raise ValueError(f"{bundle.path}: a Module 1 bundle; whitening needs a Module 2 bundle")
    dst = Path(dst)
    fold_whitening(bundle.matcher, whitening)

    def weights(m: nnx.Module) -> dict[str, Any]:
        _, p, stats = nnx.split(m, nnx.Param, nnx.BatchStat)
        return {"params": p, "batch_stats": stats}

    save_weights(dst / "module1", weights(bundle.module1))
    save_weights(dst / "module2", weights(bundle.matcher))
    meta = {k: v for k, v in bundle.meta.items() if k not in ("thresholds", "calibration")}
    replaced = {k: bundle.meta[k] for k in ("thresholds", "calibration") if k in bundle.meta}
    src = {"path": str(bundle.path.resolve()), "step": bundle.step,
           "weights_sha256": bundle.meta.get("weights_sha256")}
    meta = portable({**meta, "step": bundle.step,
                     "exported_from": bundle.meta.get("exported_from", src),
                     "whitened": {**record, "from": src, "replaced": replaced},
                     "weights_sha256": state_hash(dst / "module2")})
    write_json_atomic(dst / BUNDLE_FILE, meta)
    return meta
