"""1:1 verification speed: the whole IFViT pair path (Module 1 -> RANSAC -> Module 2 -> score).

Run:  UV_PROJECT_ENVIRONMENT=.venvs/ifvit-train uv run --exact --package ifvit-train \
        python benchmarks/bench_verify.py [--presets small,paper] [--sizes 128,256,384] [--batch 8]
      (`--smoke`: the `tiny` preset at 64x64, batch 1, one timed call: checks that it runs.)

Prints, per (preset, input side): latency of one pair (batch 1) and throughput at --batch pairs per
call, both the median of --repeats timed calls after a warm-up (compilation excluded), and the ratio
to the paper's reported ≈463 ms per pair (IFViT, TIFS 2024, on a GPU). 128 is the window of the
demo's model; 256 is the shipped model's window for an FVC2002 DB1 print (its windows grow with the
print: 388×374 px at 500 ppi, downscaled by 1.6, rounded up to a multiple of 64); 384 is about that
print at full resolution. Weights are random (speed does not depend on them); the fine stage is off,
as in every shipped bundle whose fine stage was not trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core import config
from ifvit_core.ifvit import Matcher, verify_pairs
from ifvit_core.loftr import LoFTR

PAPER_MS_PER_PAIR = 463.0


def _median_seconds(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile + warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def bench(preset: str, side: int, batch: int, repeats: int) -> dict[str, float]:
    cfg = config.get_preset(preset)
    fine = dataclasses.replace(cfg.loftr.fine, enabled=False)
    cfg = cfg.replace(image_size=side, loftr=dataclasses.replace(cfg.loftr, fine=fine))
    m1, m2 = LoFTR(cfg.loftr, rngs=nnx.Rngs(0)), Matcher(cfg, rngs=nnx.Rngs(1))
    m1.eval()
    m2.eval()

    @nnx.jit
    def score(m1, m2, key, i0, i1, k0, k1):
        return verify_pairs(cfg, m1, m2, key, i0, i1, k0, k1)["score"]

    rng = np.random.default_rng(0)
    out = {}
    for name, b in (("latency", 1), ("batched", batch)):
        imgs = jnp.asarray(rng.uniform(0, 1, (2, b, side, side, 1)).astype(np.float32))
        mask = jnp.ones((b, side, side), bool)
        sec = _median_seconds(score, (m1, m2, jax.random.key(0), imgs[0], imgs[1], mask, mask),
                              repeats)
        out[name] = sec * 1e3 / b  # ms per pair
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default="small,paper")
    ap.add_argument("--sizes", default="128,256,384")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny preset, 64x64, batch 1, one call: a seconds-long check that it runs")
    a = ap.parse_args()
    if a.smoke:  # batch 1: the 'batched' column reuses the latency program (one compilation)
        a.presets, a.sizes, a.batch, a.repeats = "tiny", "64", 1, 1
    print(f"devices: {jax.devices()}; paper: {PAPER_MS_PER_PAIR:.0f} ms per pair (GPU)")
    print(f"{'preset':<7} {'side':>5} {'batch-1 ms/pair':>16} {f'batch-{a.batch} ms/pair':>16} "
          f"{'pairs/s':>8} {'paper/ours (b1)':>16}")
    for preset in a.presets.split(","):
        for side in (int(s) for s in a.sizes.split(",")):
            r = bench(preset, side, a.batch, a.repeats)
            print(f"{preset:<7} {side:>5} {r['latency']:>16.1f} {r['batched']:>16.1f} "
                  f"{1e3 / r['batched']:>8.1f} {PAPER_MS_PER_PAIR / r['latency']:>15.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
