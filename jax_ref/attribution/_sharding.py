"""Evaluate a batched function over many inputs: all at once, or in chunks (bounded memory), over devices.

An attribution method is written as three pure stages:
``prepare(params, *args) -> (xs, targets, ctx)`` builds the ``M`` inputs to
evaluate (noisy copies, path points, occluded copies), ``chunk(params, xs,
targets)`` evaluates a batch of them (outputs keep the leading axis), and
``finish(params, ctx, out)`` reduces the ``M`` results. ``Staged`` runs them:

- ``batch_size=None``: the three stages in one jitted function (one dispatch);
- ``batch_size=k``: one compiled call per chunk of ``k`` inputs (a loop over
  chunks, never over samples; each call slices inside the compiled function,
  the last slice is moved back to end at the last row so every call has the
  same shape): the first call also runs ``prepare``, the last one also
  ``finish``, so ``ceil(M / k)`` chunks cost ``ceil(M / k)`` dispatches.
  Only ``k`` inputs' activations are alive at once, so peak memory is bounded.
  (An in-graph ``lax.map`` bounds memory too but XLA's CPU while loops cost
  30% to 2.5x here; unrolled chunks inside one graph cost nothing but XLA
  schedules them together and the memory is not bounded, also with
  ``optimization_barrier`` chaining them: compiled temp memory 114 MB for 5
  unrolled chunks of 100 against 25 MB for one, on the 28x28 CNN.)

With several devices every evaluated batch is sharded along its leading axis
over a 1-D ``Mesh`` of all devices (``NamedSharding(mesh, P("d"))``): chunks
are rounded up to a multiple of the device count and a whole batch is padded
with zero rows to one (the padded rows are dropped). Rows are computed independently, so results do not depend on the
chunking or the device count (up to float rounding of the batched kernels). The
results come back replicated on every device, so in a multi-process job
(``jax_ref.launch``) every process holds the whole result, and each process
evaluates only the rows its own devices hold.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["Staged", "constrain", "device_count", "replicate"]


@functools.lru_cache(maxsize=None)
def device_count() -> int:
    """The number of devices (looked up once: it is fixed from the backend's start; 2 us a call otherwise)."""
    return len(jax.devices())


@functools.lru_cache(maxsize=None)
def _mesh(n: int) -> Mesh:
    return Mesh(np.array(jax.devices()[:n]), ("d",))


def constrain(a, axis: int = 0):
    """Shard ``a`` along ``axis`` over all devices (identity with one device)."""
    n = device_count()
    if n == 1:
        return a
    return jax.lax.with_sharding_constraint(a, NamedSharding(_mesh(n), P(*([None] * axis), "d")))


def replicate(tree):
    """Every array of ``tree`` replicated on all devices (identity with one device): the results of a sharded
    evaluation gathered, so that every process (also of a multi-process job) can read them with ``np.asarray``."""
    n = device_count()
    if n == 1:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(_mesh(n), P()))


def _pad_rows(a, rows: int):
    return a if rows == 0 else jnp.concatenate([a, jnp.zeros((rows,) + a.shape[1:], a.dtype)])


class Staged:
    """``Staged(prepare, chunk, finish)(params, *args, batch_size=None)`` (see the module docstring)."""

    def __init__(self, prepare, chunk, finish):
        self._prepare, self._chunk, self._finish = prepare, chunk, finish
        self.whole = jax.jit(self._run_whole)
        self.chunk = jax.jit(self._run_chunk)
        self.first = jax.jit(self._run_first, static_argnames="size")
        self.chunk_at = jax.jit(self._run_chunk_at, static_argnames="size")
        self.last = jax.jit(self._run_last, static_argnames=("m", "size"))

    def _run_chunk(self, params, xs, targets):
        return self._chunk(params, constrain(xs), constrain(targets))

    def _run_chunk_at(self, params, xs, targets, start, size):
        """Rows ``start .. start+size-1`` (``start <= m - size``)."""
        take = lambda a: jax.lax.dynamic_slice_in_dim(a, start, size)  # noqa: E731
        return self._run_chunk(params, take(xs), take(targets))

    def _run_first(self, params, *args, size):
        """``prepare`` and the first chunk (rows ``0 .. size-1``, all ``M`` if ``size >= M``)."""
        xs, targets, ctx = self._prepare(params, *args)
        rows = min(size, xs.shape[0])
        pad = -rows % device_count()  # all M rows, padded to the devices as in whole
        out = self._run_chunk(params, _pad_rows(xs[:rows], pad), _pad_rows(targets[:rows], pad))
        return xs, targets, ctx, jax.tree_util.tree_map(lambda o: o[:rows], out)

    def _run_last(self, params, ctx, parts, xs, targets, m, size):
        """The last chunk (rows ``m-size .. m-1``; none if ``parts`` already hold all ``m`` rows), the chunk
        results concatenated (the last chunk's rows that earlier chunks hold dropped) and ``finish``."""
        done = size * len(parts)
        if done < m:
            last = self._run_chunk_at(params, xs, targets, m - size, size)
            parts = list(parts) + [jax.tree_util.tree_map(lambda o: o[size - (m - done):], last)]
        out = jax.tree_util.tree_map(lambda *o: jnp.concatenate(o), *parts)
        return replicate(self._finish(params, ctx, out))

    def _run_whole(self, params, *args):
        xs, targets, ctx = self._prepare(params, *args)
        m = xs.shape[0]
        pad = -m % device_count()
        out = self._run_chunk(params, _pad_rows(xs, pad), _pad_rows(targets, pad))
        return replicate(self._finish(params, ctx, jax.tree_util.tree_map(lambda o: o[:m], out)))

    def __call__(self, params, *args, batch_size=None):
        size = None if batch_size is None else batch_size + (-batch_size % device_count())
        if size is None:
            return self.whole(params, *args)
        xs, targets, ctx, first = self.first(params, *args, size=size)
        m = xs.shape[0]
        # the middle chunks; the last one (none if the first chunk held every row) starts at m - size
        # (explicitly: sharded dynamic slices do not clamp like XLA's do) and runs with finish
        parts = (first,) + tuple(self.chunk_at(params, xs, targets, np.int32(i), size=size)
                                 for i in range(size, m - size, size))
        return self.last(params, ctx, parts, xs, targets, m=m, size=size)
