"""The master fingerprint of one synthetic finger (SFinGe part 1)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ifvit_data.synth.config import SynthConfig
from ifvit_data.synth.density import period_map
from ifvit_data.synth.orientation import (
    OrientationModel,
    SingularPoint,
    orientation_field,
    sample_class,
    sample_orientation_model,
)
from ifvit_data.synth.ridges import grow_ridges
from ifvit_data.synth.rng import STAGE_MASTER, make_rng
from ifvit_data.synth.silhouette import Silhouette, sample_silhouette


@dataclass(frozen=True)
class MasterPrint:
    """A master fingerprint on the master canvas `cfg.master_size` = (Hm, Wm).

    Attributes:
        seed: Dataset seed.
        finger: Finger identifier.
        class_name: One of `CLASS_NAMES`.
        ridges: float32 [Hm, Wm] continuous ridge field in [-1, 1] (ridges > 0), -1 outside the
            silhouette.
        binary: bool [Hm, Wm] ridge pixels (`ridges > 0`).
        profile: float32 [Hm, Wm] `ridges` smoothed across the ridges (Gaussian, about a fifth of
            the period): thresholding it at a level t in (-1, 1) gives ridges centred on the same
            lines, thinner for t > 0 and thicker for t < 0 (how impressions render dry and wet
            skin).
        creases: float32 [Hm, Wm] in [0, 1]: white creases of the skin (1 on a crease), shared by
            every impression of the finger.
        orientation: float32 [Hm, Wm] ridge directions in [0, pi) (see `orientation` module).
        period: float32 [Hm, Wm] local ridge period (px).
        singular_points: Cores and deltas (master-canvas pixels).
        silhouette: bool [Hm, Wm] fingerprint area.
        shape: The silhouette's parameters.
        model: The orientation model.
    """

    seed: int
    finger: int
    class_name: str
    ridges: np.ndarray
    binary: np.ndarray
    profile: np.ndarray
    creases: np.ndarray
    orientation: np.ndarray
    period: np.ndarray
    singular_points: tuple[SingularPoint, ...]
    silhouette: np.ndarray
    shape: Silhouette
    model: OrientationModel


def generate_master(seed: int, finger: int, cfg: SynthConfig | None = None) -> MasterPrint:
    """Generate the master fingerprint of `finger`; fully determined by (seed, finger, cfg).

    Args:
        seed: Dataset seed (>= 0).
        finger: Finger identifier (>= 0; datasets number fingers from 1).
        cfg: Generator configuration (default `SynthConfig()`).

    Returns:
        The master print.
    """
    cfg = cfg or SynthConfig()
    rng = make_rng(seed, finger, 0, STAGE_MASTER)
    shape = cfg.master_size
    sil = sample_silhouette(rng, shape)
    cls = sample_class(rng, cfg.class_probs)
    model = sample_orientation_model(rng, cls, sil)
    theta = orientation_field(model, shape)
    period = period_map(rng, shape, sil, model, cfg.period_range, cfg.period_clamp)
    mask = sil.mask(shape)
    n_seeds = int(rng.integers(cfg.n_seeds[0], cfg.n_seeds[1] + 1))
    x = grow_ridges(rng, theta, period, mask, n_seeds)
    x = np.where(mask, x, -1.0).astype(np.float32)
    profile = cv2.GaussianBlur(x, (0, 0), 0.2 * float(np.median(period[mask])))
    creases = draw_creases(rng, sil, model.rotation, shape, cfg.creases)
    return MasterPrint(
        seed=int(seed),
        finger=int(finger),
        class_name=cls,
        ridges=x,
        binary=x > 0,
        profile=profile,
        creases=creases,
        orientation=theta,
        period=period,
        singular_points=model.points,
        silhouette=mask,
        shape=sil,
        model=model,
    )


def draw_creases(
    rng: np.random.Generator,
    sil: Silhouette,
    rotation: float,
    shape: tuple[int, int],
    count: tuple[int, int],
) -> np.ndarray:
    """Skin creases: thin, slightly curved white lines, mostly across the finger, more of them low.

    Args:
        rng: Random stream.
        sil: Silhouette (creases start inside it).
        rotation: Pattern rotation (rad); creases run within about 35 degrees of its horizontal.
        shape: Canvas (H, W).
        count: Range (lo, hi) of the number of creases.

    Returns:
        float32 [H, W] in [0, 1], 1 on a crease.
    """
    canvas = np.zeros(shape, np.float32)
    n = int(rng.integers(count[0], count[1] + 1))
    for _ in range(n):
        # start point: uniform across, biased towards the lower half along the finger
        x0 = sil.cx + rng.uniform(-0.8, 0.8) * 0.5 * (sil.a1 + sil.a2)
        y0 = sil.top + (sil.bottom - sil.top) * float(rng.beta(2.5, 1.5))
        ang = rotation + rng.normal(0.0, 0.35) + (np.pi if rng.random() < 0.5 else 0.0)
        length = rng.uniform(20, 110)
        bend = rng.normal(0.0, 0.004)  # curvature (1/px)
        t = np.linspace(0.0, length, 24)
        a = ang + bend * t
        xs = x0 + np.cumsum(np.cos(a)) * (length / 23)
        ys = y0 + np.cumsum(np.sin(a)) * (length / 23)
        pts = np.round(np.stack([xs, ys], axis=1) * 4).astype(np.int32)[None]
        width = int(rng.integers(1, 3))
        cv2.polylines(canvas, pts, False, 1.0, width, cv2.LINE_AA, shift=2)
    if n:
        canvas = cv2.GaussianBlur(canvas, (0, 0), 0.6)
    return np.clip(canvas * 1.5, 0.0, 1.0)
