"""ArrayRecord shards + `manifest.json`: writing (atomic, idempotent) and a Grain data source.

Output folder (claimed through `ifvit_data.outputs`, kind `"shards"`):

    .ifvit-output.json                    # marker: this folder is an ifvit shards output
    records-00000-of-00003.array_record   # group_size:1 (random access), records in reader order
    ...
    manifest.json                         # written last; its presence marks a complete output

Safety (the policy of `ifvit_data.outputs`): the folder is checked and claimed before any record is
read; a folder that is an input or inside one, or that holds files but no shards marker, is refused
(unless `force`, which writes next to the files there and deletes none of them). Shards are written
under temp names and renamed, then the manifest is written last, so a run interrupted while writing
leaves the previous output intact; only during the final renames (milliseconds) is there no valid
manifest, and a reader then refuses the folder rather than mixing shards. Shard files of the
previous output (listed in its manifest) that the new output does not reuse are deleted after the
new manifest is in place. Re-running with the same input files and options is detected through
`input_fingerprint` and does nothing; the writer is deterministic, so a rebuild from the same input
gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter

from ifvit_data.outputs import (
    OutputError,
    atomic_write_text,
    claimed_output_dir,
    raise_if_interrupted,
    temp_sibling,
)
from ifvit_data.schema import (
    ENCODINGS,
    MANIFEST_VERSION,
    RECORD_FIELDS,
    RECORD_VERSION,
    STORED_DPI,
    decode_record,
    encode_record,
)

MANIFEST = "manifest.json"
OUTPUT_KIND = "shards"
"""Kind recorded in the output marker of a shard folder (`ifvit_data.outputs`)."""
FORMAT = "ifvit-records"
WRITER_OPTIONS = "group_size:1"


class ShardError(ValueError):
    """A shard folder is missing, incomplete or of another version (message says what to do)."""


def shard_name(k: int, n: int) -> str:
    """File name of shard `k` of `n`: `records-00000-of-00003.array_record`."""
    return f"records-{k:05d}-of-{n:05d}.array_record"


def input_fingerprint(files: Iterable[Path], root: Path, options: dict[str, Any]) -> str:
    """SHA-256 over the relative path, size and mtime of every input file plus the ingest
    options."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """Loads and checks `manifest.json` of a shard folder.

    Raises:
      ShardError: missing, unreadable, of another version, or a shard file is missing.
    """
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise ShardError(f"{path}: no manifest; run `ifvit ingest --out {out_dir}` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ShardError(f"{path}: unreadable manifest ({e}); re-run `ifvit ingest`") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or manifest.get("manifest_version") != MANIFEST_VERSION
        or not isinstance(manifest.get("shards"), list)
    ):
        raise ShardError(
            f"{path}: not an ifvit manifest of version {MANIFEST_VERSION}; re-run `ifvit ingest`"
        )
    for s in manifest["shards"]:
        if not (Path(out_dir) / s["file"]).is_file():
            raise ShardError(f"{Path(out_dir) / s['file']}: shard missing; re-run `ifvit ingest`")
    return manifest


def is_complete(out_dir: Path, fingerprint: str) -> bool:
    """True if `out_dir` holds a complete output of the same input (manifest + shards of right
    size)."""
    try:
        m = read_manifest(out_dir)
    except ShardError:
        return False
    return m.get("input_fingerprint") == fingerprint and all(
        (Path(out_dir) / s["file"]).stat().st_size == s["bytes"] for s in m["shards"]
    )


@dataclass
class WriteResult:
    """Summary of `write_shards`: the manifest written, and whether the output was already
    complete."""

    manifest: dict[str, Any]
    reused: bool


def write_shards(
    records: Iterable[dict[str, Any]],
    out_dir: Path,
    records_per_shard: int = 1024,
    meta: dict[str, Any] | None = None,
    fingerprint: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    finalize_meta: Callable[[], dict[str, Any]] | None = None,
    encoding: str = "raw",
    *,
    force: bool = False,
    inputs: Iterable[Path] = (),
) -> WriteResult:
    """Writes records to sharded ArrayRecord files and a manifest, atomically.

    Args:
      records: the records (see `ifvit_data.schema.RECORD_FIELDS`), in the order to store.
      out_dir: the output folder (claimed as kind `"shards"`, see the module docstring).
      records_per_shard: records per shard file (>= 1).
      meta: extra manifest fields known in advance (layout, source dir, ...).
      fingerprint: input fingerprint; if `out_dir` already holds a complete output with the same
        fingerprint nothing is written.
      on_record: called after each record is written (progress bars).
      finalize_meta: called after the last record; its fields join the manifest (skip counts, ...).
      encoding: pixel encoding of the records, `"raw"` (default; ArrayRecord's chunk compression
        makes it about as small as PNG and ~7x faster to read) or `"png"`.
      force: write into a non-empty folder that is not a shards output (files there are kept,
        except ones named like our outputs, which are replaced).
      inputs: files / folders the records come from; `out_dir` must not be or overlap them.

    Returns:
      The manifest and whether an existing output was reused.

    Raises:
      ShardError: bad options, an output folder that must not be written (see
        `ifvit_data.outputs.OutputError`, re-raised as ShardError), or no records.
    """
    if encoding not in ENCODINGS:
        raise ShardError(f"unknown --encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    if records_per_shard < 1:
        raise ShardError(f"--records-per-shard must be >= 1, got {records_per_shard}")
    try:
        with claimed_output_dir(out_dir, OUTPUT_KIND, inputs=inputs, force=force) as out:
            return _write_claimed(
                records, out, records_per_shard, meta, fingerprint, on_record, finalize_meta,
                encoding,
            )
    except OutputError as e:
        raise ShardError(str(e)) from None


def _own_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of the output already in `out`, if it is one of ours (else None)."""
    try:
        m = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("format") == FORMAT else None


def _write_claimed(
    records: Iterable[dict[str, Any]],
    out: Path,
    records_per_shard: int,
    meta: dict[str, Any] | None,
    fingerprint: str | None,
    on_record: Callable[[dict[str, Any]], None] | None,
    finalize_meta: Callable[[], dict[str, Any]] | None,
    encoding: str,
) -> WriteResult:
    if fingerprint is not None and is_complete(out, fingerprint):
        return WriteResult(read_manifest(out), reused=True)
    old = _own_manifest(out)
    parts: list[tuple[Path, int]] = []  # temp files of this run, renamed only at the end
    try:
        index: dict[str, list[Any]] = {"finger": [], "impression": [], "subject": []}
        writer: ArrayRecordWriter | None = None
        count = 0
        for rec in records:
            if writer is None or count % records_per_shard == 0:
                if writer is not None:
                    writer.close()
                parts.append((temp_sibling(out / f"records-part-{len(parts):05d}"), 0))
                writer = ArrayRecordWriter(str(parts[-1][0]), WRITER_OPTIONS)
            writer.write(encode_record(rec, encoding))
            parts[-1] = (parts[-1][0], parts[-1][1] + 1)
            for k in index:
                index[k].append(rec[k])
            count += 1
            if on_record is not None:
                on_record(rec)
            raise_if_interrupted()
        if writer is not None:
            writer.close()
        if count == 0:
            raise ShardError(f"no readable images to write into {out}; check --input and --layout")
        shards = [
            {
                "file": shard_name(k, len(parts)),
                "records": n,
                "bytes": part.stat().st_size,
                "sha256": _sha256(part),
            }
            for k, (part, n) in enumerate(parts)
        ]
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "manifest_version": MANIFEST_VERSION,
            "record_version": RECORD_VERSION,
            "stored_dpi": STORED_DPI,
            "encoding": encoding,
            **(meta or {}),
            "input_fingerprint": fingerprint,
            "counts": {
                "records": count,
                "subjects": len(set(index["subject"])),
                "fingers": len(set(index["finger"])),
            },
            "fields": RECORD_FIELDS,
            "shards": shards,
            "index": index,
        }
        if finalize_meta is not None:
            extra = finalize_meta()
            manifest["counts"].update(extra.pop("counts", {}))
            manifest.update(extra)
        text = _manifest_text(manifest)  # raises on NaN / infinity: never an invalid JSON file
        raise_if_interrupted()  # the previous output is kept
        # Commit: no manifest while the shard files change, then the new manifest last.
        (out / MANIFEST).unlink(missing_ok=True)
        for (part, _), s in zip(parts, shards, strict=True):
            os.replace(part, out / s["file"])
        atomic_write_text(out / MANIFEST, text)
    except BaseException:
        for part, _ in parts:
            part.unlink(missing_ok=True)
        raise
    if old is not None:
        keep = {s["file"] for s in shards}
        for s in old.get("shards", []):
            name = str(s.get("file", ""))
            if name not in keep and name == Path(name).name and name.endswith(".array_record"):
                (out / name).unlink(missing_ok=True)
    return WriteResult(manifest, reused=False)


def _manifest_text(manifest: dict[str, Any]) -> str:
    """Indented JSON, except the per-record `index` lists which stay on one line each."""
    head = json.dumps(
        {k: v for k, v in manifest.items() if k != "index"},
        indent=1,
        sort_keys=True,
        allow_nan=False,
    )
    index = ",\n".join(
        f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'), allow_nan=False)}"
        for k, v in sorted(manifest["index"].items())
    )
    return head[:-2] + ',\n "index": {\n' + index + "\n }\n}\n"


class RecordSource:
    """Random access to the decoded records of a shard folder (a Grain data source).

    It satisfies `grain.sources.RandomAccessDataSource` structurally (a Protocol), so importing
    this module does not import grain (which imports jax where jax is installed: seconds, for
    `ifvit ingest` that only writes shards).

    Args:
      out_dir: folder written by `write_shards` / `ifvit ingest`.

    Attributes:
      manifest: the parsed manifest.
      fingers: int64 `[N]` finger id per record (from the manifest index, no decoding).
      impressions: int64 `[N]` impression number per record.
    """

    def __init__(self, out_dir: Path | str):
        self.out_dir = Path(out_dir)
        self.manifest = read_manifest(self.out_dir)
        paths = [str(self.out_dir / s["file"]) for s in self.manifest["shards"]]
        import grain

        self._source = grain.sources.ArrayRecordDataSource(paths)
        n = self.manifest["counts"]["records"]
        if len(self._source) != n:
            raise ShardError(
                f"{self.out_dir}: shards hold {len(self._source)} records, manifest says {n}; "
                "re-run `ifvit ingest`"
            )
        self.fingers = np.asarray(self.manifest["index"]["finger"], dtype=np.int64)
        self.impressions = np.asarray(self.manifest["index"]["impression"], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = decode_record(self._source[int(index)])
        rec["index"] = int(index)
        return rec

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return [self[i] for i in indices]

    def __repr__(self) -> str:
        return f"RecordSource({str(self.out_dir)!r}, records={len(self)})"
