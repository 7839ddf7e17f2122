"""Benchmark of the synthetic fingerprint generator (ifvit_data.synth).

Run: UV_PROJECT_ENVIRONMENT=.venvs/ifvit-data uv run --exact --package ifvit-data \
         python benchmarks/bench_synth.py [--fingers 100] [--impressions 8] [--workers N]

Prints single-process throughput of masters and impressions, and the wall time of writing a full
FVC-style dataset (PNG + manifest) with a process pool, plus its CPU seconds: on a shared machine
the wall time depends on the other jobs, the CPU time divided by the workers does not.
`--smoke`: 2 fingers x 2 impressions, 1 master sampled, 1 worker: checks that it runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from ifvit_data.synth import SynthConfig, generate_dataset, generate_master, render_impression


def main() -> None:
    """Measure and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fingers", type=int, default=100)
    ap.add_argument("--impressions", type=int, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sample", type=int, default=6, help="masters for the single-process rates")
    ap.add_argument("--smoke", action="store_true",
                    help="2 fingers x 2 impressions, 1 sample, 1 worker: checks that it runs")
    args = ap.parse_args()
    if args.smoke:
        args.fingers, args.impressions, args.sample, args.workers = 2, 2, 1, 1
    cfg = SynthConfig(size=(300, 300))

    t0 = time.perf_counter()
    masters = [generate_master(0, 1000 + f, cfg) for f in range(args.sample)]
    t_master = (time.perf_counter() - t0) / args.sample
    t0 = time.perf_counter()
    n_imp = 0
    for f, m in enumerate(masters):
        for k in range(1, args.impressions + 1):
            render_impression(m, 0, 1000 + f, k, cfg)
            n_imp += 1
    t_imp = (time.perf_counter() - t0) / n_imp

    def cpu() -> float:  # user + system seconds of this process and its finished workers
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), cpu()
        generate_dataset(tmp, args.fingers, args.impressions, 0, cfg, workers=args.workers)
        total, total_cpu = time.perf_counter() - t0, cpu() - c0

    n = args.fingers * args.impressions
    rows = [
        ("masters/s (1 process)", f"{1 / t_master:.2f}"),
        ("impressions/s (1 process)", f"{1 / t_imp:.1f}"),
        (f"dataset {args.fingers}x{args.impressions} @300x300 total s", f"{total:.1f}"),
        ("dataset images/s", f"{n / total:.1f}"),
        ("dataset CPU s (all processes)", f"{total_cpu:.1f}"),
        (f"  / {args.workers} workers (wall on idle cores)", f"{total_cpu / args.workers:.1f}"),
        ("workers", str(args.workers)),
        ("load average (1 min) at the end", f"{os.getloadavg()[0]:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}}  value")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
