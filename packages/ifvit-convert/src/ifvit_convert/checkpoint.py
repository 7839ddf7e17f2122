"""Reading LoFTR PyTorch checkpoints into numpy, with the layout detected from the file.

Two layouts are accepted:
  * `lightning`: a PyTorch-Lightning checkpoint `{'state_dict': {'matcher.<key>': tensor}, 'epoch':
    …}`, as LoFTR releases them (`outdoor_ds.ckpt`, `indoor_ds_new.ckpt`, `outdoor_ot.ckpt`);
  * `state_dict`: a bare `{<key>: tensor}` mapping, e.g. `kornia.feature.LoFTR(...).state_dict()`.

The key prefix (`matcher.` for Lightning files, empty for bare ones) is found from the position of
`backbone.conv1.weight`, or forced with `prefix=`. torch is imported only here, lazily, and files
are unpickled with `weights_only=True` (no arbitrary code from the file runs).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ifvit_convert.errors import TORCH_HINT, ConversionError, TorchMissingError

ANCHOR_KEY = "backbone.conv1.weight"  # the first LoFTR tensor; locates the prefix
OT_KEY = "coarse_matching.bin_score"  # present only in optimal-transport (Sinkhorn) checkpoints

Container = Literal["lightning", "state_dict"]
Kind = Literal["outdoor", "indoor", "unknown"]
MatchType = Literal["dual_softmax", "optimal_transport"]


@dataclass(frozen=True, slots=True)
class SourceCheckpoint:
    """A checkpoint read into numpy.

    Attributes:
      path: the file read.
      sha256: hex digest of the file's bytes.
      container: `lightning` or `state_dict`.
      prefix: the prefix stripped from the LoFTR keys (`matcher.` or empty).
      tensors: every tensor of the state dict, keys with `prefix` removed (keys that did not carry
        the prefix are kept whole, so that accounting reports them as unexpected).
      match_type: `optimal_transport` when `coarse_matching.bin_score` is present, else
      `dual_softmax`.
      extra: scalar Lightning bookkeeping worth recording (`epoch`, `global_step`), when present.
    """

    path: Path
    sha256: str
    container: Container
    prefix: str
    tensors: dict[str, np.ndarray]
    match_type: MatchType
    extra: dict[str, Any] = field(default_factory=dict)


def import_torch() -> Any:
    """Imports torch, or raises a one-line `TorchMissingError` saying how to install it."""
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised in environments without torch
        reason = str(e).replace(";", ",")
        raise TorchMissingError(
            f"reading a PyTorch checkpoint needs torch ({reason}); {TORCH_HINT}"
        ) from None
    return torch


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def infer_kind(path: Path) -> Kind:
    """`outdoor`/`indoor` from the file name (LoFTR's release names); `unknown` otherwise.

    Weights alone cannot tell an outdoor (MegaDepth) from an indoor (ScanNet) model.
    """
    name = path.name.lower()
    if "outdoor" in name:
        return "outdoor"
    if "indoor" in name:
        return "indoor"
    return "unknown"


def infer_pos_enc(path: Path) -> tuple[Literal["buggy", "fixed"], str]:
    """The position-encoding variant a LoFTR checkpoint was most likely trained with, and why.

    LoFTR's `*_new` checkpoints (`indoor_ds_new.ckpt`) were retrained with the fixed encoding; every
    other released checkpoint (`outdoor_ds.ckpt`, `indoor_ds.ckpt`, `*_ot.ckpt`) with the buggy one
    (SPEC §2.2). Weights cannot tell, so this is a file-name rule; pass `pos_enc` to override.

    Returns:
      (variant, reason) where reason says how it was chosen.
    """
    if re.search(r"(^|[_\-.])new([_\-.]|$)", path.stem.lower()):
        return "fixed", "file name contains 'new' (LoFTR's retrained *_new checkpoints)"
    return "buggy", "default for LoFTR's released checkpoints (outdoor_ds, indoor_ds, *_ot)"


def _load_object(path: Path) -> Any:
    torch = import_torch()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, … by cause
        text = str(e).strip()
        # torch's messages run to several sentences; the first one says what failed
        reason = text.splitlines()[0].split(". ")[0][:160] if text else type(e).__name__
        low = reason.lower()
        if "weights only load failed" in low or "weights_only" in low:
            raise ConversionError(
                f"{path}: torch.load(weights_only=True) refused it because it holds pickled Python "
                "objects besides tensors; re-save its state_dict with "
                "torch.save(model.state_dict()) and convert that file"
            ) from None
        if any(
            s in low
            for s in ("central directory", "eof", "truncated", "unexpected end", "failed reading")
        ):
            raise ConversionError(
                f"{path}: the file is truncated or corrupt ({reason}); download or copy it again"
            ) from None
        raise ConversionError(
            f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {reason}); pass a LoFTR .ckpt "
            "such as outdoor_ds.ckpt or a saved LoFTR state_dict"
        ) from None


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _to_numpy(x: Any) -> np.ndarray:
    torch = import_torch()
    t = x.detach().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16
        t = t.float()
    return t.numpy().copy()


def _state_dict_of(path: Path, obj: Any) -> tuple[Container, Mapping[str, Any], dict[str, Any]]:
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        extra = {k: obj[k] for k in ("epoch", "global_step") if isinstance(obj.get(k), int)}
        return "lightning", obj["state_dict"], extra
    if isinstance(obj, Mapping) and obj and all(_is_tensor(v) for v in obj.values()):
        return "state_dict", obj, {}
    if isinstance(obj, Mapping):
        keys = ", ".join(map(str, list(obj)[:5])) or "nothing"
        what = f"a dict with keys {keys}"
    else:
        what = f"a {type(obj).__name__}"
    raise ConversionError(
        f"{path}: not a LoFTR checkpoint (it holds {what}, neither a Lightning checkpoint with "
        "'state_dict' nor a state dict of tensors); pass a LoFTR .ckpt such as outdoor_ds.ckpt"
    )


def detect_prefix(path: Path, keys: list[str]) -> str:
    """The prefix in front of LoFTR's key names, found from where `backbone.conv1.weight` sits.

    Args:
      path: the file (for messages).
      keys: the state-dict keys.

    Returns:
      The prefix, e.g. `matcher.` or the empty string.

    Raises:
      ConversionError: no key ends with `backbone.conv1.weight` (not a LoFTR model), or several
        prefixes do (several models in one file; choose with `--prefix`).
    """
    prefixes = sorted(
        k[: -len(ANCHOR_KEY)] for k in keys if k == ANCHOR_KEY or k.endswith("." + ANCHOR_KEY)
    )
    if not prefixes:
        sample = ", ".join(keys[:3]) or "no keys"
        raise ConversionError(
            f"{path}: not a LoFTR checkpoint: no '{ANCHOR_KEY}' key (it starts with {sample}); "
            "pass a LoFTR .ckpt such as outdoor_ds.ckpt"
        )
    if len(prefixes) > 1:
        shown = ", ".join(repr(p) for p in prefixes)
        raise ConversionError(
            f"{path}: several LoFTR models in one file (key prefixes {shown}); choose one "
            "with --prefix"
        )
    return prefixes[0]


def read_checkpoint(path: str | Path, prefix: str | None = None) -> SourceCheckpoint:
    """Reads a LoFTR checkpoint (Lightning or bare state dict) into numpy arrays.

    Args:
      path: the `.ckpt` / `.pth` file.
      prefix: key prefix to strip; None detects it (`matcher.` for LoFTR's Lightning files).

    Returns:
      The checkpoint, keys without prefix.

    Raises:
      ConversionError: missing, unreadable, truncated, non-checkpoint or non-LoFTR file (one line).
      TorchMissingError: torch is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise ConversionError(
            f"{path}: no such file; pass the path of a LoFTR checkpoint (e.g. outdoor_ds.ckpt)"
        )
    if not path.is_file():
        raise ConversionError(
            f"{path}: not a file; pass the path of a LoFTR checkpoint (e.g. outdoor_ds.ckpt)"
        )
    if path.stat().st_size == 0:
        raise ConversionError(f"{path}: the file is empty; download or copy the checkpoint again")
    digest = sha256_file(path)
    obj = _load_object(path)
    container, state, extra = _state_dict_of(path, obj)
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not _is_tensor(v)]
    if bad:
        raise ConversionError(
            f"{path}: not a LoFTR checkpoint: entries {', '.join(bad[:3])} of its state "
            "dict are not tensors; pass a LoFTR .ckpt such as outdoor_ds.ckpt"
        )
    keys = list(state)
    if prefix is None:
        prefix = detect_prefix(path, keys)
    tensors = {
        (k[len(prefix) :] if k.startswith(prefix) else k): _to_numpy(v) for k, v in state.items()
    }
    if len(tensors) != len(state):
        raise ConversionError(
            f"{path}: stripping the prefix {prefix!r} makes some keys collide; choose "
            "another --prefix"
        )
    match_type: MatchType = "optimal_transport" if OT_KEY in tensors else "dual_softmax"
    return SourceCheckpoint(path, digest, container, prefix, tensors, match_type, extra)
