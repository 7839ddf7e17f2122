"""The master fingerprint of one synthetic finger (SFinGe part 1)."""

from __future__ import annotations

from dataclasses import dataclass

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
    return MasterPrint(
        seed=int(seed),
        finger=int(finger),
        class_name=cls,
        ridges=x,
        binary=x > 0,
        orientation=theta,
        period=period,
        singular_points=model.points,
        silhouette=mask,
        shape=sil,
        model=model,
    )
