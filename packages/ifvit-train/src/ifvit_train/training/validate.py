"""Validation on held-out fingers: Module 1 registration accuracy, Module 2 verification EER."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core import geometry
from ifvit_core.config import IFViTConfig
from ifvit_core.enhance import EnhanceConfig
from ifvit_core.ifvit import verify_pairs
from ifvit_data.pipeline import eval_dataset, make_iterator
from ifvit_data.preprocess import CropConfig
from ifvit_data.protocol import all_pairs
from ifvit_train.evaluation.metrics import verification_report
from ifvit_train.serving.preprocessing import enhance_inputs
from ifvit_train.training.module1 import dense_metrics


def _rotation_deg(A: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(A[..., 1, 0], A[..., 0, 0]))


def _gt_point_of_row(batch: dict, l_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact image-1 point [B, L, 2] and GT cell [B, L] (-1: none) of every image-0 cell."""
    b = len(batch["gt_i"])
    pts, cell = np.zeros((b, l_len, 2), np.float64), np.full((b, l_len), -1, np.int64)
    for e in range(b):
        v = np.asarray(batch["gt_valid"][e], bool)
        rows = np.asarray(batch["gt_i"][e])[v]
        pts[e, rows] = np.asarray(batch["gt_pts1"][e])[v]
        cell[e, rows] = np.asarray(batch["gt_j"][e])[v]
    return pts, cell


def registration_metrics(cfg: IFViTConfig, batches: list[dict], *,
                         fine: bool = False, enhance: EnhanceConfig | None = None,
                         ) -> Callable[[nnx.Module], dict]:
    """Returns `module1 -> metrics` on fixed held-out Module 1 batches (known transforms).

    Metrics: precision (every predicted match counts), recall, matches per pair, and RANSAC
    registration error against the known transform: median rotation error (deg), median mean
    corner error (px), fraction of pairs within 8 px.

    With `fine` (a trained fine stage) RANSAC uses the fine-refined points, as inference does, and
    two more metrics compare the stages on the predicted matches whose coarse cell is right:
    `coarse_epe_px` / `fine_epe_px`, the median distance (px) of the coarse / fine-refined image-1
    point to the exact ground-truth point. `enhance`: the run's input enhancement (applied on
    device, with the batches' `mask0`, `mask1`).
    """

    @nnx.jit
    def forward(model, image0, image1, mask0, mask1):
        o = model(enhance_inputs(enhance, image0, mask0), enhance_inputs(enhance, image1, mask1),
                  fine=fine)
        pts1 = o["mkpts1_f"] if fine else o["mkpts1_c"]
        fit = geometry.ransac_similarity(jax.random.key(0), o["mkpts0_c"], pts1, o["valid"],
                                         weights=o["mconf"], threshold=cfg.ransac_threshold,
                                         num_iters=cfg.ransac_iters)
        keep = ("valid", "j_ids", "mkpts1_c") + (("mkpts1_f", "fine_valid") if fine else ())
        return {**{k: o[k] for k in keep}, "A": fit.A}

    size = batches[0]["image0"].shape[1]
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)

    def run(model: nnx.Module) -> dict[str, float]:
        mets, rot, corner, epe_c, epe_f = [], [], [], [], []
        for b in batches:
            o = jax.device_get(forward(model, *(jnp.asarray(b[k]) for k in (
                "image0", "image1", "mask0", "mask1"))))
            mets.append(jax.device_get(dense_metrics(o, b)))
            A, T = o["A"].astype(np.float64), b["transform"].astype(np.float64)
            rot.extend(np.abs((_rotation_deg(A) - _rotation_deg(T) + 180) % 360 - 180))
            pe = np.einsum("bij,kj->bki", A[:, :, :2], corners) + A[:, None, :, 2]
            pt = np.einsum("bij,kj->bki", T[:, :, :2], corners) + T[:, None, :, 2]
            corner.extend(np.linalg.norm(pe - pt, axis=-1).mean(axis=1))
            if fine:
                gt, cell = _gt_point_of_row(b, o["valid"].shape[1])
                right = o["fine_valid"] & (o["j_ids"] == cell)
                epe_c.extend(np.linalg.norm(o["mkpts1_c"] - gt, axis=-1)[right])
                epe_f.extend(np.linalg.norm(o["mkpts1_f"] - gt, axis=-1)[right])

        def mean(k: str) -> float:
            return float(np.mean([m[k] for m in mets]))

        corner = np.asarray(corner)
        out = {"precision": mean("precision"), "recall": mean("recall"),
               "matches_per_pair": mean("matches_per_pair"),
               "rotation_error_deg": float(np.median(rot)),
               "corner_error_px": float(np.median(corner)),
               "aligned_fraction": float(np.mean(corner < 8.0))}
        if fine:  # NaN when no predicted match is right (e.g. an untrained model)
            def med(x: list[float]) -> float:
                return float(np.median(x)) if len(x) else float("nan")

            out.update(coarse_epe_px=med(epe_c), fine_epe_px=med(epe_f))
        return out

    return run


def score_pairs(cfg: IFViTConfig, module1: nnx.Module, matcher: nnx.Module, records: Any,
                pairs: np.ndarray, is_genuine: np.ndarray, size: int, batch_size: int = 8,
                seed: int = 0, downscale: float = 1.0,
                enhance: EnhanceConfig | None = None) -> np.ndarray:
    """Fused IFViT scores [P] of `pairs` of `records` (fixed-size crops; last batch padded;
    `enhance`: the bundle's input enhancement, applied on device)."""

    @nnx.jit
    def score(m1, m2, key, i0, i1, k0, k1):
        i0, i1 = enhance_inputs(enhance, i0, k0), enhance_inputs(enhance, i1, k1)
        return verify_pairs(cfg, m1, m2, key, i0, i1, k0, k1)["score"]

    ds = eval_dataset(records, pairs, is_genuine,
                      CropConfig(size=(size, size), downscale=downscale), batch_size=batch_size)

    def pad(x: np.ndarray, n: int) -> np.ndarray:  # the last batch, to a full one
        return np.concatenate([x, np.repeat(x[-1:], batch_size - n, 0)]) if n < batch_size else x

    out = []
    for k, b in enumerate(make_iterator(ds)):
        n = len(b["is_genuine"])
        args = [jnp.asarray(pad(b[key], n)) for key in ("image0", "image1", "mask0", "mask1")]
        s = score(module1, matcher, jax.random.fold_in(jax.random.key(seed), k), *args)
        out.append(np.asarray(jax.device_get(s))[:n])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def heldout_pairs(records: Any, max_prints: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of (at most `max_prints`, whole fingers first) held-out prints (IFViT's
    protocol)."""
    fingers = np.asarray(records.fingers)
    first_fingers = np.unique(fingers)[: max(1, max_prints // 4)]
    keep = np.flatnonzero(np.isin(fingers, first_fingers))[:max_prints]
    pairs, gen = all_pairs(fingers[keep])
    return keep[pairs], gen


def check_verification_split(records: Any, max_prints: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """`heldout_pairs`, or ValueError when they hold no genuine or no impostor pair."""
    pairs, gen = heldout_pairs(records, max_prints)
    if not (gen == 1).any() or not (gen == 0).any():
        raise ValueError("validation needs >= 2 held-out fingers with >= 2 impressions each "
                         "(more fingers or a larger --holdout)")
    return pairs, gen


def verification_metrics(cfg: IFViTConfig, module1: nnx.Module, records: Any, size: int,
                         max_prints: int = 64, downscale: float = 1.0,
                         enhance: EnhanceConfig | None = None) -> Callable[[nnx.Module], dict]:
    """Returns `matcher -> {eer, fmr100, genuine_mean, impostor_mean}` on held-out fingers."""
    pairs, gen = check_verification_split(records, max_prints)

    def scores(matcher: nnx.Module) -> tuple[np.ndarray, np.ndarray]:
        """(genuine scores, impostor scores) of the held-out pairs."""
        s = score_pairs(cfg, module1, matcher, records, pairs, gen, size, downscale=downscale,
                        enhance=enhance)
        return s[gen == 1], s[gen == 0]

    def run(matcher: nnx.Module) -> dict[str, float]:
        s = score_pairs(cfg, module1, matcher, records, pairs, gen, size, downscale=downscale,
                        enhance=enhance)
        rep = verification_report(s[gen == 1], s[gen == 0])
        return {"eer": float(rep.eer), "fmr100": float(rep.fmr100),
                "genuine_mean": float(np.nanmean(s[gen == 1])),
                "impostor_mean": float(np.nanmean(s[gen == 0]))}

    run.scores = scores  # type: ignore[attr-defined]
    return run
