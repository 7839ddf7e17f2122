"""Module 1 speed on this machine: forward and forward+backward per pair, with XLA's FLOP count.

Run:  UV_PROJECT_ENVIRONMENT=.venvs/ifvit-core uv run --exact --package ifvit-core \
        python benchmarks/bench_core.py [--presets small,paper] [--size 128] [--batch 4]
      (`--smoke`: the `tiny` preset at 64x64, batch 1, one timed call: checks that it runs.)

Prints one row per (preset, pass): pairs/s, ms/pair, GFLOP/pair (XLA cost analysis of the compiled
program) and achieved GFLOP/s. 'forward' is coarse-only Module 1 inference (backbone without the 1/2
FPN branch + transformer + dual-softmax matching); 'forward+fine' adds the LoFTR fine stage;
'fwd+bwd' is the Module 1 training computation (L_D loss and its gradient, BatchNorm in train mode).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core import config, losses
from ifvit_core.loftr import LoFTR


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _time(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def bench(preset: str, size: int, batch: int, repeats: int) -> list[tuple]:
    cfg = config.get_preset(preset)
    model = LoFTR(cfg.loftr, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.random((batch, size, size, 1)), jnp.float32)
    x1 = jnp.asarray(rng.random((batch, size, size, 1)), jnp.float32)
    l_len = (size // 8) ** 2
    gt_i = jnp.tile(jnp.arange(l_len, dtype=jnp.int32)[None], (batch, 1))
    gt_valid = jnp.ones((batch, l_len), bool)

    def forward(state, a, b, fine):
        m = nnx.merge(graphdef, state)
        m.eval()
        out = m(a, b, fine=fine)
        return out["conf_matrix"], out["valid"], out.get("mkpts1_f", out["mkpts1_c"])

    def fwd_bwd(state, a, b):
        m = nnx.merge(graphdef, state)
        m.train()

        def loss_fn(model):
            out = model(a, b, fine=False)
            loss, _ = losses.dense_loss(out["conf_matrix"], gt_i, gt_i, gt_valid)
            return loss

        loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, nnx.Param))(m)
        return loss, grads, nnx.state(m, nnx.BatchStat)

    rows = []
    cases = [
        ("forward", jax.jit(lambda s, a, b: forward(s, a, b, False))),
        ("forward+fine", jax.jit(lambda s, a, b: forward(s, a, b, True))),
        ("fwd+bwd", jax.jit(fwd_bwd)),
    ]
    for name, fn in cases:
        t0 = time.perf_counter()
        compiled = fn.lower(state, x0, x1).compile()
        compile_s = time.perf_counter() - t0
        sec = _time(compiled, (state, x0, x1), repeats)
        gflop = _flops(compiled) / 1e9 / batch
        rows.append((preset, name, batch, batch / sec, 1e3 * sec / batch, gflop,
                     gflop * batch / sec, compile_s))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="small,paper")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny preset, 64x64, batch 1, one call: a seconds-long check that it runs")
    args = ap.parse_args()
    if args.smoke:
        args.presets, args.size, args.batch, args.repeats = "tiny", 64, 1, 1
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} x{jax.device_count()}, "
          f"{args.size}x{args.size} pairs, batch {args.batch}, best of {args.repeats}")
    header = ("preset", "pass", "batch", "pairs/s", "ms/pair", "GFLOP/pair", "GFLOP/s", "compile s")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for p in args.presets.split(","):
        for r in bench(p.strip(), args.size, args.batch, args.repeats):
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.1f} | {r[5]:.2f} | {r[6]:.1f} "
                  f"| {r[7]:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
