"""Device meshes and batch sharding for one CPU, several GPUs, or a multi-host TPU pod.

The mesh has two axes, ('data', 'fsdp'); batches are split over both (pure data parallelism when
fsdp == 1). Parameters are replicated for now: the paper model is 11.6 M parameters (46 MB), far
below any accelerator's memory, so FSDP sharding of weights buys nothing yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

BATCH_AXES = ("data", "fsdp")


def mesh_shape(num_devices: int, data: int = -1, fsdp: int = 1) -> tuple[int, int]:
    """Resolves -1 ("the rest") and checks that data * fsdp == num_devices."""
    if data == -1 and fsdp == -1:
        raise ValueError("at most one of data/fsdp may be -1")
    if data == -1:
        data = num_devices // fsdp
    if fsdp == -1:
        fsdp = num_devices // data
    if data * fsdp != num_devices or data < 1 or fsdp < 1:
        raise ValueError(f"mesh data={data} x fsdp={fsdp} does not use the {num_devices} devices")
    return data, fsdp


def make_mesh(data: int = -1, fsdp: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ('data', 'fsdp') mesh over `devices` (default: all devices of all processes).

    Axis types are Auto: sharding is propagated by XLA from the input shardings (recent JAX
    defaults `make_mesh` to Explicit axes, which rejects some data-sharded reductions).
    """
    devices = list(jax.devices() if devices is None else devices)
    shape = mesh_shape(len(devices), data, fsdp)
    auto = (jax.sharding.AxisType.Auto,) * 2
    return jax.make_mesh(shape, BATCH_AXES, axis_types=auto, devices=devices)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every mesh axis; other axes replicated."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Host-local numpy batch -> global jax.Arrays split along the batch axis.

    On one host this is a device_put; on several, each process passes its own slice (from a
    process-sharded Grain pipeline) and the global batch is process_count times larger.
    """
    sharding = batch_sharding(mesh)
    n = mesh.devices.size // jax.process_count()
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        if v.shape[0] % n:
            raise ValueError(
                f"batch key {k!r} has {v.shape[0]} rows per process, not divisible by the "
                f"{n} local devices; choose a batch size that is a multiple of {n}"
            )
        out[k] = jax.make_array_from_process_local_data(sharding, v)
    return out
