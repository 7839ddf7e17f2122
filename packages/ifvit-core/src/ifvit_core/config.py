"""Model and loss configuration: frozen dataclasses and the `tiny` / `small` / `paper` presets.

Every hyper-parameter of the model and the losses lives here (SPEC.md: paper values not confirmed in
the paper body are [PRIOR] and must be configurable). Provenance tags follow SPEC.md §0.

Presets:
  * `tiny()`  — CPU tests: builds and runs a 64x64 pair in well under a second.
  * `small()` — CPU demo: trains on synthetic prints in minutes.
  * `paper()` — LoFTR dimensions, so the converted `outdoor_ds.ckpt` weights load one-to-one
    (11,561,456 parameters; coarse transformer 5,251,072). Full training needs an accelerator.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PosEncVariant = Literal["buggy", "fixed"]
AttentionKind = Literal["linear", "full"]


@dataclass(frozen=True, slots=True)
class BackboneConfig:
    """LoFTR ResNetFPN_8_2 (1/8 coarse and 1/2 fine features) [CODE]."""

    initial_dim: int = 128  # channels of the 7x7 stem
    block_dims: tuple[int, int, int] = (128, 196, 256)  # layer1 (1/2), layer2 (1/4), layer3 (1/8)

    @property
    def coarse_dim(self) -> int:
        return self.block_dims[2]

    @property
    def fine_dim(self) -> int:
        return self.block_dims[0]


@dataclass(frozen=True, slots=True)
class TransformerConfig:
    """LoFTR LocalFeatureTransformer: one Siamese weight set, sequential self/cross layers
    [CODE]."""

    d_model: int = 256
    nhead: int = 8
    layer_names: tuple[str, ...] = ("self", "cross") * 4
    attention: AttentionKind = "linear"  # 'linear' (elu+1) as LoFTR, or 'full' softmax attention

    def __post_init__(self) -> None:
        if self.d_model % self.nhead:
            raise ValueError(f"d_model={self.d_model} is not divisible by nhead={self.nhead}")
        bad = [n for n in self.layer_names if n not in ("self", "cross")]
        if bad:
            raise ValueError(f"layer_names may only hold 'self'/'cross', got {bad}")


@dataclass(frozen=True, slots=True)
class MatchingConfig:
    """Dual-softmax coarse matching [CODE: LoFTR outdoor_ds defaults]."""

    threshold: float = 0.2  # confidence threshold θ on P
    border_rm: int = 2  # coarse cells removed at each border
    temperature: float = 0.1  # dual-softmax temperature τ


@dataclass(frozen=True, slots=True)
class FineConfig:
    """LoFTR fine stage: 5x5 window refinement on the 1/2 map [CODE]. Optional for IFViT (SPEC
    §2.5)."""

    enabled: bool = True
    window: int = 5
    nhead: int = 8
    layer_names: tuple[str, ...] = ("self", "cross")
    attention: AttentionKind = "linear"
    concat_coarse_feat: bool = True
    # Rows refined per pair: the k most confident coarse rows (valid first). None = every row that
    # can be a match (the cells left after border removal), which refines every match exactly;
    # an int caps it (a fixed budget; matches beyond it keep their coarse position, `fine_valid`).
    max_matches: int | None = None

    def __post_init__(self) -> None:
        if self.max_matches is not None and self.max_matches < 1:
            raise ValueError(f"FineConfig.max_matches must be >= 1 or None, got {self.max_matches}")


@dataclass(frozen=True, slots=True)
class LoFTRConfig:
    """The LoFTR network used as IFViT Module 1 and as the trunk of each Module 2 branch."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    coarse: TransformerConfig = field(default_factory=TransformerConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    fine: FineConfig = field(default_factory=FineConfig)
    # 'buggy': the frequencies outdoor_ds.ckpt was trained with (w_k = exp(-2k));
    # 'fixed': LoFTR's TEMP_BUG_FIX=True frequencies. SPEC §2.2.
    pos_enc: PosEncVariant = "buggy"

    def __post_init__(self) -> None:
        if self.coarse.d_model != self.backbone.coarse_dim:
            raise ValueError(
                f"coarse d_model {self.coarse.d_model} must equal backbone block_dims[2] "
                f"{self.backbone.coarse_dim}"
            )
        if self.backbone.fine_dim % self.fine.nhead:
            raise ValueError(
                f"fine d_model {self.backbone.fine_dim} is not divisible by fine nhead "
                f"{self.fine.nhead}"
            )
        if self.coarse.d_model % 4:
            raise ValueError("d_model must be a multiple of 4 for the sine position encoding")
        if self.pos_enc not in ("buggy", "fixed"):
            raise ValueError(f"pos_enc must be 'buggy' or 'fixed', got {self.pos_enc!r}")

    @property
    def fine_d_model(self) -> int:
        return self.backbone.fine_dim


@dataclass(frozen=True, slots=True)
class Module2Config:
    """Module 2 fixed-length representation [ABS + INF, SPEC §2.7]."""

    embed_dim: int = 256  # d of each branch's embedding [PRIOR]
    global_size: int = 128  # side of the global (overlap) input
    roi_size: int = 96  # side of the local ROI input (90x90 [PRIOR] padded to a multiple of 8)
    num_classes: int = 1000  # ArcFace classes = training finger identities (set from the data)
    fusion_alpha: float = 0.5  # score = α·global + (1-α)·local [INF]
    # 0: the paper's score. k > 0: (1 + score) / 2 * n / (n + k), n = Module 1's RANSAC inliers
    # (beyond the paper; chosen on validation prints by `ifvit calibrate`; ifvit_core.losses)
    evidence_k: float = 0.0
    # Beyond the paper: single-print templates (`ifvit_core.ifvit.template`). `template_neck`
    # adds a linear map per branch after the embedding neck, used by templates only (fitted on
    # real identities by `ifvit whiten`; identity-initialised); `template_alpha` is the
    # templates' global weight (None: `fusion_alpha`).
    template_neck: bool = False
    template_alpha: float | None = None

    def __post_init__(self) -> None:
        if self.template_alpha is not None and not 0.0 <= self.template_alpha <= 1.0:
            raise ValueError("Module2Config.template_alpha must be in [0, 1] or None, got "
                             f"{self.template_alpha}")
        for name in ("global_size", "roi_size"):
            if getattr(self, name) % 8:
                raise ValueError(f"Module2Config.{name} must be a multiple of 8")
        if not self.evidence_k >= 0:
            raise ValueError(f"Module2Config.evidence_k must be >= 0, got {self.evidence_k}")


@dataclass(frozen=True, slots=True)
class LossConfig:
    """Loss hyper-parameters (SPEC §3)."""

    dense_focal: bool = False  # False: NLL (IFViT paper); True: LoFTR's focal variant
    focal_alpha: float = 0.25  # [CODE LoFTR]
    focal_gamma: float = 2.0  # [CODE LoFTR]
    fine_weight: float = 1.0  # Module 1 with the fine stage trained: L_D + w_f·L_fine [CODE LoFTR]
    cosine_margin: float = 0.0  # L_E margin m_E (PyTorch default; paper value unconfirmed)
    arcface_scale: float = 64.0  # s [PRIOR]
    arcface_margin: float = 0.4  # m [PRIOR]
    lambda_dense: float = 0.5  # λ1 [PRIOR]
    lambda_embed: float = 0.1  # λ2 [PRIOR]
    lambda_arcface: float = 1.0  # λ3 [PRIOR]
    # Beyond the paper: single-print templates trained as templates (`losses.template_loss`):
    # weight of their ArcFace + L_E, and of the template-vs-pair cosine consistency. 0 = off.
    lambda_template: float = 0.0
    lambda_template_consistency: float = 0.0


@dataclass(frozen=True, slots=True)
class IFViTConfig:
    """The whole model: Module 1 (LoFTR), Module 2 branches, losses, and the Module 1 input size."""

    name: str
    loftr: LoFTRConfig = field(default_factory=LoFTRConfig)
    module2: Module2Config = field(default_factory=Module2Config)
    loss: LossConfig = field(default_factory=LossConfig)
    image_size: int = 128  # Module 1 training input side [PRIOR]
    ransac_iters: int = 256
    ransac_threshold: float = 8.0  # px at the Module 1 input scale [INF]

    def __post_init__(self) -> None:
        if self.image_size % 8:
            raise ValueError(f"image_size={self.image_size} must be a multiple of 8")

    def replace(self, **changes) -> IFViTConfig:
        return dataclasses.replace(self, **changes)


def paper() -> IFViTConfig:
    """LoFTR dimensions (ResNetFPN 128/196/256, 8 coarse layers, d=256, 8 heads).

    Converted `outdoor_ds.ckpt` weights load into this preset exactly. Training it needs an
    accelerator: on the 2-core CPU a Module 1 step runs ~2 pairs/s (see benchmarks/bench_core.py).
    """
    return IFViTConfig(name="paper")


def small() -> IFViTConfig:
    """Quarter-width LoFTR for CPU demos: trains on synthetic prints in minutes."""
    return IFViTConfig(
        name="small",
        loftr=LoFTRConfig(
            backbone=BackboneConfig(initial_dim=32, block_dims=(32, 48, 64)),
            coarse=TransformerConfig(d_model=64, nhead=4, layer_names=("self", "cross") * 2),
            fine=FineConfig(nhead=4),
            pos_enc="fixed",
        ),
        module2=Module2Config(embed_dim=64, global_size=128, roi_size=64, num_classes=100),
        image_size=128,
    )


def tiny() -> IFViTConfig:
    """Smallest model with every code path: for unit tests (64x64 inputs, seconds on CPU)."""
    return IFViTConfig(
        name="tiny",
        loftr=LoFTRConfig(
            backbone=BackboneConfig(initial_dim=8, block_dims=(8, 12, 16)),
            coarse=TransformerConfig(d_model=16, nhead=2, layer_names=("self", "cross")),
            fine=FineConfig(nhead=2),
            pos_enc="fixed",
        ),
        module2=Module2Config(embed_dim=16, global_size=64, roi_size=48, num_classes=10),
        image_size=64,
    )


PRESETS = {"tiny": tiny, "small": small, "paper": paper}


def config_to_dict(cfg: IFViTConfig) -> dict[str, Any]:
    """JSON-friendly nested dict of every field (tuples become lists); inverse of
    `config_from_dict`."""

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return plain(dataclasses.asdict(cfg))


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    """Rebuilds dataclass `cls` from a dict, recursing into nested dataclass fields."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {unknown}")
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any]) -> IFViTConfig:
    """IFViTConfig from `config_to_dict` output (e.g. a model bundle's JSON); validates every field.

    Raises:
      ValueError: unknown fields or invalid values (the dataclasses' own checks).
    """
    try:
        return _build(IFViTConfig, data)
    except TypeError as e:  # missing required field, wrong nesting
        raise ValueError(f"invalid IFViT config: {e}") from None


def get_preset(name: str) -> IFViTConfig:
    """Returns the preset called `name` ('tiny', 'small' or 'paper')."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
