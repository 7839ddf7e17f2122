"""Torch-free reading and writing of converted LoFTR parameters (safetensors or `.npz` + JSON
sidecar).

This module is what ifvit-train and the apps use to start from converted weights; it never imports
torch (tests/test_isolation.py checks it). A converted file is a flat mapping of `/`-joined Flax
paths (`backbone/bn1/mean`, `loftr_coarse/layers_3/mlp_2/kernel`, …) to float32 arrays, next to
`<file>.json` with the format version, the model config, the preset, the position-encoding variant,
the checkpoint kind, the matching type, the source path + sha256 and per-group counts.

Both files are written to temporary names in the target directory (`ifvit_data.outputs.atomic_path`,
the one temp pattern of every ifvit output) and moved into place, weights first and sidecar last,
so a reader never sees a half-written file, and a mixed pair fails the sha256 check of
`load_converted`. An interrupt (or any error) before the renames leaves no file behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_convert.errors import ConversionError
from ifvit_data.outputs import atomic_path

FORMAT = "ifvit-loftr-params"
FORMAT_VERSION = 1
SUFFIXES = (".safetensors", ".npz")


def sidecar_path(weights: str | Path) -> Path:
    """The JSON sidecar of a weights file: `<weights>.json`."""
    weights = Path(weights)
    return weights.with_name(weights.name + ".json")


def output_path(out: str | Path) -> Path:
    """Normalises an output path: no suffix -> `.safetensors`; `.safetensors` and `.npz` kept.

    Raises:
      ConversionError: any other suffix.
    """
    out = Path(out)
    if out.suffix == "":
        return out.with_name(out.name + ".safetensors")
    if out.suffix not in SUFFIXES:
        raise ConversionError(f"{out}: output must end in .safetensors or .npz")
    return out


def _encode(flat: dict[str, np.ndarray], suffix: str) -> bytes:
    arrays = {k: np.ascontiguousarray(v) for k, v in sorted(flat.items())}
    if suffix == ".safetensors":
        from safetensors.numpy import save

        return save(arrays, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    import io

    buf = io.BytesIO()
    np.savez(
        buf, **arrays
    )  # plain numeric arrays: no pickle involved (loaded with allow_pickle=False)
    return buf.getvalue()


def save_converted(out: str | Path, flat: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Writes `flat` and its sidecar atomically (replacing existing files: check them first with
    `ifvit_data.outputs.check_output_file`, as `convert_file` does).

    Args:
      out: weights path (`.safetensors` or `.npz`; no suffix means `.safetensors`).
      flat: flat Flax paths -> arrays.
      meta: sidecar content; a `weights` entry (file name, sha256, tensor count) is added.

    Returns:
      The weights path written.
    """
    out = output_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = _encode(flat, out.suffix)
    meta = {
        **meta,
        "weights": {
            "file": out.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "tensors": len(flat),
            "format": out.suffix.lstrip("."),
        },
    }
    side = sidecar_path(out)
    text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    # The inner block commits first: weights, then the sidecar.
    with atomic_path(side) as tmp_s, atomic_path(out) as tmp_w:
        tmp_w.write_bytes(data)
        tmp_s.write_text(text)
    return out


def load_converted(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Reads a converted file and its sidecar, checking that they belong together.

    Args:
      path: the weights file (`.safetensors` / `.npz`) or its `.json` sidecar.

    Returns:
      (flat, meta): flat Flax paths -> float32 arrays, and the sidecar content.

    Raises:
      ConversionError: missing files, an unknown format, or weights that do not match the sidecar.
    """
    path = Path(path)
    if path.name.endswith(".json") and Path(path.name[: -len(".json")]).suffix in SUFFIXES:
        path = path.with_name(path.name[: -len(".json")])
    side = sidecar_path(path)
    for p in (path, side):
        if not p.is_file():
            raise ConversionError(
                f"{p}: no such file; convert a checkpoint with `ifvit convert --ckpt X "
                f"--out {path}`"
            )
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConversionError(
            f"{side}: not a JSON sidecar ({e}); convert the checkpoint again"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConversionError(f"{side}: not an ifvit-convert sidecar (format != {FORMAT!r})")
    if int(meta.get("format_version", -1)) > FORMAT_VERSION:
        raise ConversionError(
            f"{side}: format version {meta['format_version']} is newer than this ifvit-convert "
            f"({FORMAT_VERSION}); upgrade ifvit-convert"
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("weights", {}).get("sha256"):
        raise ConversionError(
            f"{path}: its sha256 differs from the one in {side.name}; the pair was mixed up "
            "or the file changed; convert the checkpoint again"
        )
    if path.suffix == ".safetensors":
        from safetensors.numpy import load

        flat = dict(load(data))
    else:
        import io

        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    return flat, meta


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = _from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def loftr_config_from_meta(meta: dict[str, Any]) -> Any:
    """The `ifvit_core.config.LoFTRConfig` a converted file was made for (from its sidecar)."""
    from ifvit_core.config import LoFTRConfig

    try:
        return _from_dict(LoFTRConfig, meta["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConversionError(
            f"sidecar model_config does not build a LoFTRConfig ({e}); convert again"
        ) from None


def select_groups(flat: dict[str, np.ndarray], groups: Iterable[str]) -> dict[str, np.ndarray]:
    """The entries of `flat` under the given top-level groups (e.g. drop the fine stage)."""
    keep = tuple(groups)
    return {k: v for k, v in flat.items() if k.split("/", 1)[0] in keep}


def apply_converted(
    model: Any,
    flat: dict[str, np.ndarray],
    meta: dict[str, Any] | None = None,
    *,
    pos_enc: str | None = None,
    groups: Iterable[str] | None = None,
) -> None:
    """Loads converted arrays into an ifvit-core LoFTR model (strictly) in place.

    Args:
      model: an `ifvit_core.loftr.LoFTR` (or any module whose flat state has these paths).
      flat: from `load_converted`.
      meta: its sidecar; with `pos_enc`, checks that the model uses the variant the weights were
        trained with.
      pos_enc: the model's position-encoding variant ('buggy'/'fixed'), to check against `meta`.
      groups: load only these top-level groups (e.g. `("backbone", "loftr_coarse")` for a
        coarse-only model); None loads everything.

    Raises:
      ConversionError: position-encoding mismatch, or missing/unexpected/mis-shaped leaves.
    """
    from ifvit_core.params import load_flat_state

    if meta is not None and pos_enc is not None and meta.get("pos_enc") != pos_enc:
        raise ConversionError(
            f"the converted weights expect pos_enc={meta.get('pos_enc')!r} but the model uses "
            f"{pos_enc!r}; set LoFTRConfig.pos_enc accordingly (or re-convert with --pos-enc)"
        )
    if groups is not None:
        flat = select_groups(flat, groups)
    try:
        load_flat_state(model, flat, strict=True)
    except (KeyError, ValueError, TypeError) as e:
        msg = " ".join(str(e).split())
        raise ConversionError(f"the converted weights do not fit the model: {msg}") from None


def init_from_converted(model: Any, path: str | Path) -> dict[str, Any]:
    """Starts an ifvit-core LoFTR / LoFTRCoarse from a converted file, in place (`--init-loftr`).

    Loads the groups the model has (a coarse-only `LoFTRCoarse` takes `backbone` and `loftr_coarse`
    and leaves the fine-stage arrays aside) and refuses weights trained with another
    position-encoding variant than `model.cfg.pos_enc`.

    Args:
      model: the module to fill; its flat state must be a subset of the file's, group by group.
      path: the converted `.safetensors` / `.npz` (or its sidecar).

    Returns:
      The sidecar content (for logging the source and its sha256).

    Raises:
      ConversionError: unreadable file, position-encoding mismatch, or leaves that do not fit.
    """
    from ifvit_core.params import flat_state

    flat, meta = load_converted(path)
    groups = sorted({k.split("/", 1)[0] for k in flat_state(model)})
    cfg = getattr(model, "cfg", None)
    apply_converted(model, flat, meta, pos_enc=getattr(cfg, "pos_enc", None), groups=groups)
    return meta


def build_model_from_meta(
    meta: dict[str, Any], flat: dict[str, np.ndarray] | None = None, seed: int = 0
) -> Any:
    """Builds the ifvit-core LoFTR model described by a sidecar, optionally loading `flat` into it.

    Args:
      meta: sidecar content (`model_config`).
      flat: arrays to load strictly; None leaves the random initialisation.
      seed: initialisation seed.

    Returns:
      An `ifvit_core.loftr.LoFTR` in eval mode.
    """
    from flax import nnx

    from ifvit_core.loftr import LoFTR

    cfg = loftr_config_from_meta(meta)
    if flat is None:
        model = LoFTR(cfg, rngs=nnx.Rngs(seed))
    else:
        # Every variable is about to be overwritten (strict load): build the module abstractly
        # (shapes only, no random init: ~0.5 s instead of ~10 s on CPU) and fill it.
        model = nnx.eval_shape(lambda: LoFTR(cfg, rngs=nnx.Rngs(seed)))
        apply_converted(model, flat)
    model.eval()
    return model


def load_loftr(path: str | Path, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """Builds an ifvit-core LoFTR from a converted file: `model, meta =
    load_loftr("loftr.safetensors")`.

    Returns:
      (model in eval mode, sidecar).
    """
    flat, meta = load_converted(path)
    return build_model_from_meta(meta, flat, seed), meta
