"""Applies the name map and the hook table to a LoFTR state dict, with strict key accounting.

    read_checkpoint (checkpoint.py, torch) -> map_state_dict (numpy) -> save_converted (io.py)

Strict accounting: every source key is used exactly once (mapped, or dropped when the table says
so), every target leaf is filled with the shape and dtype the IFViT-JAX model expects; anything else
is a `ConversionError` naming the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_convert import __version__
from ifvit_convert.checkpoint import (
    OT_KEY,
    SourceCheckpoint,
    infer_kind,
    infer_pos_enc,
    read_checkpoint,
)
from ifvit_convert.errors import ConversionError
from ifvit_convert.hooks import HOOKS, target_shape
from ifvit_convert.io import FORMAT, FORMAT_VERSION, output_path, save_converted, sidecar_path
from ifvit_convert.mapping import GroupCount, build_name_map, group_counts
from ifvit_core import config as core_config
from ifvit_core.config import LoFTRConfig
from ifvit_data.outputs import OutputError, check_output_file, raise_if_interrupted

_SHOW = 6  # keys listed per category in an error line


@dataclass(frozen=True, slots=True)
class Conversion:
    """The result of converting one checkpoint.

    Attributes:
      flat: flat Flax paths -> float32 arrays (the model's `flat_state` layout).
      meta: the JSON sidecar content (without the `weights` entry `save_converted` adds).
      counts: per-group tensor / parameter / statistic counts.
      n_source_keys: keys read from the checkpoint (after prefix stripping).
      n_dropped: keys consumed by dropping (`num_batches_tracked`).
      source: the checkpoint that was converted (its tensors feed `--verify`).
    """

    flat: dict[str, np.ndarray]
    meta: dict[str, Any]
    counts: dict[str, GroupCount]
    n_source_keys: int
    n_dropped: int
    source: SourceCheckpoint = dataclasses.field(repr=False)


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    more = f" …and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"{len(items)} {label}: {shown}{more}"


def map_state_dict(
    tensors: dict[str, np.ndarray], cfg: LoFTRConfig, *, source: str = "checkpoint"
) -> dict[str, np.ndarray]:
    """Maps LoFTR tensors (keys without prefix) to the flat Flax layout of `cfg`.

    Args:
      tensors: PyTorch-layout numpy arrays keyed by LoFTR names.
      cfg: target model configuration (its dimensions define the expected keys and shapes).
      source: what to call the input in error messages (usually its path).

    Returns:
      Flat Flax paths -> float32 arrays, one per name-map entry.

    Raises:
      ConversionError: missing, unexpected or mis-shaped keys, or non-floating tensors.
    """
    name_map = build_name_map(cfg)
    expected = name_map.by_source()
    dropped = set(name_map.dropped)
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected and k not in dropped]
    mismatched = [
        f"{k} {list(tensors[k].shape)} (want {list(e.source_shape)})"
        for k, e in expected.items()
        if k in tensors and tuple(tensors[k].shape) != e.source_shape
    ]
    not_float = [
        f"{k} ({tensors[k].dtype})"
        for k in expected
        if k in tensors and tensors[k].dtype.kind != "f"
    ]
    if missing or unexpected or mismatched or not_float:
        parts = [
            _listing(label, items)
            for label, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
                ("non-float tensors", not_float),
            )
            if items
        ]
        found = len(expected) - len(missing)
        if found < len(expected) // 2:
            hint = (
                "this is not a LoFTR checkpoint (or not one of this layout); "
                "pass a LoFTR .ckpt such as outdoor_ds.ckpt"
            )
        elif mismatched:
            hint = (
                "a LoFTR of other dimensions; the target config expects backbone "
                f"{cfg.backbone.initial_dim}/{list(cfg.backbone.block_dims)}, "
                f"d_model {cfg.coarse.d_model}, {len(cfg.coarse.layer_names)} coarse layers "
                "(LoFTR's released size is the 'paper' preset)"
            )
        else:
            hint = "check --prefix and that the checkpoint matches the target config"
        raise ConversionError(
            f"{source}: does not match the IFViT LoFTR layout ({'; '.join(parts)}); {hint}"
        )

    flat: dict[str, np.ndarray] = {}
    for key, entry in expected.items():
        value = HOOKS[entry.hook](tensors[key])
        want = target_shape(entry.hook, entry.source_shape)
        if value.shape != want or value.dtype != np.float32:  # a hook bug, not bad input
            raise AssertionError(
                f"hook {entry.hook} gave {value.shape} {value.dtype} for {key}, want {want}"
            )
        if entry.target in flat:
            raise AssertionError(f"two source keys map to {entry.target}")
        flat[entry.target] = value
    return flat


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_jsonable(x) for x in obj]
    return obj


def target_config(preset: str = "paper", pos_enc: str | None = None) -> LoFTRConfig:
    """The LoFTR configuration of `preset`, with the position-encoding variant replaced if given."""
    try:
        cfg = core_config.get_preset(preset).loftr
    except ValueError as e:
        raise ConversionError(f"--preset: {e}") from None
    return dataclasses.replace(cfg, pos_enc=pos_enc) if pos_enc else cfg


def convert_checkpoint(
    ckpt: SourceCheckpoint,
    *,
    preset: str = "paper",
    pos_enc: str | None = None,
    kind: str | None = None,
) -> Conversion:
    """Converts a checkpoint already read by `read_checkpoint`.

    Args:
      ckpt: the source checkpoint.
      preset: the ifvit-core preset whose LoFTR dimensions are the target ('paper' for LoFTR's own).
      pos_enc: 'buggy' or 'fixed'; None infers it from the file name (`infer_pos_enc`).
      kind: 'outdoor', 'indoor' or 'unknown'; None infers it from the file name.

    Returns:
      The converted arrays, sidecar content and counts.

    Raises:
      ConversionError: an optimal-transport checkpoint (IFViT matches with dual-softmax), or any
        key-accounting failure.
    """
    if ckpt.match_type == "optimal_transport":
        raise ConversionError(
            f"{ckpt.path}: an optimal-transport (Sinkhorn) LoFTR checkpoint (it has {OT_KEY}), "
            "but IFViT matches with dual-softmax; convert a dual-softmax checkpoint such as "
            "outdoor_ds.ckpt or indoor_ds_new.ckpt"
        )
    if pos_enc is None:
        pos_enc, pos_enc_source = infer_pos_enc(ckpt.path)
    else:
        pos_enc_source = "given (--pos-enc)"
    if pos_enc not in ("buggy", "fixed"):
        raise ConversionError(f"{ckpt.path}: --pos-enc must be 'buggy' or 'fixed', got {pos_enc!r}")
    if kind is None:
        kind = infer_kind(ckpt.path)
        kind_source = (
            "file name"
            if kind != "unknown"
            else "unknown: weights alone cannot tell outdoor from indoor; pass --kind"
        )
    else:
        kind_source = "given (--kind)"
    cfg = target_config(preset, pos_enc)
    flat = map_state_dict(ckpt.tensors, cfg, source=str(ckpt.path))
    name_map = build_name_map(cfg)
    counts = group_counts(name_map)
    n_dropped = sum(1 for k in name_map.dropped if k in ckpt.tensors)
    source_dtypes = sorted({str(v.dtype) for v in ckpt.tensors.values()})
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_by": f"ifvit-convert {__version__}",
        "preset": preset,
        "pos_enc": pos_enc,
        "pos_enc_source": pos_enc_source,
        "kind": kind,
        "kind_source": kind_source,
        "match_type": ckpt.match_type,
        "model_config": _jsonable(cfg),
        "source": {
            "path": str(ckpt.path.resolve()),
            "sha256": ckpt.sha256,
            "bytes": ckpt.path.stat().st_size,
            "container": ckpt.container,
            "prefix": ckpt.prefix,
            "keys": len(ckpt.tensors),
            "dropped_keys": n_dropped,
            "dtypes": source_dtypes,
            **ckpt.extra,
        },
        "groups": {g: dataclasses.asdict(c) for g, c in counts.items()},
        "total": {
            "tensors": len(flat),
            "params": sum(c.params for c in counts.values()),
            "stats": sum(c.stats for c in counts.values()),
        },
    }
    return Conversion(flat, meta, counts, len(ckpt.tensors), n_dropped, ckpt)


def convert_file(
    ckpt_path: str | Path,
    out: str | Path,
    *,
    preset: str = "paper",
    pos_enc: str | None = None,
    kind: str | None = None,
    prefix: str | None = None,
    check_model: bool = True,
    force: bool = False,
) -> tuple[Conversion, Path]:
    """Reads a LoFTR checkpoint, converts it and writes weights + JSON sidecar atomically.

    Nothing is written unless every check passes. The output paths are checked first, before the
    checkpoint is read (`ifvit_data.outputs.check_output_file`): an existing weights file or
    sidecar is refused unless `force`, and so are the checkpoint itself, a folder, a path under a
    file and an unwritable location (even with `force`).

    Args:
      ckpt_path: the PyTorch checkpoint.
      out: the output weights file (`.safetensors`, or `.npz`); the sidecar is `<out>.json`.
      preset: target ifvit-core preset.
      pos_enc: position-encoding variant, None to infer from the file name.
      kind: 'outdoor' / 'indoor' / 'unknown', None to infer from the file name.
      prefix: key prefix to strip, None to detect.
      check_model: also load the arrays into a freshly built ifvit-core model (strict), so a file is
        only written if the model accepts it.
      force: replace an existing output (weights and sidecar).

    Returns:
      (conversion, path of the weights file written).
    """
    out = output_path(out)  # a bad output name fails before any work
    try:
        for path in (out, sidecar_path(out)):
            check_output_file(path, inputs=[ckpt_path], force=force)
    except OutputError as e:
        raise ConversionError(str(e)) from None
    if pos_enc not in (None, "buggy", "fixed"):
        raise ConversionError(f"--pos-enc must be 'buggy' or 'fixed', got {pos_enc!r}")
    target_config(preset, pos_enc)  # an unknown preset fails before the checkpoint is read
    ckpt = read_checkpoint(ckpt_path, prefix=prefix)
    raise_if_interrupted()  # stages end here even if a library swallowed a KeyboardInterrupt
    conv = convert_checkpoint(ckpt, preset=preset, pos_enc=pos_enc, kind=kind)
    raise_if_interrupted()
    if check_model:
        from ifvit_convert.io import build_model_from_meta

        build_model_from_meta(conv.meta, conv.flat)
        raise_if_interrupted()
    written = save_converted(out, conv.flat, conv.meta)
    return conv, written


def format_summary(conv: Conversion, written: Path | None = None) -> str:
    """A human-readable summary: tensors and parameters per group, and the recorded metadata."""
    m = conv.meta
    lines = []
    if written is not None:
        lines.append(f"wrote {written} (+ {written.name}.json)")
    src = m["source"]
    lines.append(
        f"source {src['path']} ({src['container']}, prefix {src['prefix']!r}, "
        f"{conv.n_source_keys} keys, {conv.n_dropped} num_batches_tracked dropped), sha256 "
        f"{src['sha256'][:16]}…"
    )
    lines.append(
        f"kind {m['kind']} ({m['kind_source']}); matching {m['match_type']}; "
        f"pos_enc {m['pos_enc']} ({m['pos_enc_source']}); preset {m['preset']}"
    )
    lines.append(f"{'group':<18}{'tensors':>8}{'parameters':>14}{'BN stats':>10}")
    for group, c in conv.counts.items():
        lines.append(f"{group:<18}{c.tensors:>8}{c.params:>14,}{c.stats:>10,}")
    t = m["total"]
    lines.append(f"{'total':<18}{t['tensors']:>8}{t['params']:>14,}{t['stats']:>10,}")
    return "\n".join(lines)
