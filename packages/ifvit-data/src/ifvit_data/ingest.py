"""Dataset folder -> ArrayRecord shards + manifest (the library side of `ifvit ingest`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ifvit_data.readers import DatasetReader
from ifvit_data.shards import WriteResult, input_fingerprint, write_shards


def ingest(
    input_dir: Path,
    layout: str,
    out_dir: Path,
    dpi: float | None = None,
    strict: bool = False,
    records_per_shard: int = 1024,
    pattern: str | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    encoding: str = "raw",
    *,
    force: bool = False,
) -> tuple[WriteResult, DatasetReader]:
    """Reads a dataset folder and writes its shards (idempotent, atomic, never over the input).

    Args:
      input_dir: the dataset folder.
      layout: a key of `ifvit_data.readers.LAYOUTS`.
      out_dir: the shard folder.
      dpi: resolution of every input file, overriding metadata (None: metadata / name / default).
      strict: raise on the first bad file instead of skipping it.
      records_per_shard: records per ArrayRecord file.
      pattern: file-name regex overriding the layout's.
      on_record: progress callback, called per written record.
      encoding: record pixel encoding, `"raw"` (default) or `"png"` (see `ifvit_data.schema`).
      force: write into a non-empty `out_dir` that is not a shards output (`ifvit_data.outputs`);
        the input folder is refused as output even then.

    Returns:
      `(write result with the manifest, the reader with skip details)`.

    Raises:
      ifvit_data.readers.DatasetError / ifvit_data.shards.ShardError: bad input or output folder.
    """
    input_dir = Path(input_dir).resolve()
    reader = DatasetReader(input_dir, layout, dpi=dpi, strict=strict, pattern=pattern)
    options = {
        "layout": layout,
        "dpi": dpi,
        "pattern": pattern,
        "records_per_shard": records_per_shard,
        "strict": strict,
        "encoding": encoding,
    }
    fp = input_fingerprint((e.path for e in reader.entries), input_dir, options)
    meta = {
        "source_dir": str(input_dir),
        "layout": layout,
        "pattern": pattern,
        "dpi_handling": {"flag": dpi, "order": ["flag", "metadata", "name", "default"]},
    }

    def finalize() -> dict[str, Any]:
        return {
            "counts": {"skipped": len(reader.skipped.files), "ignored": reader.skipped.ignored},
            "skipped": [{"file": f, "reason": r} for f, r in reader.skipped.files],
            "dpi_handling": {
                **meta["dpi_handling"],
                "sources": dict(sorted(reader.dpi_sources.items())),
            },
        }

    result = write_shards(
        reader, out_dir, records_per_shard, meta, fp, on_record, finalize, encoding,
        force=force, inputs=[input_dir],
    )
    return result, reader
