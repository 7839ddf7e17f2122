"""Training settings shared by the Module 1 and Module 2 trainers (frozen dataclasses)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """One training run. The defaults are the recommended values: the `default` recipe
    (`ifvit_train.training.recipes`), what `ifvit train` uses for every flag not given.

    Optimiser defaults follow SPEC §3 (IFViT: lr 1e-3, weight decay 2e-4 [PRIOR]; LoFTR: linear
    warm-up from 0.1·lr, gradient-norm clip 0.5 [CODE]); the schedule decays by cosine to 1% of lr.
    """

    steps: int = 400  # optimizer updates
    batch_size: int = 8  # pairs per micro-batch (global, over all processes and devices)
    accum_steps: int = 1  # micro-batches per update (effective batch = batch_size * accum_steps)
    learning_rate: float = 1e-3
    weight_decay: float = 2e-4
    warmup_steps: int = 40  # recipes: a tenth of the steps, at most 100 (`recipes.WARMUP`)
    grad_clip: float = 0.5
    compute_dtype: Literal["float32", "bfloat16"] = "float32"  # weights stay float32 (master copy)
    seed: int = 0  # model init, data order and augmentation, RANSAC keys
    checkpoint_every: int = 100  # steps between checkpoints (a final one is always written)
    keep_checkpoints: int = 2
    validate_every: int = 100  # steps between validations (and one at the end); 0 = only at the end
    holdout: float = 0.2  # fraction of fingers held out for validation (never trained on)
    val_pairs: int = 64  # Module 1 validation pairs
    val_prints: int = 40  # Module 2 validation: all pairs of up to this many held-out prints
    # stored 500-ppi print -> model input (1-2): 1.6 = the 128-px window sees ~205 px of the print
    input_downscale: float = 1.6
    enhance: bool = False  # on-device ridge enhancement of the inputs (serving.preprocessing)
    max_rotation: float = 30.0  # degrees, corrupted-copy training pairs (IFViT: 60)
    max_translation: float = 24.0  # pixels, corrupted-copy pairs (> 0: no mapping by position)
    impression_pairs: float = 0.5  # Module 1: fraction of pairs from two impressions (synth shards)
    # Module 1: also train the fine stage (L_D + w_f·L_fine), ship it enabled
    train_fine: bool = False
    genuine_ratio: float = 0.5  # Module 2: probability that a training pair is genuine
    synthetic_fraction: float = 0.5  # Module 2: genuine pairs that are corrupted copies (exact GT)
    margin_warmup_steps: int = 100  # Module 2: ArcFace margin ramps linearly from 0 (SPEC §8.10)
    # Module 2: L_D on genuine pairs without exact correspondences (real impressions) from Module
    # 1's RANSAC inliers of at least this coarse confidence (`targets.pseudo_ground_truth`); 0: off
    pseudo_label_conf: float = 0.0
    data_threads: int = 2
    data_workers: int = 0  # Grain worker processes (0: threads only; use >0 on many-core hosts)
    mesh_data: int = -1  # devices on the 'data' axis (-1: all the rest)
    mesh_fsdp: int = 1  # devices on the 'fsdp' axis (batch is split over both)

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 1, "batch_size": self.batch_size >= 1,
            "accum_steps": self.accum_steps >= 1, "learning_rate": self.learning_rate > 0,
            "warmup_steps": self.warmup_steps >= 0,
            "margin_warmup_steps": self.margin_warmup_steps >= 0, "grad_clip": self.grad_clip > 0,
            "checkpoint_every": self.checkpoint_every >= 1,
            "keep_checkpoints": self.keep_checkpoints >= 1,
            "validate_every": self.validate_every >= 0, "val_pairs": self.val_pairs >= 1,
            "val_prints": self.val_prints >= 4,
            "genuine_ratio": 0.0 < self.genuine_ratio < 1.0,
            "synthetic_fraction": 0.0 <= self.synthetic_fraction <= 1.0,
            "impression_pairs": 0.0 <= self.impression_pairs <= 1.0,
            "pseudo_label_conf": 0.0 <= self.pseudo_label_conf < 1.0,
            "max_translation": self.max_translation >= 0, "max_rotation": self.max_rotation >= 0,
            "compute_dtype": self.compute_dtype in ("float32", "bfloat16"),
            "input_downscale": 1.0 <= self.input_downscale <= 2.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError("invalid training settings: "
                             f"{', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
