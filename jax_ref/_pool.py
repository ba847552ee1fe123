"""Pooling of the twin on ``lax.reduce_window`` (N-d by ``x.ndim - 2``), with Keras' ``"same"`` semantics.

Padded cells never count: max pooling pads with -inf (it never picks them),
average pooling divides by the number of real cells each window covers, and
L_p pooling pads with zeros (which add nothing to ``sum |x|^p``). The max-pool
gradient goes to one element per window, the one ``lax.reduce_window``'s
transpose picks (the first maximum in row-major window order). Init values are concrete NumPy
scalars, so ``lax`` recognises the monoid (max/add) and the windows stay
differentiable under ``jit``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from tinygrad_cnn import validation
from tinygrad_cnn.conv_arithmetic import resolve_padding


def _window(fn, x, pool_size, strides, padding, data_format):
    data_format = validation.data_format(fn, data_format)
    if x.ndim < 3:
        raise ValueError(f"{fn}: input must have a batch, a channel and at least one spatial axis; "
                         f"got shape {x.shape}")
    rank = x.ndim - 2
    pool = validation.int_tuple(fn, "pool_size", pool_size, rank)
    strides = pool if strides is None else validation.int_tuple(fn, "strides", strides, rank)
    spatial = tuple(x.shape[1:-1]) if data_format == "channels_last" else tuple(x.shape[2:])
    if not isinstance(padding, str):
        raise ValueError(f"{fn}: padding={padding!r} must be 'valid' or 'same' for pooling")
    pads = resolve_padding(fn, padding, spatial, pool, strides, (1,) * rank, modes=("valid", "same"))
    if data_format == "channels_last":
        full = lambda t, fill: (fill,) + tuple(t) + (fill,)  # noqa: E731
    else:
        full = lambda t, fill: (fill, fill) + tuple(t)  # noqa: E731
    return full(pool, 1), full(strides, 1), full(pads, (0, 0)), spatial, (pool, strides, pads)


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    """y[o] = max over the window at o * s of the (unpadded) cells of x."""
    x = jnp.asarray(x)
    win, st, pads, _, _ = _window("max_pool", x, pool_size, strides, padding, data_format)
    return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, win, st, pads)


def _window_sum(x, win, st, pads):
    return lax.reduce_window(x, np.array(0, x.dtype), lax.add, win, st, pads)


def _counts(spatial, rank_info, dtype):
    pool, strides, pads = rank_info
    ones = jnp.ones(spatial, dtype)
    return lax.reduce_window(ones, np.array(0, dtype), lax.add, pool, strides, pads)


def avg_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    """y[o] = (sum of the real cells in the window at o * s) / (their number)."""
    x = jnp.asarray(x)
    win, st, pads, spatial, info = _window("avg_pool", x, pool_size, strides, padding, data_format)
    counts = _counts(spatial, info, x.dtype)
    counts = counts[None, ..., None] if data_format == "channels_last" else counts[None, None]
    return _window_sum(x, win, st, pads) / counts


def _safe_root(s, p):
    """s^(1/p) with value and gradient 0 where s = 0 (never NaN)."""
    positive = s > 0
    safe = jnp.where(positive, s, jnp.ones_like(s))
    root = jnp.sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return jnp.where(positive, root, jnp.zeros_like(s))


def lp_pool(x, pool_size, strides=None, padding="valid", p=2, data_format="channels_last"):
    """y[o] = (sum over the window of |x|^p)^(1/p); an all-zero window gives 0 with gradient 0."""
    x = jnp.asarray(x)
    p = validation.number_in("lp_pool", "p", p, 1.0, float("inf"), high_open=True)
    win, st, pads, _, _ = _window("lp_pool", x, pool_size, strides, padding, data_format)
    powered = x * x if p == 2 else jnp.abs(x) ** p
    return _safe_root(_window_sum(powered, win, st, pads), p)


def _spatial_axes(fn, x, data_format):
    data_format = validation.data_format(fn, data_format)
    if x.ndim < 3:
        raise ValueError(f"{fn}: input must have a batch, a channel and at least one spatial axis; "
                         f"got shape {x.shape}")
    return tuple(range(1, x.ndim - 1)) if data_format == "channels_last" else tuple(range(2, x.ndim))


def global_max_pool(x, data_format="channels_last", keepdims=False):
    """max over every spatial axis (ties share the gradient evenly, as ``jnp.max``)."""
    x = jnp.asarray(x)
    return jnp.max(x, axis=_spatial_axes("global_max_pool", x, data_format), keepdims=keepdims)


def global_avg_pool(x, data_format="channels_last", keepdims=False):
    """mean over every spatial axis."""
    x = jnp.asarray(x)
    return jnp.mean(x, axis=_spatial_axes("global_avg_pool", x, data_format), keepdims=keepdims)

