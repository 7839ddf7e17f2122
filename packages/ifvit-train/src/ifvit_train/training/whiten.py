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
templates alike), and `z` differs from the unfolded formula only by float rounding. With finger
labels (`pairs_method='within-finger'`) the covariance is instead the within-finger one (below):
the pairwise cosine then discounts what differs between impressions of one finger. Leaving one
of six training sets out it was ahead of PCA every time it was measured, by little (mean fused
cosine EER 3.91% -> 3.83% and 3.62% -> 3.42%, `benchmarks/whitening_loso.py`; docs/accuracy.md).

Templates (`ifvit_core.ifvit.embed_images`, one print alone, for 1:N) get their own linear neck
after that one (`Module2Config.template_neck`), fitted with the folders' finger labels: the
single-print vectors `t` (already through the pairwise whitening) are whitened by their
within-finger covariance `C_w = Σ_f Σ_i (t_i - μ_f)(t_i - μ_f)ᵀ / (N - F)`, so the directions in
which impressions of one finger differ (pose, pressure, sensor) weigh least in the template
cosine. Their global weight becomes `template_alpha` (default 0.85: the single print's ROI, at its
foreground centroid, is a different part of the finger in each impression and weighs less). Both
defaults are the lowest mean EER of leaving one of the six training sets out
(`benchmarks/template_whitening.py`, docs/search.md), never chosen on an evaluation set.

The pairs are the prints' own protocol pairs (`evaluate.protocol_pairs`, 'baselines'),
subsampled; both images of a pair give a vector (the global branch's depends on the partner
through the overlap and cross attention, as at inference). The statistics come from the
preparation and forward path of `ifvit match` (`Verifier`), so they describe what inference sees.
"""

from __future__ import annotations

import dataclasses
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

from ifvit_core.config import config_to_dict
from ifvit_core.ifvit.representation import Matcher, masked_mean_tokens
from ifvit_core.ifvit.template import DEFAULT_MODE, template_inputs
from ifvit_core.ifvit.verify import register_pair
from ifvit_train.evaluation.evaluate import PrintSet, protocol_pairs
from ifvit_train.serving.bundle import LoadedBundle
from ifvit_train.serving.infer import Verifier, pair_arrays, print_arrays, shape_groups
from ifvit_train.serving.preprocessing import enhance_inputs
from ifvit_train.training.necks import (  # noqa: F401 (re-exported)
    BRANCHES,
    DEFAULT_EPS,
    TEMPLATE_EPS,
    Whitening,
    batchnorm_neck,
    fit_whitening,
    fit_within_finger,
    fold_whitening,
)

DEFAULT_PAIRS = 400  # pairs per data set
PAIRS_METHODS = ("pca", "within-finger")
TEMPLATE_ALPHA = 0.85  # the templates' global weight (leave one training set out)


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
        o = jax.device_get(run(*verifier.models, verifier.key,
                               *pair_arrays([prep[i] for i in idx], batch_size)))
        for k, v in o.items():
            if out[k].shape[1] == 0:
                out[k] = np.zeros((len(kept), v.shape[1]))
            out[k][idx] = np.asarray(v[:len(idx)], np.float64)
        if progress is not None:
            progress(len(idx))
    return {"kept": kept, **out}


@functools.cache
def _single_graph(cfg: Any, enh: Any, mode: str):
    """jit `(graphdef, state, x, k) -> {'global', 'local'}` pre-neck vectors [B, e] of single
    prints (the path of `embed_images`, before the neck)."""

    @functools.partial(jax.jit, static_argnums=0)
    def run(graphdef, state, x, k):
        _, m2 = nnx.merge(graphdef, state)
        inp = template_inputs(cfg, enhance_inputs(enh, x, k), k)
        return {name: br.embed(masked_mean_tokens(br.encode_single(img, msk, mode=mode), msk))
                for name, br, img, msk in (
                    ("global", m2.global_branch, inp.global_image, inp.global_mask),
                    ("local", m2.local_branch, inp.roi, None))}

    return run


def single_features(verifier: Verifier, prints: PrintSet, mode: str = DEFAULT_MODE,
                    batch_size: int = 8, progress: Callable[[int], None] | None = None,
                    ) -> dict[str, np.ndarray]:
    """Pre-neck vectors of every prepared print of `prints` alone, as templates see them.

    Returns {'kept': int [N'] entry indices of the prepared prints, in order; 'global', 'local':
    float64 [N', e], row k for entry kept[k]}.
    """
    run = _single_graph(verifier.cfg, verifier.enhance, mode)
    kept = np.array([i for i, p in enumerate(prints.prepared) if p is not None], np.int64)
    prep = [prints.prepared[i] for i in kept]
    out = {b: np.zeros((len(kept), verifier.cfg.module2.embed_dim)) for b in BRANCHES}
    for idx in shape_groups([p.window.shape for p in prep], batch_size):
        o = jax.device_get(run(*verifier.models, *print_arrays([prep[i] for i in idx],
                                                                 batch_size)))
        for b in BRANCHES:
            out[b][idx] = np.asarray(o[b][:len(idx)], np.float64)
        if progress is not None:
            progress(len(idx))
    return {"kept": kept, **out}


def stacked(f: dict[str, np.ndarray], branch: str) -> np.ndarray:
    """The vectors of both images of `neck_features` output for one branch, [2P', e]."""
    return np.concatenate([f[f"{branch}0"], f[f"{branch}1"]])


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


@dataclass(frozen=True)
class NeckFit:
    """What `whiten` fits: `pairs` per branch (folded into FC: pairs and templates; None: the
    bundle's neck is kept), `templates` per branch (the template neck, after that one; None: no
    template neck) and their `template_alpha`."""

    pairs: dict[str, Whitening] | None
    templates: dict[str, Whitening] | None = None
    template_alpha: float = TEMPLATE_ALPHA


def whiten(verifier: Verifier, sets: Sequence[PrintSet], pairs_per_set: int = DEFAULT_PAIRS,
           eps: float = DEFAULT_EPS, seed: int = 0,
           progress: Callable[[int], None] | None = None,
           dpis: Sequence[float | None] | None = None,
           template_eps: float | None = TEMPLATE_EPS,
           template_alpha: float = TEMPLATE_ALPHA,
           pairs_method: str = "pca") -> tuple[NeckFit, dict]:
    """Fits each branch's whitening on pairs of `sets` (never an evaluation set; `dpis`: the
    resolution each set was prepared at, for the record; `pairs_per_set` 0: the bundle's neck is
    kept and so are its pairwise scores; `pairs_method` 'pca': unlabelled PCA whitening,
    'within-finger': `fit_within_finger` with the prints' finger labels), then, unless
    `template_eps` is None,
    the template neck on every print of `sets` with their finger labels (a finger is one finger
    of one set).

    `progress(n)` counts pairs, then prints. Returns (the fit, the record bundle.json keeps:
    sets by folder name, file hash, prints and pairs; eps; vectors per branch; the template
    neck's prints and fingers)."""
    record = [{"data": ps.root.name, "files_sha256": files_digest(ps),
               "dpi": dpis[i] if dpis and dpis[i] else "the files'", "prints": len(ps.entries)}
              for i, ps in enumerate(sets)]
    rec: dict[str, Any] = {"sets": record, "seed": seed}
    if pairs_per_set > 0:
        feats: dict[str, list[np.ndarray]] = {b: [] for b in BRANCHES}
        labels: list[np.ndarray] = []
        for i, ps in enumerate(sets):
            pairs = sample_pairs(ps, pairs_per_set, seed + i)
            f = neck_features(verifier, ps, pairs, progress=progress)
            for b in BRANCHES:
                feats[b].append(stacked(f, b))
            kept = pairs[f["kept"]]
            labels.append(np.array([f"{i}/{ps.entries[k].finger}"
                                    for k in np.concatenate([kept[:, 0], kept[:, 1]])]))
            record[i]["pairs"] = int(len(f["kept"]))
        if pairs_method == "pca":
            w = {b: fit_whitening(np.concatenate(feats[b]), eps) for b in BRANCHES}
            how = "PCA whitening of the pre-neck embeddings"
        elif pairs_method == "within-finger":
            w = {b: fit_within_finger(np.concatenate(feats[b]), np.concatenate(labels), eps)
                 for b in BRANCHES}
            how = ("whitening of the pre-neck embeddings by their within-finger covariance "
                   "(finger = a finger of one set)")
        else:
            raise ValueError(f"unknown pairwise neck method {pairs_method!r}; "
                             f"use one of {PAIRS_METHODS}")
        rec.update({"eps": eps, "vectors_per_branch": int(sum(len(x) for x in feats["global"])),
                    "pairs_method": pairs_method,
                    "method": f"{how}, folded into FC; BatchNorm neck set to the identity"})

        def neck(b: str, h: np.ndarray) -> np.ndarray:
            return (h - w[b].mean) @ w[b].matrix
    else:
        w = None
        rec["method"] = "the bundle's embedding neck kept (pairwise scores unchanged)"

        def neck(b: str, h: np.ndarray) -> np.ndarray:
            return batchnorm_neck(getattr(verifier.bundle.matcher, f"{b}_branch"), h)
    if template_eps is None:
        if w is None:
            raise ValueError("nothing to fit: give pairs or a template eps")
        return NeckFit(w), rec
    single = {b: [] for b in BRANCHES}
    fingers = []
    for i, ps in enumerate(sets):
        f = single_features(verifier, ps, progress=progress)
        for b in BRANCHES:
            single[b].append(neck(b, f[b]))
        fingers += [f"{i}/{ps.entries[k].finger}" for k in f["kept"]]
    t = {b: fit_within_finger(np.concatenate(single[b]), np.array(fingers), template_eps)
         for b in BRANCHES}
    rec["templates"] = {"eps": template_eps, "alpha": template_alpha, "prints": len(fingers),
                        "fingers": len(set(fingers)), "method": "within-finger whitening of the "
                        "single-print embeddings (template neck); finger = a finger of one set"}
    return NeckFit(w, t, template_alpha), rec


def with_template_neck(bundle: LoadedBundle, fit: NeckFit) -> LoadedBundle:
    """`bundle` with a Module 2 that has a template neck holding `fit.templates` and the config
    that says so (`template_neck`, `template_alpha`); the other weights are `bundle`'s."""
    m2 = dataclasses.replace(bundle.cfg.module2, template_neck=True,
                             template_alpha=fit.template_alpha)
    cfg = dataclasses.replace(bundle.cfg, module2=m2)
    matcher = Matcher(cfg, rngs=nnx.Rngs(0))
    _, params, stats = nnx.split(bundle.matcher, nnx.Param, nnx.BatchStat)
    nnx.update(matcher, params, stats)
    for name in BRANCHES:
        neck = getattr(matcher, f"{name}_branch").template_neck
        w = fit.templates[name]
        neck.kernel[...] = jnp.asarray(w.matrix, jnp.float32)
        neck.bias[...] = jnp.asarray(-w.mean @ w.matrix, jnp.float32)
    matcher.eval()
    meta = {**bundle.meta, "config": config_to_dict(cfg)}
    return dataclasses.replace(bundle, meta=meta, cfg=cfg, matcher=matcher)


def whiten_bundle(bundle: LoadedBundle, fit: NeckFit, record: dict[str, Any],
                  dst: str | Path) -> dict[str, Any]:
    """Writes `bundle` with each branch's whitening folded in (`fold_whitening`) and, if fitted,
    the template neck (`with_template_neck`) as a weights-only bundle into the empty folder
    `dst`; returns its bundle.json content.

    When the pairwise neck is refitted, the thresholds and the evidence-weight calibration of
    the source were fitted to the old cosines: they are dropped (recorded under
    `whitened.replaced`); run `ifvit calibrate` on the new bundle. With the template neck alone,
    pairwise scores are unchanged and both are kept. `bundle`'s matcher is changed in place.
    """
    from ifvit_train.serving.bundle import (
        BUNDLE_FILE,
        portable,
        save_bundle_weights,
        write_json_atomic,
    )

    if bundle.matcher is None:
        raise ValueError(f"{bundle.path}: a Module 1 bundle; whitening needs a Module 2 bundle")
    dst = Path(dst)
    src = {"path": str(bundle.path.resolve()), "step": bundle.step,
           "weights_sha256": bundle.meta.get("weights_sha256")}
    if fit.pairs is not None:
        fold_whitening(bundle.matcher, fit.pairs)
    out = with_template_neck(bundle, fit) if fit.templates is not None else bundle
    digest = save_bundle_weights(dst, out.module1, out.matcher)
    dropped = ("thresholds", "calibration") if fit.pairs is not None else ()
    meta = {k: v for k, v in out.meta.items() if k not in dropped}
    replaced = {k: bundle.meta[k] for k in dropped if k in bundle.meta}
    if fit.pairs is not None:
        whitened = {**record, "from": src, "replaced": replaced,
                    **({"previous": bundle.meta["whitened"]} if "whitened" in bundle.meta else {})}
    else:  # the template neck alone: the pairwise whitening's record (if any) stays
        whitened = {**bundle.meta.get("whitened", {}),
                    "templates": {**record["templates"], "sets": record["sets"], "from": src}}
    meta = portable({**meta, "step": bundle.step,
                     "exported_from": bundle.meta.get("exported_from", src),
                     "whitened": whitened,
                     "weights_sha256": digest})
    write_json_atomic(dst / BUNDLE_FILE, meta)
    return meta
