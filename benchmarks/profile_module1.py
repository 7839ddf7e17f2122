"""Where Module 1's time goes: a jax.profiler trace joined with the compiled HLO, grouped by kind of
op.

Run:
  UV_PROJECT_ENVIRONMENT=.venvs/ifvit-train uv run --locked --package ifvit-train \
      python benchmarks/profile_module1.py [--preset paper] [--program train|infer-c|infer-f]
  (`--smoke`: the `tiny` preset at 64x64, batch 1, one traced call: checks that it runs.)

`train` is `ifvit_train.training.module1.make_dense_step` (forward, L_D, backward, AdamW); `infer-c`
/ `infer-f` are `LoFTR.__call__` without / with the fine stage (eval mode). The program is compiled,
run once, then traced for `--steps` calls (perfetto trace, `--out` keeps it with the optimised HLO
text). Each traced XLA op (a thunk: a fusion, a library convolution or matmul, a copy) is matched to
its HLO instruction and grouped as forward / backward (from the `transpose(jvp(...))` op metadata) x
kind (convolution, matmul, transpose/copy, elementwise and reductions). Weight gradients of
convolutions carry no op metadata in XLA's output; they are recognised by their [Cin, kh, kw,
Cout]-shaped result; other ops without metadata (mostly the transposes XLA's layout assignment adds
in front of them) are "unattributed".
Shares are of the summed op time (both threads), per call.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core import config
from ifvit_core.loftr import LoFTR
from ifvit_train.serving.mesh import make_mesh, shard_batch
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.module1 import init_dense_state, make_dense_step

_INSTR = re.compile(r"\s*(?:ROOT )?%(\S+) = (\S+?\])\S* ([\w-]+)\(")


def hlo_index(text: str) -> dict[str, tuple[str, str, str]]:
    """instruction name -> (opcode, result shape, op_name metadata) for every HLO instruction."""
    out = {}
    for line in text.splitlines():
        m = _INSTR.match(line)
        if m:
            meta = re.search(r'op_name="([^"]+)"', line)
            out[m.group(1)] = (m.group(3), m.group(2), meta.group(1) if meta else "")
    return out


def category(name: str, index: dict[str, tuple[str, str, str]]) -> str | None:
    """A readable group for one traced op, or None for runtime bookkeeping."""
    if name not in index:
        skip = ("$", "end: ", "ThreadpoolListener", "Thunk", "PjRt", "Pjit")
        return None if name.startswith(skip) or any(k in name for k in skip[3:]) \
            else "runtime: " + re.sub(r"\.\d+$", "", name)
    opcode, shape, meta = index[name]
    # Ops that XLA's layout passes add (e.g. the transposes feeding weight gradients) carry no
    # metadata.
    direction = "backward" if "transpose(" in meta else ("forward" if meta else "unattributed")
    tail = meta.split("/")[-1]
    if "conv" in tail or opcode == "convolution":
        return f"{direction} convolution"
    if not meta and re.fullmatch(r"f32\[\d+,\d+,\d+,\d+\]", shape) and "fusion" in name:
        dims = [int(d) for d in shape[4:-1].split(",")]
        if dims[1] == dims[2] and dims[1] in (1, 3, 7):
            return "backward convolution (weight gradient)"
    if "dot" in tail or "einsum" in meta or opcode == "dot":
        return f"{direction} matmul"
    if "transpose" in name or "copy" in name:
        return f"{direction} transpose/copy"
    return f"{direction} elementwise/reduce"


def build(program: str, preset: str, size: int, batch: int):
    """(callable running one step and blocking, compiled HLO text)."""
    cfg = config.get_preset(preset)
    rng = np.random.default_rng(0)
    img = rng.random((2, batch, size, size, 1)).astype(np.float32)
    if program == "train":
        mesh = make_mesh(devices=jax.devices()[:1])
        tc = TrainConfig()  # the trainer's defaults: AdamW, warm-up, clip 0.5, float32
        graphdef, state = init_dense_state(cfg, tc, mesh)
        step = make_dense_step(graphdef, cfg, tc, mesh)
        l_len = (size // 8) ** 2
        ids = np.tile(np.arange(l_len, dtype=np.int32), (batch, 1))
        b = shard_batch({"image0": img[0], "image1": img[1], "gt_i": ids, "gt_j": ids,
                         "gt_valid": np.ones((batch, l_len), bool)}, mesh)
        text = step.lower(state, b).compile().as_text()
        box = {"state": state}

        def run() -> None:
            box["state"], metrics = step(box["state"], b)
            jax.block_until_ready(metrics)

        return run, text
    model = LoFTR(cfg.loftr, rngs=nnx.Rngs(0))
    model.eval()
    graphdef, state = nnx.split(model)
    fine = program == "infer-f"

    def fwd(state, a, b):
        out = nnx.merge(graphdef, state)(a, b, fine=fine)
        return {k: v for k, v in out.items() if k not in ("hw0_c", "hw1_c")}

    a, b = jnp.asarray(img[0]), jnp.asarray(img[1])
    compiled = jax.jit(fwd).lower(state, a, b).compile()
    return (lambda: jax.block_until_ready(compiled(state, a, b))), compiled.as_text()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--program", choices=("train", "infer-c", "infer-f"), default="train")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=12, help="also list the N most expensive ops")
    ap.add_argument("--out", type=Path, default=None, help="keep the trace and HLO text here")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny preset, 64x64, batch 1, one traced call: checks that it runs")
    args = ap.parse_args()
    if args.smoke:
        args.preset, args.size, args.batch, args.steps, args.top = "tiny", 64, 1, 1, 3
    if args.size % 8:
        print(f"--size {args.size}: must be a multiple of 8", file=sys.stderr)
        return 2
    run, text = build(args.program, args.preset, args.size, args.batch)
    index = hlo_index(text)
    run()  # warm-up
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        (out / "optimised_hlo.txt").write_text(text)
        with jax.profiler.trace(str(out / "trace"), create_perfetto_trace=True):
            for _ in range(args.steps):
                run()
        trace = next((out / "trace").rglob("*.trace.json.gz"))
        events = json.load(gzip.open(trace))
    events = events["traceEvents"] if isinstance(events, dict) else events
    groups: collections.Counter[str] = collections.Counter()
    ops: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("ph") != "X":
            continue
        cat = category(e["name"], index)
        if cat is None:
            continue
        ms = e.get("dur", 0) / 1e3 / args.steps
        groups[cat] += ms
        ops[e["name"]] += ms
    total = sum(groups.values())
    print(f"{args.preset} {args.program}, {args.size}x{args.size}, batch {args.batch}: "
          f"{total:.0f} ms of op time per call (both threads)")
    print("| group | ms per call | share |\n|---|---|---|")
    for cat, ms in groups.most_common():
        if ms < 5e-4 * total:
            continue
        print(f"| {cat} | {ms:.1f} | {100 * ms / total:.1f}% |")
    print(f"\ntop {args.top} ops:")
    for name, ms in ops.most_common(args.top):
        opcode, shape, meta = index.get(name, ("?", "?", ""))
        print(f"  {ms:8.1f} ms  {name:<30} {shape:<24} {category(name, index)}  {meta[-48:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
