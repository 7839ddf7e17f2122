"""1:1 verification with a model bundle: image files -> the training preprocessing
(`ifvit_train.serving.prepare`) -> IFViT -> score, decision and every correspondence in the pixels
of the user's own images. The ridge enhancement, if the bundle records it, runs on device
(`ifvit_train.serving.preprocessing`) inside the compiled graphs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core.ifvit import global_shape, verify_pairs
from ifvit_train.serving.bundle import LoadedBundle
from ifvit_train.serving.prepare import (  # noqa: F401 (re-exported: the serving API)
    FailureToAcquire,
    PreparedImage,
    _apply,
    _h,
    prepare_for_bundle,
    prepare_image,
)
from ifvit_train.serving.preprocessing import enhance_inputs, enhancement


def shape_groups(keys: list[Any], batch_size: int) -> list[list[int]]:
    """Batches of indices into `keys` whose keys (window shapes) are equal: every batch runs one
    compiled graph. Groups come in order of first appearance, each in `batch_size` chunks."""
    groups: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return [g[s:s + batch_size] for g in groups.values() for s in range(0, len(g), batch_size)]


def pair_arrays(pairs: Sequence[tuple[PreparedImage, PreparedImage]], batch_size: int,
                ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(windows0 [B, H, W, 1], windows1 [B, H', W', 1], masks0 [B, H, W], masks1) of up to
    `batch_size` pairs of equal window shapes, padded to B = `batch_size` by repeating the last
    pair (every call of a compiled graph then has the same shapes)."""
    n = len(pairs)
    if not 0 < n <= batch_size:
        raise ValueError(f"a batch takes 1..{batch_size} pairs, got {n}")
    full = list(pairs) + [pairs[-1]] * (batch_size - n)
    return (jnp.asarray(np.stack([a.window for a, _ in full])[..., None]),
            jnp.asarray(np.stack([b.window for _, b in full])[..., None]),
            jnp.asarray(np.stack([a.mask for a, _ in full])),
            jnp.asarray(np.stack([b.mask for _, b in full])))


def print_arrays(prints: Sequence[PreparedImage], batch_size: int) -> tuple[jax.Array, jax.Array]:
    """(windows [B, H, W, 1], masks [B, H, W]) of up to `batch_size` prints of equal window
    shapes, padded to B = `batch_size` by repeating the last print."""
    n = len(prints)
    if not 0 < n <= batch_size:
        raise ValueError(f"a batch takes 1..{batch_size} prints, got {n}")
    full = list(prints) + [prints[-1]] * (batch_size - n)
    return (jnp.asarray(np.stack([p.window for p in full])[..., None]),
            jnp.asarray(np.stack([p.mask for p in full])))


@functools.cache
def _graphs(cfg: Any, enh: Any) -> tuple[Any, Any]:
    """The compiled (run, scores) graphs of a model config and input enhancement, made once per
    process. The models enter as (graphdef static, state traced), so every Verifier of the same
    config and shapes (the trained model, its untrained baselines, another bundle of the same
    preset) reuses one executable instead of compiling its own."""

    def forward(graphdef, state, key, i0, i1, k0, k1):
        m1, m2 = nnx.merge(graphdef, state)
        i0, i1 = enhance_inputs(enh, i0, k0), enhance_inputs(enh, i1, k1)
        return verify_pairs(cfg, m1, m2, key, i0, i1, k0, k1)

    @functools.partial(jax.jit, static_argnums=0)
    def run(graphdef, state, key, i0, i1, k0, k1):
        o = forward(graphdef, state, key, i0, i1, k0, k1)
        def pick(d: dict[str, Any]) -> dict[str, Any]:
            return {k: d[k] for k in ("valid", "mconf", "mkpts0_c", "mkpts1_c")}

        a = o["alignment"]
        return {"score": o["score"], "cosine": o["cosine"], "cos_global": o["cos_global"],
                "cos_local": o["cos_local"], "A01": a.A01, "inliers": a.num_inliers, "ok": a.ok,
                "module1": {**pick(o["module1"]), "inlier": a.inliers},
                "global": pick(o["module2"]["global"]),
                "local": pick(o["module2"]["local"]), "global_frame": o["inputs"].global_frame,
                "roi_frame": o["inputs"].roi_frame, "overlap": a.overlap}

    @functools.partial(jax.jit, static_argnums=0)
    def scores(graphdef, state, key, i0, i1, k0, k1):
        o = forward(graphdef, state, key, i0, i1, k0, k1)
        a = o["alignment"]
        return {"score": o["score"], "cosine": o["cosine"], "cos_global": o["cos_global"],
                "cos_local": o["cos_local"], "inliers": a.num_inliers, "ok": a.ok, "A01": a.A01}

    return run, scores


class Verifier:
    """Scores pairs with a loaded Module 2 bundle (one jit-compiled graph, batch of one)."""

    def __init__(self, bundle: LoadedBundle, seed: int = 0):
        if bundle.matcher is None:
            raise ValueError(f"{bundle.path}: a Module 1 bundle; matching needs a Module 2 bundle")
        self.bundle, self.cfg = bundle, bundle.cfg
        self._key = jax.random.key(seed)
        cfg = self.cfg
        # the bundle's on-device input enhancement, if any (both windows, before Module 1)
        self.enhance = enh = enhancement(bundle.meta["preprocessing"])

        self._run, self._scores = _graphs(cfg, enh)
        # the weights as one committed pytree on the default device: a bundle loaded from disk and
        # a freshly initialised baseline then present the same argument signature (no recompile)
        graphdef, state = nnx.split((bundle.module1, bundle.matcher))
        self._models = (graphdef, jax.device_put(state, jax.devices()[0]))

    @property
    def models(self) -> tuple[Any, Any]:
        """(graphdef, state) of (Module 1, Module 2), as the compiled graphs take them."""
        return self._models

    @property
    def key(self) -> jax.Array:
        """The RANSAC key every pair is scored with."""
        return self._key

    def prepare(self, path: str | Path, dpi: float | None = None,
                require_print: bool = True) -> PreparedImage:
        return prepare_for_bundle(self.bundle.meta, path, dpi, require_print)

    def score_batch(self, pairs: list[tuple[PreparedImage, PreparedImage]], batch_size: int,
                    ) -> dict[str, np.ndarray]:
        """Scores up to `batch_size` pairs in one call of one compiled graph (the batch is padded to
        `batch_size` by repeating its last pair, so every call has the same shapes). The windows
        of the pairs must share their shapes (`score_pairs` groups any pairs).

        Returns {'score', 'cosine', 'cos_global', 'cos_local' float [n] ('score' is the decision
        score, 'cosine' the paper's fused cosine: equal unless the bundle weights the score by
        Module 1's inliers, `Module2Config.evidence_k`), 'inliers' int [n], 'ok' bool [n],
        'rotation_deg' float [n]} for the n given pairs (alignment in the model windows' frame,
        which differs from the files' only by the resampling scale: rotation is the same).
        RANSAC draws are shared by the batch (`ifvit_core.geometry.ransac_similarity`), so a pair
        scores the same here, alone (`verify`) or anywhere in any batch.
        """
        n = len(pairs)
        o = jax.device_get(self._scores(*self._models, self._key, *pair_arrays(pairs, batch_size)))
        out = {k: np.array(v[:n], copy=True) for k, v in o.items() if k != "A01"}
        a01 = np.asarray(o["A01"])[:n]
        out["rotation_deg"] = np.degrees(np.arctan2(a01[:, 1, 0], a01[:, 0, 0]))
        return out

    def score_pairs(self, pairs: list[tuple[PreparedImage, PreparedImage]], batch_size: int,
                    progress: Any = None) -> dict[str, np.ndarray]:
        """`score_batch` over any number of pairs of any window shapes: pairs whose windows have
        the same shapes share batches (`shape_groups`). Returns the same columns, in the order of
        `pairs`; `progress(n)` is called after each batch."""
        out: dict[str, np.ndarray] = {}
        keys = [(a.window.shape, b.window.shape) for a, b in pairs]
        for idx in shape_groups(keys, batch_size):
            res = self.score_batch([pairs[i] for i in idx], batch_size)
            for k, v in res.items():
                out.setdefault(k, np.zeros(len(pairs), v.dtype))[idx] = v
            if progress is not None:
                progress(len(idx))
        return out

    @property
    def thresholds(self) -> dict[str, float]:
        """The bundle's decision thresholds {'fmr_0.01': t, ...} (calibrated at training)."""
        return {k: v for k, v in (self.bundle.meta.get("thresholds") or {}).items()
                if isinstance(v, float)}

    def verify(self, a: PreparedImage, b: PreparedImage) -> dict[str, Any]:
        """Score, decisions and correspondences of one pair, in the files' pixel coordinates."""
        args = [jnp.asarray(x[None]) for x in (a.window[..., None], b.window[..., None], a.mask,
                                               b.mask)]
        o = jax.device_get(self._run(*self._models, self._key, *args))
        o = jax.tree.map(lambda x: np.asarray(x)[0], o)
        inv0, inv1 = np.linalg.inv(a.to_window), np.linalg.inv(b.to_window)
        a01 = _h(o["A01"])
        user01 = inv1 @ a01 @ a.to_window  # file-0 pixel -> file-1 pixel

        def pairs(m: dict, frame: np.ndarray | None) -> list[dict[str, Any]]:
            v = m["valid"]
            p0, p1 = m["mkpts0_c"][v], m["mkpts1_c"][v]
            if frame is not None:  # branch pixels -> image-0 window; image 1 through the alignment
                f_inv = np.linalg.inv(_h(frame))
                p0 = _apply(f_inv, p0)
                p1 = _apply(a01, _apply(f_inv, p1))
            q0, q1 = _apply(inv0, p0), _apply(inv1, p1)
            out = [{"x0": round(float(x0), 2), "y0": round(float(y0), 2),
                    "x1": round(float(x1), 2), "y1": round(float(y1), 2),
                    "confidence": round(float(c), 4)}
                   for (x0, y0), (x1, y1), c in zip(q0, q1, m["mconf"][v], strict=True)]
            if "inlier" in m:  # Module 1: RANSAC's verdict and the distance, in file-1 pixels,
                # between the shown image-1 point and where the fitted alignment puts image-0's
                residual = np.linalg.norm(_apply(user01, q0) - q1, axis=1)
                for c, inl, r in zip(out, m["inlier"][v], residual, strict=True):
                    c["inlier"], c["residual_px"] = bool(inl), round(float(r), 2)
            return out

        def outline(frame: np.ndarray, hw: tuple[int, int]) -> list[list[float]]:
            """Border of an h x w branch input, in image 0's file pixels (pixel-edge corners)."""
            h, w = hw
            c = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
            return _apply(inv0, _apply(np.linalg.inv(_h(frame)), c)).round(2).tolist()

        def contour(mask: np.ndarray) -> list[list[float]]:
            """Outline of the largest region of a window mask, in image 0's file pixels."""
            import cv2

            found, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                        cv2.CHAIN_APPROX_SIMPLE)
            if not found:
                return []
            c = max(found, key=cv2.contourArea)[:, 0, :].astype(np.float64)
            return _apply(inv0, c).round(2).tolist()

        thresholds = self.thresholds
        score = float(o["score"])
        return {
            "image0": str(a.path), "image1": str(b.path), "score": score,
            "cosine": float(o["cosine"]), "evidence_k": self.cfg.module2.evidence_k,
            "cos_global": float(o["cos_global"]), "cos_local": float(o["cos_local"]),
            "decision": {k: bool(score >= t) for k, t in thresholds.items()},
            "thresholds": thresholds,
            "alignment": {
                "ok": bool(o["ok"]), "inliers": int(o["inliers"]),
                "rotation_deg": float(np.degrees(np.arctan2(user01[1, 0], user01[0, 0]))),
                "scale": float(np.sqrt(abs(np.linalg.det(user01[:2, :2])))),
                "translation": [float(user01[0, 2]), float(user01[1, 2])],
                "matrix_image0_to_image1": user01[:2].round(6).tolist(),
            },
            "correspondences": {"module1": pairs(o["module1"], None),
                                "global": pairs(o["global"], o["global_frame"]),
                                "local": pairs(o["local"], o["roi_frame"])},
            "regions_image0": {  # in image 0's pixels: the prints' overlap (the global branch's
                # tokens), the global branch's whole input and the ROI (the local branch's input)
                "overlap": contour(o["overlap"]),
                "global_input": outline(o["global_frame"], global_shape(
                    a.window.shape, self.cfg.image_size, self.cfg.module2.global_size)),
                "roi": outline(o["roi_frame"], (self.cfg.module2.roi_size,) * 2)},
            "dpi": {"image0": [a.dpi, a.dpi_source], "image1": [b.dpi, b.dpi_source]},
            "prints": {"image0": a.quality.to_dict(), "image1": b.quality.to_dict()},
        }
