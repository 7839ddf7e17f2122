"""One process of a data-parallel Module 1 run (used by test_multiprocess.py).

usage: python dist_job.py PROCESS_ID NUM_PROCESSES LOCAL_DEVICES PORT OUT.npz
Processes join with `jax.distributed.initialize` on localhost (gloo CPU collectives); each feeds
its own slice of every global batch (as Grain does by process index).
"""

import os
import sys

pid, nproc, ndev, port, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={ndev}"

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")
if nproc > 1:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=nproc,
                               process_id=pid)

from ifvit_core import config  # noqa: E402
from ifvit_train.config import TrainConfig  # noqa: E402
from ifvit_train.dense import init_dense_state, make_dense_step  # noqa: E402
from ifvit_train.mesh import make_mesh, shard_batch  # noqa: E402


def global_batch(n=8, size=64):
    rng = np.random.default_rng(0)
    img = rng.random((n, size, size, 1)).astype(np.float32)
    l_len = (size // 8) ** 2
    i = np.tile(np.arange(l_len, dtype=np.int32), (n, 1))
    # image1 = image0, every cell matches itself: a loss far from the P clamp (real gradients).
    return {"image0": img, "image1": img.copy(), "gt_i": i, "gt_j": i.copy(),
            "gt_valid": np.ones((n, l_len), bool)}


def main():
    assert jax.process_count() == nproc and jax.device_count() == nproc * ndev
    cfg = config.tiny()
    tc = TrainConfig(learning_rate=1e-3, warmup_steps=1, steps=10)
    mesh = make_mesh()
    graphdef, state = init_dense_state(cfg, tc, mesh)
    step = make_dense_step(graphdef, cfg, tc, mesh)
    local = {k: v[pid::nproc] for k, v in global_batch().items()}  # this process's slice
    losses = []
    for _ in range(3):
        state, m = step(state, shard_batch(local, mesh))
        losses.append(float(np.asarray(m["loss"].addressable_data(0))))
    leaves = jax.tree_util.tree_leaves_with_path(state.params)
    flat = {jax.tree_util.keystr(p): np.asarray(x.addressable_data(0)) for p, x in leaves}
    if pid == 0:
        np.savez(out, losses=np.asarray(losses), **flat)


if __name__ == "__main__":
    main()
