"""What a new training run records in bundle.json: its description (`new_meta`), its
preprocessing record (`preprocessing`), and the canonical settings a resume compares
(`canonical_settings`). Serving reads these records (`ifvit_train.serving.bundle_meta`) and never
needs this module.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ifvit_core.config import IFViTConfig, config_from_dict, config_to_dict
from ifvit_core.enhance import EnhanceConfig
from ifvit_train.serving.bundle import library_versions
from ifvit_train.serving.bundle_meta import FORMAT, FORMAT_VERSION, BundleError
from ifvit_train.serving.preprocessing import (
    NO_ENHANCEMENT,
    PREPROCESSING_VERSION,
    WINDOW_STEP,
    max_input_size,
)
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.partition import group_counts


def preprocessing(cfg: IFViTConfig, tc: TrainConfig) -> dict[str, Any]:
    """The record of a new Module 1 run (Module 2 copies its Module 1's)."""
    enh = (EnhanceConfig.for_downscale(tc.input_downscale).to_dict() | {"method": "gabor"}
           if tc.enhance else NO_ENHANCEMENT)
    grow = max_input_size(cfg.image_size, tc.input_downscale)
    return {"version": PREPROCESSING_VERSION, "dpi": 500.0, "input_size": [cfg.image_size] * 2,
            "downscale": tc.input_downscale, "max_input_size": [grow, grow],
            "window_step": WINDOW_STEP,
            "crop": "window at the foreground centroid (ifvit_data.preprocess.crop_print): "
                    "input_size in training, growing with the print up to max_input_size in use",
            "segmentation": "ifvit_data.foreground.foreground_mask", "enhancement": enh}


def canonical_settings(meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, train settings) of a bundle.json with every field the run left out at its default,
    so a run started before a setting existed still resumes.

    Raises BundleError when they do not parse."""
    try:
        cfg = config_to_dict(config_from_dict(meta["config"]))
        return cfg, TrainConfig(**meta["train"]).to_dict()
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"bundle.json: bad config ({e})") from None


def new_meta(kind: str, cfg: IFViTConfig, tc: TrainConfig, data: dict[str, Any],
             preprocessing: dict[str, Any], params: Any, *, fine_trained: bool = False,
             **extra: Any) -> dict[str, Any]:
    """The bundle.json of a run that starts now (status 'training').

    fine_trained: Module 1's fine stage is trained (`ifvit train dense --train-fine`, or a Module 2
      run from such a Module 1 bundle); only then does the shipped config enable it.
    """
    stages = {"coarse": "trained", "fine": "trained" if fine_trained else "untrained"}
    if kind == "match":
        stages["module2"] = "trained"
    # The shipped config never enables a stage that was not trained.
    cfg = dataclasses.replace(cfg, loftr=dataclasses.replace(
        cfg.loftr, fine=dataclasses.replace(cfg.loftr.fine, enabled=stages["fine"] == "trained")))
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "status": "training",
        "config": config_to_dict(cfg), "train": tc.to_dict(), "stages": stages, "data": data,
        "preprocessing": preprocessing, "versions": library_versions(),
        "parameter_groups": group_counts(params), **extra,
    }
