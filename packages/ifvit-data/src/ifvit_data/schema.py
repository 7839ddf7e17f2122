"""Key names, dtypes and byte layout of ifvit-data records and batches (see docs/contracts.md).

A *record* is one fingerprint impression as stored in an ArrayRecord shard:

| key | type | meaning |
|---|---|---|
| `image` | uint8 `[H, W]` | gray print at 500 ppi, ridges dark, background white |
| `subject` | str | the person (or, when unknown, the finger's own name) |
| `finger` | int | global finger identity, a dense 0-based index over the dataset |
| `impression` | int | 1-based impression number within the finger |
| `dpi` | float | resolution of the *source* file (the stored image is always 500 ppi) |
| `source` | str | path of the source file relative to the ingested folder |

On disk a record is `MAGIC | uint32 little-endian header length | JSON header | pixels`. No pickle:
the JSON header holds the scalar fields, the image shape and the pixel `encoding`: `raw` (row-major
uint8; ArrayRecord's default chunk compression brings a 388x374 FVC print from 145 KB to ~61 KB and
reads it back in ~0.15 ms) or `png` (~60 KB, ~1 ms to decode; for shards written uncompressed).
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final

import cv2
import numpy as np

RECORD_VERSION: Final[int] = 1
"""Version of the record byte layout; bump it when `encode_record` changes."""

MANIFEST_VERSION: Final[int] = 1
"""Version of `manifest.json` written by `ifvit_data.shards`."""

MAGIC: Final[bytes] = b"IFVR"
STORED_DPI: Final[float] = 500.0
"""Every stored image is resampled to this resolution (pixels per inch)."""

RECORD_FIELDS: Final[dict[str, str]] = {
    "image": "uint8[H,W]",
    "subject": "str",
    "finger": "int",
    "impression": "int",
    "dpi": "float",
    "source": "str",
}

# Ground-truth keys (contracts.md, "Ground-truth correspondences"); L = (H0 // 8) * (W0 // 8).
GT_KEYS: Final[dict[str, tuple[str, str]]] = {
    "gt_i": ("int32", "[L]"),
    "gt_j": ("int32", "[L]"),
    "gt_valid": ("bool", "[L]"),
    "gt_pts0": ("float32", "[L,2]"),
    "gt_pts1": ("float32", "[L,2]"),
}

# Foreground masks of both inputs (`ifvit_data.foreground`, the project's one segmentation): Module
# 2 warps mask1 with the alignment it fits, and evaluation reports matches off the foreground.
MASK_KEYS: Final[dict[str, tuple[str, str]]] = {
    "mask0": ("bool", "[H,W]"),
    "mask1": ("bool", "[H,W]"),
}

MODULE1_KEYS: Final[dict[str, tuple[str, str]]] = {
    "image0": ("float32", "[H,W,1]"),
    "image1": ("float32", "[H,W,1]"),
    **MASK_KEYS,
    **GT_KEYS,
    "transform": ("float32", "[2,3]"),
}

MODULE2_KEYS: Final[dict[str, tuple[str, str]]] = {
    **MODULE1_KEYS,
    "label0": ("int32", "[]"),
    "label1": ("int32", "[]"),
    "is_genuine": ("int32", "[]"),
}

EVAL_KEYS: Final[dict[str, tuple[str, str]]] = {
    "image0": ("float32", "[H,W,1]"),
    "image1": ("float32", "[H,W,1]"),
    **MASK_KEYS,
    "key0": ("int32", "[]"),
    "key1": ("int32", "[]"),
    "is_genuine": ("int32", "[]"),
}

BATCH_KINDS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "module1": MODULE1_KEYS,
    "module2": MODULE2_KEYS,
    "eval": EVAL_KEYS,
}


class RecordError(ValueError):
    """A record's bytes cannot be decoded (wrong magic, truncated, bad header or image)."""


ENCODINGS: Final[tuple[str, ...]] = ("png", "raw")


def encode_record(record: dict[str, Any], encoding: str = "raw") -> bytes:
    """Serialises a record to bytes (deterministic: the same record always gives the same bytes).

    Args:
      record: a dict with the keys of `RECORD_FIELDS`; `image` is uint8 `[H, W]`.
      encoding: `"raw"` or `"png"` pixels.

    Returns:
      `MAGIC | len(header) as <I | JSON header | pixels`.

    Raises:
      ValueError: a field is missing or has the wrong type or shape.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown record encoding {encoding!r}; choose one of {ENCODINGS}")
    missing = [k for k in RECORD_FIELDS if k not in record]
    if missing:
        raise ValueError(f"record is missing fields {missing}; expected {list(RECORD_FIELDS)}")
    image = np.asarray(record["image"])
    if image.dtype != np.uint8 or image.ndim != 2 or min(image.shape) == 0:
        raise ValueError(
            f"record image must be non-empty uint8 [H, W], got {image.dtype} {image.shape}"
        )
    header = {
        "version": RECORD_VERSION,
        "encoding": encoding,
        "shape": [int(image.shape[0]), int(image.shape[1])],
        "subject": str(record["subject"]),
        "finger": int(record["finger"]),
        "impression": int(record["impression"]),
        "dpi": float(record["dpi"]),
        "source": str(record["source"]),
    }
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if encoding == "raw":
        return MAGIC + struct.pack("<I", len(head)) + head + np.ascontiguousarray(image).tobytes()
    ok, png = cv2.imencode(".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:  # pragma: no cover - cv2 only fails on unsupported dtypes, excluded above
        raise ValueError("PNG encoding failed")
    return MAGIC + struct.pack("<I", len(head)) + head + png.tobytes()


def decode_header(data: bytes) -> dict[str, Any]:
    """Decodes only the JSON header of a record (cheap: no pixels).

    Args:
      data: bytes produced by `encode_record`.

    Returns:
      The header dict (`version`, `shape`, and the scalar record fields).

    Raises:
      RecordError: the bytes are not a record of a supported version.
    """
    if len(data) < 8 or data[:4] != MAGIC:
        raise RecordError(
            "not an ifvit record (bad magic); re-run `ifvit ingest` to rebuild the shards"
        )
    (n,) = struct.unpack("<I", data[4:8])
    if 8 + n > len(data):
        raise RecordError("truncated record header; re-run `ifvit ingest`")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"corrupt record header ({e}); re-run `ifvit ingest`") from None
    if header.get("version") != RECORD_VERSION:
        raise RecordError(
            f"record version {header.get('version')} is not {RECORD_VERSION}; re-run `ifvit ingest`"
        )
    return header


def decode_record(data: bytes) -> dict[str, Any]:
    """Inverse of `encode_record`.

    Args:
      data: bytes produced by `encode_record`.

    Returns:
      The record dict: `image` uint8 `[H, W]` plus the scalar fields of `RECORD_FIELDS`.

    Raises:
      RecordError: the bytes are corrupt or of another version.
    """
    header = decode_header(data)
    (n,) = struct.unpack("<I", data[4:8])
    pixels = np.frombuffer(data, dtype=np.uint8, offset=8 + n)
    shape = tuple(header["shape"])
    if header.get("encoding", "png") == "raw":
        image = pixels.reshape(shape).copy() if pixels.size == shape[0] * shape[1] else None
    else:
        image = cv2.imdecode(pixels, cv2.IMREAD_UNCHANGED) if pixels.size else None
    if image is None or image.dtype != np.uint8 or image.shape != shape:
        raise RecordError("corrupt record image; re-run `ifvit ingest`")
    return {
        "image": image,
        "subject": header["subject"],
        "finger": int(header["finger"]),
        "impression": int(header["impression"]),
        "dpi": float(header["dpi"]),
        "source": header["source"],
    }


def validate_batch(batch: dict[str, np.ndarray], kind: str, batched: bool = True) -> None:
    """Checks that a batch has exactly the keys, dtypes and ranks of the contract.

    Args:
      batch: the numpy dict produced by a pipeline.
      kind: `"module1"`, `"module2"` or `"eval"`.
      batched: whether arrays carry a leading batch axis `B`.

    Raises:
      ValueError: naming the first key that does not match.
    """
    spec = BATCH_KINDS[kind]
    if set(batch) != set(spec):
        raise ValueError(f"{kind} batch keys {sorted(batch)} != contract {sorted(spec)}")
    lead = 1 if batched else 0
    for key, (dtype, shape) in spec.items():
        arr = np.asarray(batch[key])
        rank = 0 if shape == "[]" else shape.count(",") + 1
        if arr.dtype != np.dtype(dtype) or arr.ndim != rank + lead:
            raise ValueError(
                f"{kind} batch key {key!r}: got {arr.dtype} rank {arr.ndim}, want {dtype} {shape}"
            )
    h, w = np.asarray(batch["image0"]).shape[lead : lead + 2]
    if "gt_i" in spec and np.asarray(batch["gt_i"]).shape[lead] != (h // 8) * (w // 8):
        raise ValueError(
            f"{kind} batch: gt length {np.asarray(batch['gt_i']).shape[lead]} != (H//8)*(W//8)"
        )
