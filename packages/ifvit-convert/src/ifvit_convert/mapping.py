"""The name map: every LoFTR PyTorch state-dict key and the IFViT-JAX flat path it fills.

Table in the MaxText `param_mapping` style, built from the module structure rather than by rewriting
source keys: each LoFTR module is declared once with its PyTorch path, its Flax NNX path and its
kind, and each kind expands to its leaves through `LEAVES` (the per-leaf hook names live in
`hooks.py`).

    PyTorch key (after the `matcher.` prefix)        flat Flax path                        hook
    backbone.conv1.weight            [O, I, kh, kw]  backbone/conv1/kernel   [kh, kw, I, O]
    conv_oihw_to_hwio backbone.bn1.running_mean        [C]             backbone/bn1/mean       [C]
    copy backbone.layer2.0.downsample.1.weight            backbone/layer2_0/downsample_1/scale
    copy loftr_coarse.layers.3.mlp.2.weight [out, in]     loftr_coarse/layers_3/mlp_2/kernel [in,
    out] linear_to_in_out
    *.num_batches_tracked                            (dropped: a BatchNorm step counter)

Module names follow docs/contracts.md: numeric tokens folded into the previous name with `_`.
The table depends only on the model dimensions (`LoFTRConfig`), so it also serves to count what a
LoFTR checkpoint must hold (SPEC §5.1: 211 keys, 194 without `num_batches_tracked`, 11,561,456
values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ifvit_core.config import LoFTRConfig

ModuleKind = Literal["conv", "batchnorm", "linear", "linear_bias", "layernorm"]

# Top-level groups, in the order LoFTR registers them.
GROUPS: tuple[str, ...] = ("backbone", "loftr_coarse", "fine_preprocess", "loftr_fine")

# kind -> ((PyTorch leaf, Flax leaf, hook name), ...)
LEAVES: dict[ModuleKind, tuple[tuple[str, str, str], ...]] = {
    "conv": (("weight", "kernel", "conv_oihw_to_hwio"),),
    "batchnorm": (
        ("weight", "scale", "copy"),
        ("bias", "bias", "copy"),
        ("running_mean", "mean", "copy"),
        ("running_var", "var", "copy"),
    ),
    "linear": (("weight", "kernel", "linear_to_in_out"),),
    "linear_bias": (("weight", "kernel", "linear_to_in_out"), ("bias", "bias", "copy")),
    "layernorm": (("weight", "scale", "copy"), ("bias", "bias", "copy")),
}

# kind -> PyTorch leaves that carry no information for the JAX model and are consumed by dropping.
DROPPED_LEAVES: dict[ModuleKind, tuple[str, ...]] = {"batchnorm": ("num_batches_tracked",)}

# Leaves that are BatchNorm running statistics (batch statistics in Flax, not trainable).
STAT_LEAVES: frozenset[str] = frozenset({"running_mean", "running_var"})


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """One PyTorch module and the Flax module it becomes.

    Attributes:
      torch_path: dotted PyTorch module path, e.g. `backbone.layer1.0.conv1`.
      flax_path: `/`-joined Flax path, e.g. `backbone/layer1_0/conv1`.
      kind: which leaf table applies.
      shape: PyTorch shape of the module's weight: conv `(O, I, kh, kw)`, linear `(out, in)`,
        norms `(C,)`.
    """

    torch_path: str
    flax_path: str
    kind: ModuleKind
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MapEntry:
    """One row of the name map: a source key, the target leaf it fills and how.

    Attributes:
      source: PyTorch state-dict key without prefix.
      target: flat Flax path (`/`-joined).
      hook: name of the transform in `hooks.HOOKS`.
      group: top-level group (one of `GROUPS`).
      source_shape: the shape the source tensor must have.
      trainable: False for BatchNorm running statistics.
    """

    source: str
    target: str
    hook: str
    group: str
    source_shape: tuple[int, ...]
    trainable: bool

    @property
    def size(self) -> int:
        """Number of values of the tensor."""
        return math.prod(self.source_shape)


@dataclass(frozen=True, slots=True)
class NameMap:
    """The full table for one model configuration.

    Attributes:
      entries: mapped keys, in LoFTR's state-dict order.
      dropped: source keys consumed without producing a target (BatchNorm step counters).
    """

    entries: tuple[MapEntry, ...]
    dropped: tuple[str, ...]

    def by_source(self) -> dict[str, MapEntry]:
        """Entries keyed by source key."""
        return {e.source: e for e in self.entries}

    def by_target(self) -> dict[str, MapEntry]:
        """Entries keyed by target path."""
        return {e.target: e for e in self.entries}


def _m(torch_path: str, flax_path: str, kind: ModuleKind, *shape: int) -> ModuleSpec:
    return ModuleSpec(torch_path, flax_path, kind, tuple(shape))


def _basic_block(layer: int, block: int, cin: int, cout: int, stride: int) -> list[ModuleSpec]:
    """A ResNet BasicBlock, in LoFTR's registration order: conv1, conv2, bn1, bn2, downsample."""
    t, f = f"backbone.layer{layer}.{block}", f"backbone/layer{layer}_{block}"
    specs = [
        _m(f"{t}.conv1", f"{f}/conv1", "conv", cout, cin, 3, 3),
        _m(f"{t}.conv2", f"{f}/conv2", "conv", cout, cout, 3, 3),
        _m(f"{t}.bn1", f"{f}/bn1", "batchnorm", cout),
        _m(f"{t}.bn2", f"{f}/bn2", "batchnorm", cout),
    ]
    if stride != 1:
        specs += [
            _m(f"{t}.downsample.0", f"{f}/downsample_0", "conv", cout, cin, 1, 1),
            _m(f"{t}.downsample.1", f"{f}/downsample_1", "batchnorm", cout),
        ]
    return specs


def _backbone(cfg: LoFTRConfig) -> list[ModuleSpec]:
    """ResNetFPN_8_2 (SPEC §2.1)."""
    d0 = cfg.backbone.initial_dim
    d1, d2, d3 = cfg.backbone.block_dims
    specs = [
        _m("backbone.conv1", "backbone/conv1", "conv", d0, 1, 7, 7),
        _m("backbone.bn1", "backbone/bn1", "batchnorm", d0),
    ]
    cin = d0
    for layer, (dim, stride) in enumerate(((d1, 1), (d2, 2), (d3, 2)), start=1):
        specs += _basic_block(layer, 0, cin, dim, stride)
        specs += _basic_block(layer, 1, dim, dim, 1)
        cin = dim
    specs += [
        _m("backbone.layer3_outconv", "backbone/layer3_outconv", "conv", d3, d3, 1, 1),
        _m("backbone.layer2_outconv", "backbone/layer2_outconv", "conv", d3, d2, 1, 1),
        _m("backbone.layer2_outconv2.0", "backbone/layer2_outconv2_0", "conv", d3, d3, 3, 3),
        _m("backbone.layer2_outconv2.1", "backbone/layer2_outconv2_1", "batchnorm", d3),
        _m("backbone.layer2_outconv2.3", "backbone/layer2_outconv2_3", "conv", d2, d3, 3, 3),
        _m("backbone.layer1_outconv", "backbone/layer1_outconv", "conv", d2, d1, 1, 1),
        _m("backbone.layer1_outconv2.0", "backbone/layer1_outconv2_0", "conv", d2, d2, 3, 3),
        _m("backbone.layer1_outconv2.1", "backbone/layer1_outconv2_1", "batchnorm", d2),
        _m("backbone.layer1_outconv2.3", "backbone/layer1_outconv2_3", "conv", d1, d2, 3, 3),
    ]
    return specs


def _transformer(group: str, d: int, n_layers: int) -> list[ModuleSpec]:
    """LocalFeatureTransformer: one LoFTREncoderLayer per layer name, bias-free linears (SPEC
    §2.3)."""
    specs: list[ModuleSpec] = []
    for i in range(n_layers):
        t, f = f"{group}.layers.{i}", f"{group}/layers_{i}"
        specs += [
            _m(f"{t}.q_proj", f"{f}/q_proj", "linear", d, d),
            _m(f"{t}.k_proj", f"{f}/k_proj", "linear", d, d),
            _m(f"{t}.v_proj", f"{f}/v_proj", "linear", d, d),
            _m(f"{t}.merge", f"{f}/merge", "linear", d, d),
            _m(f"{t}.mlp.0", f"{f}/mlp_0", "linear", 2 * d, 2 * d),
            _m(f"{t}.mlp.2", f"{f}/mlp_2", "linear", d, 2 * d),
            _m(f"{t}.norm1", f"{f}/norm1", "layernorm", d),
            _m(f"{t}.norm2", f"{f}/norm2", "layernorm", d),
        ]
    return specs


def module_specs(cfg: LoFTRConfig) -> tuple[ModuleSpec, ...]:
    """Every parameterised LoFTR module for the dimensions in `cfg`, in state-dict order.

    Args:
      cfg: the target model's LoFTR configuration. The fine stage contributes modules only when
        `cfg.fine.enabled` (and `fine_preprocess` only with `concat_coarse_feat`).

    Returns:
      The module table.
    """
    specs = _backbone(cfg) + _transformer(
        "loftr_coarse", cfg.coarse.d_model, len(cfg.coarse.layer_names)
    )
    if cfg.fine.enabled:
        dc, df = cfg.coarse.d_model, cfg.fine_d_model
        if cfg.fine.concat_coarse_feat:
            specs += [
                _m("fine_preprocess.down_proj", "fine_preprocess/down_proj", "linear_bias", df, dc),
                _m(
                    "fine_preprocess.merge_feat",
                    "fine_preprocess/merge_feat",
                    "linear_bias",
                    df,
                    2 * df,
                ),
            ]
        specs += _transformer("loftr_fine", df, len(cfg.fine.layer_names))
    return tuple(specs)


def _leaf_shape(spec: ModuleSpec, torch_leaf: str) -> tuple[int, ...]:
    if spec.kind in ("conv", "linear", "linear_bias") and torch_leaf == "weight":
        return spec.shape
    if torch_leaf == "bias" and spec.kind == "linear_bias":
        return spec.shape[:1]
    return spec.shape  # norms: (C,)


def build_name_map(cfg: LoFTRConfig) -> NameMap:
    """Expands `module_specs(cfg)` through `LEAVES` into the full key table.

    Args:
      cfg: the target model's LoFTR configuration.

    Returns:
      The name map (mapped entries plus dropped keys).
    """
    entries: list[MapEntry] = []
    dropped: list[str] = []
    for spec in module_specs(cfg):
        group = spec.torch_path.split(".", 1)[0]
        for torch_leaf, flax_leaf, hook in LEAVES[spec.kind]:
            entries.append(
                MapEntry(
                    source=f"{spec.torch_path}.{torch_leaf}",
                    target=f"{spec.flax_path}/{flax_leaf}",
                    hook=hook,
                    group=group,
                    source_shape=_leaf_shape(spec, torch_leaf),
                    trainable=torch_leaf not in STAT_LEAVES,
                )
            )
        dropped += [f"{spec.torch_path}.{leaf}" for leaf in DROPPED_LEAVES.get(spec.kind, ())]
    return NameMap(tuple(entries), tuple(dropped))


@dataclass(frozen=True, slots=True)
class GroupCount:
    """Tensor and value counts of one group.

    Attributes:
      tensors: mapped tensors (running statistics included, step counters excluded).
      params: trainable values (running statistics excluded).
      stats: BatchNorm running-statistic values.
    """

    tensors: int
    params: int
    stats: int


def group_counts(name_map: NameMap) -> dict[str, GroupCount]:
    """Per-group counts of a name map, in `GROUPS` order (groups without entries omitted)."""
    out: dict[str, GroupCount] = {}
    for group in GROUPS:
        rows = [e for e in name_map.entries if e.group == group]
        if rows:
            out[group] = GroupCount(
                tensors=len(rows),
                params=sum(e.size for e in rows if e.trainable),
                stats=sum(e.size for e in rows if not e.trainable),
            )
    return out
