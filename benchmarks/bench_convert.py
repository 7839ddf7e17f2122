"""Conversion cost and converted-model speed: read + map + write a LoFTR checkpoint, load it back
without torch, and full LoFTR inference of the converted JAX model vs kornia's PyTorch LoFTR.

Run:  UV_PROJECT_ENVIRONMENT=.venvs/ifvit-convert uv run --exact --package ifvit-convert \
        python benchmarks/bench_convert.py [--ckpt outdoor_ds.ckpt] [--size 128] [--batch 1]
      (`--smoke`: random `tiny`-preset weights, 64x64, one timed call: checks that it runs.)

Without --ckpt, a random-weight kornia LoFTR is saved in LoFTR's Lightning layout and converted.
Prints seconds per step and pairs/s; the parity numbers themselves are in
packages/ifvit-convert/tests/test_parity.py and `ifvit convert --verify`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _best(fn, repeats: int) -> float:
    fn()  # warm-up (and jit compile)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    """Runs the benchmark and prints one line per measurement."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--ckpt", type=Path, default=None, help="LoFTR checkpoint (default: random weights)"
    )
    ap.add_argument("--size", type=int, default=128, help="image side, multiple of 8")
    ap.add_argument("--batch", type=int, default=1, help="pairs per call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--preset", default="paper", choices=("tiny", "small", "paper"),
                    help="the checkpoint's dimensions (outdoor_ds.ckpt: paper)")
    ap.add_argument("--smoke", action="store_true",
                    help="random tiny-preset weights, 64x64, one call: checks that it runs")
    args = ap.parse_args()
    if args.smoke:
        args.ckpt, args.preset, args.size, args.batch, args.repeats = None, "tiny", 64, 1, 1

    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    """The measurements, with the written files in `tmp`."""
    import jax
    import torch
    from flax import nnx

    from ifvit_convert import load_converted, load_loftr
    from ifvit_convert.checkpoint import read_checkpoint
    from ifvit_convert.convert import convert_file
    from ifvit_convert.verify import build_reference, random_pair
    from ifvit_core import config

    if args.smoke:
        torch.set_num_threads(1)  # tiny tensors: more threads only contend on a loaded machine
    cfg = config.get_preset(args.preset).loftr
    ckpt = args.ckpt
    if ckpt is None:
        torch.manual_seed(0)
        ref = build_reference(cfg)
        ckpt = tmp / "outdoor_ds.ckpt"
        state = {f"matcher.{k}": v for k, v in ref.state_dict().items()}
        torch.save({"state_dict": state, "epoch": 0}, ckpt)
    out = tmp / "loftr.safetensors"

    t = time.perf_counter()
    read_checkpoint(ckpt)
    print(f"read checkpoint (torch.load weights_only)  {time.perf_counter() - t:7.2f} s")
    t = time.perf_counter()
    conv, written = convert_file(ckpt, out, preset=args.preset)
    print(f"convert_file (read+map+check+write)        {time.perf_counter() - t:7.2f} s")
    t = time.perf_counter()
    load_converted(written)
    print(f"load_converted (torch-free)                 {time.perf_counter() - t:7.2f} s")
    t = time.perf_counter()
    model, meta = load_loftr(written)
    print(f"load_loftr (build + strict load)            {time.perf_counter() - t:7.2f} s")

    reference = build_reference(cfg, conv.source.tensors)
    img0, img1 = random_pair(args.batch, args.size, args.size)

    @nnx.jit
    def forward(m, a, b):
        out = m(a, b)
        return out["conf_matrix"], out["mkpts1_f"]

    def run_jax() -> None:
        jax.block_until_ready(forward(model, img0, img1))

    t0 = torch.from_numpy(np.ascontiguousarray(img0.transpose(0, 3, 1, 2)))
    t1 = torch.from_numpy(np.ascontiguousarray(img1.transpose(0, 3, 1, 2)))

    def run_torch() -> None:
        with torch.no_grad():
            reference({"image0": t0, "image1": t1})

    for name, fn in (("JAX (converted)", run_jax), ("PyTorch (kornia)", run_torch)):
        sec = _best(fn, args.repeats)
        print(
            f"{name:<18} {args.size}x{args.size} B={args.batch}: {sec * 1e3:8.1f} ms/call  "
            f"{args.batch / sec:6.2f} pairs/s"
        )


if __name__ == "__main__":
    main()
