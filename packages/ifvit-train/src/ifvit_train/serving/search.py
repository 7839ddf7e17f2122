"""1:N search of unit templates by cosine: top-k on one device, or sharded over a device mesh.

Templates are unit norm (`ifvit_core.ifvit.embed_images`), so cosine = dot product. The gallery
`[N, D]` lives on device(s); probes `[P, D]` are small and replicated.

Sharded search: the gallery rows are split over every axis of the training mesh
(`ifvit_train.serving.mesh.make_mesh`, rows laid out like a batch: `mesh.batch_sharding`). Each
device scores its rows and keeps its own top k (with global row ids); the `n_dev * k` candidates are
gathered and merged into the global top k. N need not divide the device count: the gallery is
padded to a multiple of it and the padded rows score -inf, so they never win (unless k exceeds
the real N, which is refused). On several hosts the same code runs unchanged: `shard_gallery` puts
on each host's devices only their rows (a memory-mapped `.npy` is read only where needed).
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from ifvit_train.serving.mesh import BATCH_AXES, batch_sharding, replicated

try:  # jax >= 0.7
    from jax import shard_map as _shard_map
except ImportError:  # pragma: no cover - older jax
    from jax.experimental.shard_map import shard_map as _shard_map


def _check_k(k: int, n: int) -> None:
    if not 1 <= k <= n:
        raise ValueError(f"top-k {k} must be between 1 and the gallery size {n}")


@partial(jax.jit, static_argnames=("k",))
def top_k(gallery: jax.Array, probes: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """Exact top-k by cosine on one device.

    Args:
      gallery: [N, D] unit templates; probes: [P, D] unit templates; k: static, 1 <= k <= N.

    Returns:
      (scores [P, k] float32 descending, indices [P, k] int32 rows of `gallery`).
    """
    sims = jnp.dot(probes, gallery.T, preferred_element_type=jnp.float32)
    return jax.lax.top_k(sims, k)


def padded_rows(n: int, mesh: Mesh) -> int:
    """N rounded up to a multiple of the mesh's device count."""
    d = mesh.devices.size
    return -(-n // d) * d


def shard_gallery(templates: np.ndarray, mesh: Mesh) -> jax.Array:
    """[N, D] host templates (any array-like, e.g. a memory-mapped .npy) -> [N', D] on the mesh.

    N' = `padded_rows(N, mesh)`; rows >= N are zeros (masked to -inf by `sharded_top_k`). Each
    process only reads and places the rows of its own devices.
    """
    n, d = templates.shape
    n_pad = padded_rows(n, mesh)

    def rows(index: tuple[slice, ...]) -> np.ndarray:
        sl = index[0]
        start, stop = sl.start or 0, n_pad if sl.stop is None else sl.stop
        out = np.zeros((stop - start, d), np.float32)
        if start < n:
            out[: min(stop, n) - start] = templates[start:min(stop, n)]
        return out

    return jax.make_array_from_callback((n_pad, d), batch_sharding(mesh), rows)


def sharded_top_k(
    mesh: Mesh, gallery: jax.Array, probes: jax.Array, k: int, n: int
) -> tuple[jax.Array, jax.Array]:
    """Exact top-k over a gallery whose rows are split over every axis of `mesh`.

    Args:
      mesh: the ('data', 'fsdp') mesh of `ifvit_train.serving.mesh.make_mesh`.
      gallery: [N', D] from `shard_gallery` (rows split over the mesh, zero padding at the end).
      probes: [P, D] unit templates (replicated); k: 1 <= k <= n.
      n: the real gallery size N (rows >= n are padding and score -inf).

    Returns:
      (scores [P, k] descending, indices [P, k] int32 global rows), equal to `top_k` on the
      unpadded gallery (up to the order of exact ties).
    """
    _check_k(k, n)
    per = gallery.shape[0] // mesh.devices.size
    return _sharded_fn(mesh, k, n, per)(gallery, jax.device_put(probes, replicated(mesh)))


@lru_cache(maxsize=32)
def _sharded_fn(mesh: Mesh, k: int, n: int, per: int):
    sizes = [mesh.shape[a] for a in BATCH_AXES]

    def local(g: jax.Array, q: jax.Array) -> tuple[jax.Array, jax.Array]:
        shard = jnp.int32(0)
        for axis, size in zip(BATCH_AXES, sizes, strict=True):  # row-major position of this shard
            shard = shard * size + jax.lax.axis_index(axis)
        rows = shard * per + jnp.arange(per, dtype=jnp.int32)
        sims = jnp.dot(q, g.T, preferred_element_type=jnp.float32)
        sims = jnp.where(rows[None, :] < n, sims, -jnp.inf)
        s, i = jax.lax.top_k(sims, min(k, per))  # [P, k] local (all rows if fewer)
        s_all = jax.lax.all_gather(s, BATCH_AXES, axis=1, tiled=True)  # [P, devices * k] >= k
        i_all = jax.lax.all_gather(rows[i], BATCH_AXES, axis=1, tiled=True)
        s_top, j = jax.lax.top_k(s_all, k)
        return s_top, jnp.take_along_axis(i_all, j, axis=1)

    fn = _shard_map(local, mesh=mesh, in_specs=(P(BATCH_AXES), P()), out_specs=(P(), P()),
                    check_vma=False)
    return jax.jit(fn)
