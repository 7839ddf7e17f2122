"""Module 1 on this machine, JAX vs PyTorch side by side: train step and inference, same batch, same
weights.

Run (torch and kornia are never dependencies of a runtime member: this is ifvit-convert's test
environment, whose dev group holds torch, kornia and ifvit-train):

  UV_PROJECT_ENVIRONMENT=.venvs/ifvit-convert uv run --locked --exact --package ifvit-convert \
      python benchmarks/bench_vs_torch.py [--compile]

`--smoke`: the `tiny` preset at 64x64, batch 1, one round of one call, small peak matmuls: a check
that every case (ours and kornia's) still builds and runs, not a measurement.

One process measures, interleaved round by round so that a shared machine's load hits both sides
alike:
  * peak     - this machine's JAX fp32 matmul rate (jitted 1024^2 / 2048^2 matmuls, best of many);
  * train    - one Module 1 training step as a user runs it:
               `ifvit_train.training.module1.make_dense_step` (forward, L_D, backward, global-norm
               clip and the AdamW update; BatchNorm in train mode) vs kornia's LoFTR modules doing
               the same computation (coarse backbone, position encoding, coarse transformer,
               dual-softmax, the same NLL loss, clip, `torch.optim.AdamW`);
  * infer-c  - coarse-only inference (backbone without the 1/2 FPN branch, transformer, matching);
  * infer-f  - full inference with the fine stage: ours `LoFTR.__call__(fine=True)` vs kornia's
               `LoFTR.forward` (which refines only its kept matches; ours a fixed top-k, see
               `FineConfig.max_matches`).
Both models hold the same (random, seeded) weights: kornia's are converted with ifvit-convert's name
map, so both find the same matches. The pair is an image and a noisy copy of it, and the match
threshold defaults to 0 (every mutual nearest neighbour off the border): a random-weight LoFTR is
far less confident than a trained one, and this gives kornia's fine stage a realistic number of
matches to refine (printed; a trained Module 1 keeps ~120 of the 144 possible per 128x128 pair).

Per row: pairs/s (median over rounds of the best call of each round), GFLOP/pair (ours: XLA cost
analysis of the compiled program; kornia: torch's FLOP counter, matmuls and convolutions only),
GFLOP/s, % of the JAX peak, and ours / the faster PyTorch variant (eager or torch.compile), computed
per round and reported as the median. On a shared machine wall time depends on the other jobs, and
PyTorch's OpenMP threads suffer more from oversubscription than XLA's pool, so the last columns add
the process CPU time per call (both threads; its median): GFLOP per CPU-second times the core
count estimates the rate on an idle machine, and its ratio is a load-robust (if rough: spinning
threads count too) second opinion. `--scaling` adds time and compiled memory per pair of our
inference at 128^2, 256^2, 320^2 and a native FVC size.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_convert.convert import map_state_dict
from ifvit_convert.verify import build_reference, random_pair
from ifvit_core import config
from ifvit_core.loftr import LoFTR
from ifvit_train.serving.mesh import make_mesh, shard_batch
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.module1 import init_dense_state, make_dense_step

STRIDE = 8


# ------------------------------------------------------------------------------------------------
# measurement helpers
# ------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One timed callable: `run()` does one batch and blocks until its results exist."""

    name: str
    run: Callable[[], Any]
    pairs: int
    gflop: float = float("nan")  # per call
    times: list[float] = field(default_factory=list)  # best call of each round (s)
    # process CPU seconds of every call (all threads)
    cpu: list[float] = field(default_factory=list)

    @property
    def sec(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_sec(self) -> float:
        return statistics.median(self.cpu)


def _cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _xla_flops(compiled: Any) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0]
    return float(cost.get("flops", float("nan"))) if cost else float("nan")


PEAK_SIZES = (1024, 2048)


def jax_peak(reps: int, sizes: tuple[int, ...] = PEAK_SIZES) -> float:
    """Best fp32 GFLOP/s of jitted square matmuls of each side in `sizes` over `reps` calls each."""
    best = 0.0
    rng = np.random.default_rng(0)
    for n in sizes:
        a = jnp.asarray(rng.random((n, n)), jnp.float32)
        f = jax.jit(lambda x, y: x @ y)
        jax.block_until_ready(f(a, a))
        for _ in range(reps if n == 1024 else max(reps // 4, 3)):
            t = time.perf_counter()
            jax.block_until_ready(f(a, a))
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def torch_peak(torch: Any, reps: int, sizes: tuple[int, ...] = PEAK_SIZES) -> float:
    best = 0.0
    for n in sizes:
        a = torch.rand(n, n)
        torch.mm(a, a)
        for _ in range(reps if n == 1024 else max(reps // 4, 3)):
            t = time.perf_counter()
            torch.mm(a, a)
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


# ------------------------------------------------------------------------------------------------
# the batch: a pair with a known one-cell shift, and its exact coarse ground truth
# ------------------------------------------------------------------------------------------------


def make_batch(batch: int, h: int, w: int, seed: int = 0,
               shift: tuple[int, int] = (0, 0)) -> dict[str, np.ndarray]:
    """Images [B, H, W, 1] (image 1 = image 0 moved by `shift` px, whole cells, plus noise) and GT
    [B, L].

    The default is an unshifted noisy copy: with random weights LoFTR matches mostly by position,
    so that is the pair on which the coarse matcher keeps a realistic number of matches for the
    fine stage to refine (see the module docstring).
    """
    dy, dx = shift
    img0, img1 = random_pair(batch, h, w, seed, shift=(dy, dx), noise=0.05)
    hc, wc = h // STRIDE, w // STRIDE
    r, c = np.divmod(np.arange(hc * wc), wc)
    r1, c1 = r - dy // STRIDE, c - dx // STRIDE  # image-1 pixel p shows image-0 pixel p + shift
    ok = (r1 >= 0) & (c1 >= 0) & (r1 < hc) & (c1 < wc)
    gt_j = np.where(ok, r1 * wc + c1, 0).astype(np.int32)
    rep = lambda a: np.repeat(a[None], batch, axis=0)  # noqa: E731
    return {"image0": img0, "image1": img1, "gt_i": rep(np.arange(hc * wc, dtype=np.int32)),
            "gt_j": rep(gt_j), "gt_valid": rep(ok)}


# ------------------------------------------------------------------------------------------------
# ours
# ------------------------------------------------------------------------------------------------


def ours_train(cfg: config.IFViTConfig, flat: dict, batch: dict) -> Case:
    mesh = make_mesh(devices=jax.devices()[:1])
    tc = TrainConfig()  # the trainer's defaults: AdamW, warm-up, clip 0.5, float32 compute
    graphdef, state = init_dense_state(cfg, tc, mesh, init_flat=flat)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    b = shard_batch(batch, mesh)
    gflop = _xla_flops(step.lower(state, b).compile()) / 1e9
    box = {"state": state}

    def run() -> None:
        box["state"], metrics = step(box["state"], b)
        jax.block_until_ready(metrics)

    run()
    return Case("train", run, len(batch["image0"]), gflop)


def ours_infer(cfg: config.IFViTConfig, flat: dict, batch: dict, fine: bool) -> tuple[Case, Any]:
    """Jitted `LoFTR.__call__` in eval mode; returns the case and one output (numpy)."""
    from ifvit_core.params import load_flat_state

    model = nnx.eval_shape(lambda: LoFTR(cfg.loftr, rngs=nnx.Rngs(0)))
    load_flat_state(model, flat)
    model.eval()
    graphdef, state = nnx.split(model)

    def fwd(state, a, b):
        out = nnx.merge(graphdef, state)(a, b, fine=fine)
        return {k: v for k, v in out.items() if k not in ("hw0_c", "hw1_c")}

    a, b = jnp.asarray(batch["image0"]), jnp.asarray(batch["image1"])
    compiled = jax.jit(fwd).lower(state, a, b).compile()
    out = jax.tree.map(np.asarray, compiled(state, a, b))
    case = Case("infer-f" if fine else "infer-c",
                lambda: jax.block_until_ready(compiled(state, a, b)),
                len(a), _xla_flops(compiled) / 1e9)
    return case, out


def ours_memory(model: LoFTR, size: tuple[int, int], batch: int,
                fine: bool) -> tuple[float, float, float]:
    """(best wall s, median CPU s per call, compiled bytes of temporaries + outputs) of our
    inference."""
    graphdef, state = nnx.split(model)

    def fwd(state, a, b):
        out = nnx.merge(graphdef, state)(a, b, fine=fine)
        return {k: v for k, v in out.items() if k not in ("hw0_c", "hw1_c")}

    d = make_batch(batch, *size)
    a, b = jnp.asarray(d["image0"]), jnp.asarray(d["image1"])
    compiled = jax.jit(fwd).lower(state, a, b).compile()
    mem = compiled.memory_analysis()
    total = mem.temp_size_in_bytes + mem.output_size_in_bytes  # weights (arguments) excluded
    jax.block_until_ready(compiled(state, a, b))
    best, cpu = float("inf"), []
    for _ in range(3):
        c0, t = _cpu_now(), time.perf_counter()
        jax.block_until_ready(compiled(state, a, b))
        best = min(best, time.perf_counter() - t)
        cpu.append(_cpu_now() - c0)
    return best, statistics.median(cpu), float(total)


# ------------------------------------------------------------------------------------------------
# kornia (PyTorch)
# ------------------------------------------------------------------------------------------------


class KorniaSide:
    """kornia's LoFTR with the same dimensions; the coarse train step and inference built from its
    modules."""

    def __init__(self, torch: Any, cfg: config.IFViTConfig, batch: dict, seed: int = 0):
        self.torch = torch
        torch.manual_seed(seed)
        self.model = build_reference(cfg.loftr)  # kornia LoFTR(pretrained=None), eval mode
        self.cfg = cfg
        nchw = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # noqa: E731
        self.img0, self.img1 = nchw(batch["image0"]), nchw(batch["image1"])
        self.gt = {k: torch.from_numpy(np.asarray(batch[k])) for k in ("gt_i", "gt_j", "gt_valid")}
        self.gt["gt_i"], self.gt["gt_j"] = self.gt["gt_i"].long(), self.gt["gt_j"].long()

    def state_dict_numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy() for k, v in self.model.state_dict().items()}

    # -- building blocks -------------------------------------------------------------------------

    def coarse_tokens(self, images: Any) -> Any:
        """Backbone up to the 1/8 output conv (no 1/2 FPN branch) + PE: [2B, L, C] tokens."""
        bb = self.model.backbone
        x = bb.relu(bb.bn1(bb.conv1(images)))
        x = bb.layer3_outconv(bb.layer3(bb.layer2(bb.layer1(x))))
        x = self.model.pos_encoding(x)
        n, c = x.shape[:2]
        return x.permute(0, 2, 3, 1).reshape(n, -1, c)

    def coarse_conf(self) -> Any:
        """Dual-softmax confidence [B, L, S] of the coarse transformer outputs."""
        torch = self.torch
        n = self.img0.shape[0]
        t = self.coarse_tokens(torch.cat([self.img0, self.img1]))
        f0, f1 = self.model.loftr_coarse(t[:n], t[n:], None, None)
        c = f0.shape[-1]
        sim = torch.einsum("nlc,nsc->nls", f0 / c**0.5,
                           f1 / c**0.5) / self.cfg.loftr.matching.temperature
        return torch.softmax(sim, 1) * torch.softmax(sim, 2)

    def loss(self) -> Any:
        """The same L_D as `ifvit_core.losses.dense_loss` (NLL form)."""
        torch = self.torch
        conf = self.coarse_conf()
        b, l_len, s_len = conf.shape
        idx = (self.gt["gt_i"] * s_len + self.gt["gt_j"]).clamp(0, l_len * s_len - 1)
        p = conf.reshape(b, -1).gather(1, idx).clamp(1e-6, 1 - 1e-6)
        valid = self.gt["gt_valid"].float()
        return -(torch.log(p) * valid).sum() / valid.sum().clamp(min=1.0)

    # -- cases -----------------------------------------------------------------------------------

    def train_case(self, compiled: bool) -> Case:
        torch = self.torch
        m = self.model
        m.train()
        trunk = [m.backbone.conv1, m.backbone.bn1, m.backbone.layer1, m.backbone.layer2,
                 m.backbone.layer3, m.backbone.layer3_outconv, m.loftr_coarse]
        params = [p for mod in trunk for p in mod.parameters()]
        tc = TrainConfig()  # the same learning rate, weight decay and clip as ours
        opt = torch.optim.AdamW(params, lr=tc.learning_rate, weight_decay=tc.weight_decay,
                                fused=True)
        loss_fn = torch.compile(self.loss) if compiled else self.loss

        def run() -> None:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            opt.step()

        t0 = time.perf_counter()
        run()  # warm-up (and compilation)
        print(f"  kornia train{' compile' if compiled else ''}: first call "
              f"{time.perf_counter() - t0:.1f} s",
              file=sys.stderr, flush=True)
        m.eval()
        name = "train"
        case = Case(name, self._in_mode(run, train=True), self.img0.shape[0])
        case.gflop = self._count(run)
        return case

    def _in_mode(self, fn: Callable[[], Any], train: bool) -> Callable[[], Any]:
        def run() -> Any:
            self.model.train(train)
            if train:
                return fn()
            with self.torch.inference_mode():
                return fn()

        return run

    def infer_case(self, fine: bool, compiled: bool) -> tuple[Case, dict]:
        torch = self.torch
        m = self.model
        m.eval()
        if fine:
            fwd = lambda a, b: m({"image0": a, "image1": b})  # noqa: E731
        else:
            def fwd(a, b):
                n = a.shape[0]
                t = self.coarse_tokens(torch.cat([a, b]))
                f0, f1 = m.loftr_coarse(t[:n], t[n:], None, None)
                h, w = a.shape[2] // STRIDE, a.shape[3] // STRIDE
                data = {"bs": n, "stride_c": STRIDE, "stride_f": 2,
                        "hw0_c": (h, w), "hw1_c": (h, w),
                        "hw0_f": (4 * h, 4 * w), "hw1_f": (4 * h, 4 * w)}
                m.coarse_matching(f0, f1, data)
                return data
        fn = torch.compile(fwd) if compiled else fwd
        run = self._in_mode(lambda: fn(self.img0, self.img1), train=False)
        t0 = time.perf_counter()
        out = run()
        print(f"  kornia infer-{'f' if fine else 'c'}{' compile' if compiled else ''}: first call "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        case = Case("infer-f" if fine else "infer-c", run, self.img0.shape[0])
        case.gflop = self._count(run)
        return case, out

    def _count(self, run: Callable[[], Any]) -> float:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as fc:
            run()
        return fc.get_total_flops() / 1e9


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------


def bench_preset(args: argparse.Namespace, torch: Any, preset: str, peak_box: list) -> list[dict]:
    cfg = config.get_preset(preset)
    m = cfg.loftr.matching
    cfg = cfg.replace(loftr=_replace(cfg.loftr, matching=_replace(m, threshold=args.threshold),
                                     fine=_replace(cfg.loftr.fine, max_matches=args.max_matches)))
    batch = make_batch(args.batch, args.size, args.size)
    ks = KorniaSide(torch, cfg, batch)
    flat = map_state_dict(ks.state_dict_numpy(), cfg.loftr, source="kornia")

    print(f"[{preset}] compiling ours ...", file=sys.stderr, flush=True)
    ours = {"train": ours_train(cfg, flat, batch)}
    ours["infer-c"], _ = ours_infer(cfg, flat, batch, fine=False)
    ours["infer-f"], out_f = ours_infer(cfg, flat, batch, fine=True)
    variants = [False, True] if args.compile else [False]
    theirs: dict[tuple[str, bool], Case] = {}
    n_torch_matches = 0
    for compiled in variants:
        theirs[("train", compiled)] = ks.train_case(compiled)
        theirs[("infer-c", compiled)], _ = ks.infer_case(False, compiled)
        theirs[("infer-f", compiled)], data = ks.infer_case(True, compiled)
        n_torch_matches = max(n_torch_matches, int(data["keypoints0"].shape[0]))
    n_ours = int(out_f["valid"].sum())
    n_fine = int(out_f["fine_valid"].sum()) if "fine_valid" in out_f else n_ours
    print(f"[{preset}] matches per batch: ours {n_ours} (refined {n_fine}), kornia "
          f"{n_torch_matches}",
          file=sys.stderr, flush=True)

    ratios: dict[str, list[float]] = {k: [] for k in ours}
    for r in range(args.rounds):
        peak_box.append(jax_peak(args.peak_reps, args.peak_sizes) if r % 2 == 0 else float("nan"))
        for name, case in ours.items():
            # ours and each PyTorch variant alternate call by call, so a load spike hits all alike
            group = [case] + [theirs[(name, compiled)] for compiled in variants]
            best = [float("inf")] * len(group)
            for _ in range(args.calls):
                for n, c in enumerate(group):
                    c0, t = _cpu_now(), time.perf_counter()
                    c.run()
                    best[n] = min(best[n], time.perf_counter() - t)
                    c.cpu.append(_cpu_now() - c0)
            for n, c in enumerate(group):
                c.times.append(best[n])
            ratios[name].append(min(best[1:]) / best[0])
        print(f"[{preset}] round {r + 1}/{args.rounds} (load {os.getloadavg()[0]:.1f}): "
              + ", ".join(f"{k} {v[-1]:.2f}x" for k, v in ratios.items()), file=sys.stderr,
              flush=True)

    rows = []
    for name, case in ours.items():
        rows.append({"preset": preset, "pass": name, "who": "ours (JAX)", "case": case,
                     "ratio": statistics.median(ratios[name]),
                     "ratio_range": (min(ratios[name]), max(ratios[name]))})
        for compiled in variants:
            c = theirs[(name, compiled)]
            rows.append({"preset": preset, "pass": name,
                         "who": "kornia " + ("compile" if compiled else "eager"), "case": c})
    rows[-1]["matches"] = (n_ours, n_fine, n_torch_matches)
    return rows


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _replace(obj: Any, **kw: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **kw)


def scaling(args: argparse.Namespace) -> None:
    cfg = config.get_preset("paper")
    sizes = [(128, 128), (256, 256), (320, 320), (376, 392)]  # FVC2002 388x374 padded to x8 (HxW)
    print(f"\nScaling ({cfg.name}, ours, batch {args.scaling_batch}, random weights; memory = "
          "XLA's compiled temporaries + outputs per pair, the 46 MB of weights excluded)")
    print("| H x W | coarse cells L | coarse-only ms/pair | with fine ms/pair | with fine, "
          "CPU ms/pair | CPU us/pair per cell | MB/pair |")
    print("|---|---|---|---|---|---|---|")
    model = LoFTR(cfg.loftr, rngs=nnx.Rngs(0))
    model.eval()
    n = args.scaling_batch
    for h, w in sizes:
        sec_c, _, _ = ours_memory(model, (h, w), n, fine=False)
        sec, cpu, mem = ours_memory(model, (h, w), n, fine=True)
        cells = (h // 8) * (w // 8)
        print(f"| {h} x {w} | {cells} | {1e3 * sec_c / n:.0f} | {1e3 * sec / n:.0f} | "
              f"{1e3 * cpu / n:.0f} | {1e6 * cpu / n / cells:.0f} | {mem / 2**20 / n:.0f} |",
              flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default="small,paper")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    ap.add_argument("--calls", type=int, default=2, help="calls per case per round (best kept)")
    ap.add_argument("--peak-reps", type=int, default=40)
    ap.add_argument("--threshold", type=float, default=0.0,
                    help="coarse match threshold (both sides)")
    ap.add_argument("--max-matches", type=int, default=None,
                    help="our FineConfig.max_matches (default: all that can match)")
    ap.add_argument("--compile", action="store_true",
                    help="also time torch.compile (minutes to compile)")
    ap.add_argument("--scaling", action="store_true",
                    help="add the image-size scaling table (ours)")
    ap.add_argument("--scaling-batch", type=int, default=2)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny preset, 64x64, batch 1, one round of one call: checks that it runs")
    args = ap.parse_args()
    args.peak_sizes = PEAK_SIZES
    if args.smoke:
        args.presets, args.size, args.batch, args.rounds, args.calls = "tiny", 64, 1, 1, 1
        args.threads = 1  # tiny tensors: more threads only contend on a loaded machine
        args.peak_reps, args.peak_sizes, args.compile, args.scaling = 1, (256,), False, False
    if args.size % 8:
        print(f"--size {args.size}: must be a multiple of 8", file=sys.stderr)
        return 2

    import torch

    torch.set_num_threads(args.threads)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; {_cpu_name()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; {jax.local_device_count()} JAX device(s) "
          f"({jax.devices()[0].platform}); jax {jax.__version__}, torch {torch.__version__} "
          f"({args.threads} threads); {args.size}x{args.size}, batch {args.batch}, {args.rounds} "
          f"interleaved rounds, threshold {args.threshold}")
    peaks: list[float] = []
    rows = []
    for p in args.presets.split(","):
        rows += bench_preset(args, torch, p.strip(), peaks)
    peak = max(x for x in peaks if x == x)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"JAX fp32 matmul peak (best of the run): {peak:.0f} GFLOP/s; "
          f"torch matmul peak: {torch_peak(torch, args.peak_reps, args.peak_sizes):.0f} GFLOP/s")
    print("| preset | pass | who | pairs/s | GFLOP/pair | GFLOP/s | % JAX peak | ours / "
          "faster PyTorch | CPU ms/pair | GFLOP per CPU-s x cores | ours / PyTorch by CPU time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ncores = os.cpu_count() or 1
    for r in rows:
        c: Case = r["case"]
        pps = c.pairs / c.sec
        gfs = c.gflop / c.sec
        ratio = (f"**{r['ratio']:.2f}x** ({r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f})"
                 if "ratio" in r else "")
        cpu_pair = c.cpu_sec / c.pairs
        cpu_rate = c.gflop / c.cpu_sec * ncores
        cpu_ratio = ""
        if "ratio" in r:
            others = [x["case"] for x in rows
                      if x["preset"] == r["preset"] and x["pass"] == r["pass"]
                      and "ratio" not in x]
            cpu_ratio = f"{min(o.cpu_sec for o in others) / c.cpu_sec:.2f}x"
        print(f"| {r['preset']} | {r['pass']} | {r['who']} | {pps:.2f} | {c.gflop / c.pairs:.1f} | "
              f"{gfs:.0f} | {100 * gfs / peak:.0f}% | {ratio} | {1e3 * cpu_pair:.0f} | "
              f"{cpu_rate:.0f} ({100 * cpu_rate / peak:.0f}%) | {cpu_ratio} |")
    for r in rows:
        if "matches" in r:
            o, f, t = r["matches"]
            print(f"{r['preset']}: matches per batch of {args.batch}: ours {o} (fine-refined {f}), "
                  f"kornia up to {t} (eager; torch.compile's rounding may keep fewer)")
    if args.scaling:
        scaling(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
