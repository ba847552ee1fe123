"""Evaluate a batched function over many inputs: in chunks (bounded memory) and across devices.

``map_batched(fn, xs, targets, batch_size)`` runs ``fn(xs, targets)`` (a
function of a batch whose outputs keep the leading axis) over the ``M``
leading entries of ``xs``. With ``batch_size=None`` it is one call on the
whole batch; otherwise ``lax.map`` over chunks of ``batch_size`` (so at most
that many images are in flight at once). With several devices each chunk is
sharded along its batch axis over a 1-D ``Mesh`` of all devices
(``NamedSharding(mesh, P("d"))``); chunks are rounded up to a multiple of the
device count and the batch is zero-padded to whole chunks, the padded rows
being dropped from the result. Every row is computed independently of the
others, so the result does not depend on the chunking or on the device count
(up to float rounding of the batched kernels).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["device_count", "map_batched"]


def device_count() -> int:
    return len(jax.devices())


@functools.lru_cache(maxsize=None)
def _mesh(n: int) -> Mesh:
    return Mesh(np.array(jax.devices()[:n]), ("d",))


def constrain(a, axis: int = 0):
    """Shard ``a`` along ``axis`` over all devices (identity with one device)."""
    n = device_count()
    if n == 1:
        return a
    spec = P(*([None] * axis), "d")
    return jax.lax.with_sharding_constraint(a, NamedSharding(_mesh(n), spec))


def _pad_rows(a, rows: int):
    return a if rows == 0 else jnp.concatenate([a, jnp.zeros((rows,) + a.shape[1:], a.dtype)])


def map_batched(fn, xs, targets, batch_size: int | None):
    """``fn`` over the rows of ``(xs, targets)`` in chunks of ``batch_size``, sharded over devices."""
    m, ndev = xs.shape[0], device_count()
    chunk = m if batch_size is None else min(batch_size, m)
    chunk = -(-chunk // ndev) * ndev
    total = -(-m // chunk) * chunk
    xs, targets = _pad_rows(xs, total - m), _pad_rows(targets, total - m)
    if total == chunk:
        return jax.tree_util.tree_map(lambda o: o[:m], fn(constrain(xs), constrain(targets)))
    k = total // chunk
    xs = constrain(xs.reshape((k, chunk) + xs.shape[1:]), 1)
    targets = constrain(targets.reshape((k, chunk) + targets.shape[1:]), 1)
    out = jax.lax.map(lambda a: fn(constrain(a[0]), constrain(a[1])), (xs, targets))
    return jax.tree_util.tree_map(lambda o: o.reshape((total,) + o.shape[2:])[:m], out)
