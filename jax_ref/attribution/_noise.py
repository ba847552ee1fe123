"""SmoothGrad's and ``noise_tunnel``'s noise: the costly part drawn once per seed and shape, and kept.

``jax.random.normal(PRNGKey(seed), shape, dtype)`` is ``sqrt(2) erfinv(u)`` of a uniform draw ``u`` in
``(-1, 1)`` (``jax.random.uniform(key, shape, dtype, nextafter(-1, 0), 1)``, threefry: most of the cost).
``uniform_for_normal(seed, shape, dtype)`` returns that ``u`` (drawn by its own compiled function,
replicated over all devices so that a multi-process job sees one global array) and ``to_normal(u)``, traced
inside the caller's compiled function, finishes the draw there: the noisy copies come out bit for bit as
with ``jax.random.normal`` drawn inside that function (tested). ``u`` depends on nothing but its seed,
shape and dtype (and JAX's PRNG settings, part of the key), not on the image, so the draws of the last few
distinct requests are kept (at most ``MAX_ENTRIES`` arrays and ``MAX_BYTES`` bytes together, least recently
used evicted first; a larger draw is not kept). On the 8x8 digits CNN drawing the noise costs about a tenth
of the batched gradient it feeds, and the default seed makes repeated calls the common case: a second call
with the same seed and shape pays only the gradient.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict

import jax
import numpy as np

from jax_ref.attribution import _sharding

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "clear", "to_normal", "uniform_for_normal"]

MAX_ENTRIES = 8
MAX_BYTES = 64 * 2**20

_kept: OrderedDict = OrderedDict()
_lock = threading.Lock()


@functools.partial(jax.jit, static_argnames=("shape", "dtype", "impl", "partitionable"))
def _draw(seed, shape, dtype, impl, partitionable):
    """The uniform draw (``impl`` and ``partitionable``, the PRNG settings, are static: a change retraces)."""
    del partitionable  # read from the config while tracing
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    return _sharding.replicate(jax.random.uniform(jax.random.PRNGKey(seed, impl=impl), shape, dtype, lo, 1.0))


def to_normal(u):
    """Inside the caller's trace: ``uniform_for_normal``'s draw made standard normal, ``sqrt(2) erfinv(u)``,
    as ``jax.random.normal`` does it."""
    return jax.lax.mul(np.array(np.sqrt(2), u.dtype), jax.lax.erf_inv(u))


def uniform_for_normal(seed: int, shape: tuple, dtype) -> jax.Array:
    """The uniform draw in ``(-1, 1)`` behind ``normal(PRNGKey(seed), shape, dtype)`` (see the module docstring);
    ``seed`` an int in [0, 2**32)."""
    dtype = np.dtype(dtype)
    settings = (jax.config.jax_default_prng_impl, jax.config.jax_threefry_partitionable)
    key = (seed, shape, dtype, *settings, _sharding.device_count())
    with _lock:
        u = _kept.get(key)
        if u is not None:
            _kept.move_to_end(key)
            return u
    u = _draw(np.uint32(seed), shape=shape, dtype=dtype, impl=settings[0], partitionable=settings[1])
    if u.nbytes <= MAX_BYTES:
        with _lock:
            _kept[key] = u
            while len(_kept) > MAX_ENTRIES or sum(a.nbytes for a in _kept.values()) > MAX_BYTES:
                _kept.popitem(last=False)
    return u


def clear() -> None:
    """Forget every kept array."""
    with _lock:
        _kept.clear()
