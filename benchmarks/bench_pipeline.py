"""Module-1 input pipeline throughput (pairs/s per core) at 128x128 and 320x320, all augmentations.

Run:
  UV_PROJECT_ENVIRONMENT=.venvs/ifvit-data uv run --exact --package ifvit-data python
  benchmarks/bench_pipeline.py

Prints one row per configuration:
  transform  - `Module1Transform` on decoded in-memory records, one thread (crop around the
               foreground, corruption, rotation, masks, exact GT): the per-core cost of a pair.
  +decode    - the Grain pipeline from ArrayRecord shards (record decode + transform + batch 32),
               one reader thread, for PNG and raw record encodings.
  grain x2   - the same with 2 reader threads (this machine has 2 cores shared with others: wall
               numbers depend on the load, CPU-time numbers much less).
"pairs/CPU-s" divides by the process CPU time (all threads), so it is a per-core rate even on a busy
machine; "pairs/s" is wall-clock. Uses the real FVC2002 DB1_B prints when present, else synthetic
ridge images of the same size.

`--smoke`: 16 synthetic images, 128x128 only, 0.05 s per row: checks that every row still runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ifvit_data.pipeline import Module1Transform, PairConfig, make_iterator, module1_dataset
from ifvit_data.preprocess import CropConfig
from ifvit_data.shards import RecordSource, write_shards

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/real/fvc2002_db1_b"


def _records(real: bool = True, n: int = 80) -> tuple[list[dict[str, Any]], str]:
    """The benchmark's prints: FVC2002 DB1_B if `real` and present, else `n` synthetic ones."""
    if real and REAL.is_dir():
        from ifvit_data.readers import DatasetReader

        return list(DatasetReader(REAL, "fvc")), "FVC2002 DB1_B (80 real prints, 388x374)"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:374, 0:388]
    recs = []
    for k in range(n):
        r = np.hypot(x - 194 + rng.uniform(-20, 20), y - 187)
        img = np.where(
            r < 160, 127 + 100 * np.cos(2 * np.pi * (r + 5 * np.sin(x / 30 + k)) / 9), 255
        )
        recs.append(
            {
                "image": img.astype(np.uint8),
                "subject": str(k // 8),
                "finger": k // 8,
                "impression": k % 8 + 1,
                "dpi": 500.0,
                "source": f"synthetic/{k}",
            }
        )
    return recs, f"synthetic ridges ({n} images, 388x374)"


def _time(fn: Any, min_seconds: float) -> tuple[float, float, int]:
    """Runs `fn() -> n items` until `min_seconds` of wall time; returns (wall, cpu, items)."""
    w0, c0, n = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - w0 < min_seconds:
        n += fn()
    return time.perf_counter() - w0, time.process_time() - c0, n


def bench_transform(
    records: list[dict[str, Any]], cfg: PairConfig, seconds: float
) -> tuple[float, float, int]:
    t = Module1Transform(cfg)
    t.bank()  # built once per worker; not part of the per-pair cost
    rng = np.random.default_rng(0)

    def run() -> int:
        for r in records:
            t.random_map(r, rng)
        return len(records)

    run()  # warm-up
    return _time(run, seconds)


def bench_grain(
    src: Any, cfg: PairConfig, threads: int, seconds: float
) -> tuple[float, float, int]:
    ds = module1_dataset(src, cfg, seed=0, batch_size=32, num_epochs=None)
    it = make_iterator(ds, num_threads=threads, prefetch=64)
    next(it)  # warm-up: threads start, bank built

    def run() -> int:
        b = next(it)
        return len(b["image0"])

    out = _time(run, seconds)
    it.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    parser.add_argument("--sizes", default="128,320", help="window sides, comma-separated")
    parser.add_argument("--smoke", action="store_true",
                        help="16 synthetic images, 128 only, 0.05 s per row: checks that it runs")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.sizes = 0.05, "128"
    cv2.setNumThreads(1)  # per-core numbers: parallelism comes from Grain's reader threads
    records, what = _records(real=not args.smoke, n=16 if args.smoke else 80)
    print(f"data: {what}; cv2 threads: 1; python {sys.version.split()[0]}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        srcs = {}
        for enc in ("png", "raw"):
            write_shards(records, Path(tmp) / enc, records_per_shard=40, encoding=enc)
            srcs[enc] = RecordSource(Path(tmp) / enc)
        for size in (int(v) for v in args.sizes.split(",")):
            cfg = PairConfig(crop=CropConfig((size, size), jitter=8.0))
            fresh = PairConfig(crop=cfg.crop, noise_bank=0)
            rows.append(
                (size, "transform (fresh Perlin)", *bench_transform(records, fresh, args.seconds))
            )
            rows.append(
                (size, "transform (noise bank)", *bench_transform(records, cfg, args.seconds))
            )
            for enc in ("raw", "png"):
                rows.append(
                    (
                        size,
                        f"+decode {enc}, grain x1",
                        *bench_grain(srcs[enc], cfg, 1, args.seconds),
                    )
                )
            rows.append(
                (size, "+decode raw, grain x2", *bench_grain(srcs["raw"], cfg, 2, args.seconds))
            )
    print(
        f"{'size':>7} | {'stage':<26} | {'pairs/CPU-s':>11} | {'pairs/s':>8} | "
        f"{'ms/pair (CPU)':>13}"
    )
    print("-" * 78)
    for size, stage, wall, cpu, n in rows:
        print(
            f"{size:>3}x{size:<3} | {stage:<26} | {n / cpu:>11.0f} | {n / wall:>8.0f} | "
            f"{1e3 * cpu / n:>13.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
