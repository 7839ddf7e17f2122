"""Fixtures: PyTorch LoFTR references with random weights, saved in LoFTR's checkpoint layouts.

The reference is kornia's independent port of LoFTR (`kornia.feature.LoFTR(pretrained=None)`), built
with the dimensions of an ifvit-core preset. Its random weights are made more informative than a
fresh init: BatchNorm running statistics, BatchNorm and LayerNorm affine parameters are random too,
so that a swapped mean/var or scale/bias would show up in the parity numbers, and the coarse output
conv is scaled up so that the random model produces a usable set of confident matches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ifvit_core import config


def randomized_reference(cfg: Any, seed: int = 0) -> tuple[Any, dict[str, np.ndarray]]:
    """A kornia LoFTR with `cfg`'s dimensions and random weights (eval mode) + its state dict."""
    import torch

    from ifvit_convert.verify import build_reference

    torch.manual_seed(seed)
    model = build_reference(cfg)
    rng = np.random.default_rng(seed)
    sd = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    bn = {k.removesuffix(".running_mean") for k in sd if k.endswith(".running_mean")}
    ln = {k.rsplit(".", 1)[0] for k in sd if ".norm" in k}
    for p in sorted(bn | ln):
        n = sd[f"{p}.weight"].shape
        hi = 1.0 if p in bn else 1.5  # BN keeps the backbone maps O(1); LN spreads the tokens
        sd[f"{p}.weight"] = rng.uniform(0.5, hi, n).astype(np.float32)
        sd[f"{p}.bias"] = rng.normal(0.0, 0.1 * hi, n).astype(np.float32)
    for p in sorted(bn):
        n = sd[f"{p}.running_mean"].shape
        sd[f"{p}.running_mean"] = rng.normal(0.0, 0.1, n).astype(np.float32)
        sd[f"{p}.running_var"] = rng.uniform(1.0, 2.0, n).astype(np.float32)
        sd[f"{p}.num_batches_tracked"] = np.asarray(1234, np.int64)
    # Larger coarse maps make the random model's tokens distinctive enough to give confident
    # matches.
    sd["backbone.layer3_outconv.weight"] = sd["backbone.layer3_outconv.weight"] * 3.0
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
    return model.eval(), sd


def save_lightning(
    path: Path, sd: dict[str, np.ndarray], extra: dict[str, np.ndarray] | None = None
) -> Path:
    """Saves `sd` as LoFTR's PyTorch-Lightning files are laid out: `state_dict` with `matcher.`
    keys."""
    import torch

    state = {
        f"matcher.{k}": torch.from_numpy(np.asarray(v)) for k, v in {**sd, **(extra or {})}.items()
    }
    torch.save(
        {
            "epoch": 29,
            "global_step": 123456,
            "pytorch-lightning_version": "1.3.5",
            "state_dict": state,
            "optimizer_states": [],
            "lr_schedulers": [],
        },
        path,
    )
    return path


def save_bare(path: Path, sd: dict[str, np.ndarray]) -> Path:
    """Saves `sd` as a bare state dict (kornia / `model.state_dict()` style, no prefix)."""
    import torch

    torch.save({k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}, path)
    return path


@pytest.fixture(scope="session")
def paper_cfg() -> Any:
    """LoFTR's own dimensions (the 'paper' preset)."""
    return config.paper().loftr


@pytest.fixture(scope="session")
def tiny_cfg() -> Any:
    """The 'tiny' preset's LoFTR (fast CLI and verification tests)."""
    return config.tiny().loftr


@pytest.fixture(scope="session")
def paper_sd(paper_cfg: Any) -> dict[str, np.ndarray]:
    """State dict (no prefix, numpy) of a randomised paper-size kornia LoFTR."""
    return randomized_reference(paper_cfg, seed=0)[1]


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of saved source checkpoints, shared by the session."""
    return tmp_path_factory.mktemp("ckpts")


@pytest.fixture(scope="session")
def paper_ckpt(ckpt_dir: Path, paper_sd: dict[str, np.ndarray]) -> Path:
    """The paper-size reference in LoFTR's Lightning layout, named like LoFTR's outdoor release."""
    return save_lightning(ckpt_dir / "outdoor_ds.ckpt", paper_sd)


@pytest.fixture(scope="session")
def paper_bare(ckpt_dir: Path, paper_sd: dict[str, np.ndarray]) -> Path:
    """The same weights as a bare state dict."""
    return save_bare(ckpt_dir / "kornia_loftr_state_dict.pth", paper_sd)


@pytest.fixture(scope="session")
def tiny_sd(tiny_cfg: Any) -> dict[str, np.ndarray]:
    """State dict of a randomised tiny-size kornia LoFTR."""
    return randomized_reference(tiny_cfg, seed=1)[1]


@pytest.fixture(scope="session")
def tiny_ckpt(ckpt_dir: Path, tiny_sd: dict[str, np.ndarray]) -> Path:
    """The tiny reference in the Lightning layout."""
    return save_lightning(ckpt_dir / "tiny_outdoor.ckpt", tiny_sd)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty output directory; tests check it stays empty after a failed conversion."""
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def replace_matching() -> Callable[..., Any]:
    """`replace_matching(cfg, **changes)`: a LoFTRConfig with its matching config changed."""

    def fn(cfg: Any, **changes: Any) -> Any:
        return dataclasses.replace(cfg, matching=dataclasses.replace(cfg.matching, **changes))

    return fn


@pytest.fixture(scope="session")
def savers() -> dict[str, Callable[..., Path]]:
    """{'lightning': save_lightning, 'bare': save_bare} for tests that build their own files."""
    return {"lightning": save_lightning, "bare": save_bare}
