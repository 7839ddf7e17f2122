"""One process of a data-parallel Module 1 run (used by test_multiprocess.py).

usage: python dist_job.py PROCESS_ID NUM_PROCESSES LOCAL_DEVICES PORT OUT.npz [BUG]

Processes join with `jax.distributed.initialize` on localhost (gloo CPU collectives); each feeds
its own slice of every global batch (as Grain does by process index). Process 0 writes OUT.npz:
`losses` [STEPS], the initial parameters (`init:<path>`) and the trained ones (`<path>`).

A single process (NUM_PROCESSES 1) also trains the same global batch on one device and writes it
as `alt:<path>` / `alt:losses`: the same computation with another reduction order, whose distance
from the LOCAL_DEVICES run is the rounding spread the multi-process run is held to.

BUG (tests of the test only) breaks data parallelism on purpose:
  wrong-shard    every process feeds process 0's slice (half the global batch, twice)
  no-allreduce   every process trains on its own devices alone (gradients never summed)
"""

import os
import sys

pid, nproc, ndev = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
port, out = sys.argv[4], sys.argv[5]
bug = sys.argv[6] if len(sys.argv) > 6 else ""
assert bug in ("", "wrong-shard", "no-allreduce"), bug
# This process's device count; other XLA flags (e.g. --xla_cpu_max_isa=AVX2) are kept.
os.environ["XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    + [f"--xla_force_host_platform_device_count={ndev}"])

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
if nproc > 1:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=nproc,
                               process_id=pid)

from ifvit_core import config  # noqa: E402
from ifvit_train.serving.mesh import batch_sharding, make_mesh, shard_batch  # noqa: E402
from ifvit_train.training.config import TrainConfig  # noqa: E402
from ifvit_train.training.module1 import init_dense_state, make_dense_step  # noqa: E402

STEPS = 3


def global_batch(n=8, size=64):
    rng = np.random.default_rng(0)
    img = rng.random((n, size, size, 1)).astype(np.float32)
    l_len = (size // 8) ** 2
    i = np.tile(np.arange(l_len, dtype=np.int32), (n, 1))
    # image1 = image0, every cell matches itself: a loss far from the P clamp (real gradients).
    return {"image0": img, "image1": img.copy(), "gt_i": i, "gt_j": i.copy(),
            "gt_valid": np.ones((n, l_len), bool)}


def flat(params) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return {jax.tree_util.keystr(p): np.array(x.addressable_data(0), copy=True) for p, x in leaves}


def train(mesh, local):
    """STEPS steps from the fixed initialisation -> (initial params, trained params, losses)."""
    cfg = config.tiny()
    tc = TrainConfig(learning_rate=1e-3, warmup_steps=1, steps=10,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    graphdef, state = init_dense_state(cfg, tc, mesh)
    init = flat(state.params)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    losses = []
    for _ in range(STEPS):
        batch = (jax.device_put(local, batch_sharding(mesh)) if bug == "no-allreduce"
                 else shard_batch(local, mesh))
        state, m = step(state, batch)
        losses.append(float(np.asarray(m["loss"].addressable_data(0))))
    return init, flat(state.params), np.asarray(losses)


def main():
    assert jax.process_count() == nproc and jax.device_count() == nproc * ndev
    mine = 0 if bug == "wrong-shard" else pid
    local = {k: v[mine::nproc] for k, v in global_batch().items()}  # this process's slice
    mesh = make_mesh(devices=jax.local_devices()) if bug == "no-allreduce" else make_mesh()
    init, params, losses = train(mesh, local)
    result = {"losses": losses, **params, **{f"init:{k}": v for k, v in init.items()}}
    if nproc == 1 and ndev > 1:
        _, alt, alt_losses = train(make_mesh(devices=jax.devices()[:1]), local)
        result.update({"alt:losses": alt_losses, **{f"alt:{k}": v for k, v in alt.items()}})
    if pid == 0:
        np.savez(out, **result)


if __name__ == "__main__":
    main()
