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

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from tinygrad_cnn import validation
from tinygrad_cnn.conv_arithmetic import PoolGeometry, adaptive_windows, explicit_pads
from tinygrad_cnn.ops.conv_args import pool_args


def _window(fn, x, pool_size, strides, padding, data_format, dilation_rate=1, ceil_mode=False):
    """``lax.reduce_window``'s window, strides, pads and dilation (batch and channel axes included), the
    spatial shape, the geometry and the pads ``padding`` names (the engine's own argument resolution)."""
    data_format, geo, named = pool_args(fn, x.shape, pool_size, strides, padding, data_format, dilation_rate,
                                        ceil_mode)
    spatial = tuple(x.shape[1:-1]) if data_format == "channels_last" else tuple(x.shape[2:])
    if data_format == "channels_last":
        full = lambda t, fill: (fill,) + tuple(t) + (fill,)  # noqa: E731
    else:
        full = lambda t, fill: (fill, fill) + tuple(t)  # noqa: E731
    lax_args = (full(geo.pool, 1), full(geo.strides, 1), full(geo.pads, (0, 0)))
    return lax_args, full(geo.dilation, 1), spatial, geo, named, data_format


def _reduce(x, init, op, lax_args, dilation):
    return lax.reduce_window(x, np.array(init, x.dtype), op, *lax_args, window_dilation=dilation)


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last", *, dilation_rate=1,
             ceil_mode=False, return_indices=False):
    """y[o] = max over the window at o * s of the (unpadded) cells of x; with ``return_indices`` also each
    window's first maximum as a flat row-major index over the spatial axes (a variadic ``reduce_window`` of
    (value, index) pairs keeping the larger value, the smaller index on ties)."""
    x = jnp.asarray(x)
    lax_args, dil, spatial, _, _, fmt = _window("max_pool", x, pool_size, strides, padding, data_format,
                                                dilation_rate, ceil_mode)
    y = _reduce(x, -np.inf, lax.max, lax_args, dil) if max(dil) == 1 else _dilated_max(x, lax_args, dil)
    if not return_indices:
        return y
    flat = jnp.arange(int(np.prod(spatial)), dtype=jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
    flat = jnp.broadcast_to(jnp.reshape(flat, (1,) + spatial + (1,) if fmt == "channels_last" else
                                        (1, 1) + spatial), x.shape)

    def first_max(a, b):
        take_a = (a[0] > b[0]) | ((a[0] == b[0]) & (a[1] < b[1]))
        return jnp.where(take_a, a[0], b[0]), jnp.where(take_a, a[1], b[1])

    _, idx = lax.reduce_window((lax.stop_gradient(x), flat), (np.array(-np.inf, x.dtype), np.array(0, flat.dtype)),
                               first_max, *lax_args, window_dilation=dil)
    return y, idx


def _dilated_max(x, lax_args, dilation):
    """A dilated max pool that JAX can differentiate (it has no vjp for a dilated ``reduce_window`` max): the
    window's taps ``xpad[o*s + k*r]`` (strided ``lax.slice``s of the -inf padded input) stacked on a new
    leading axis in row-major tap order, then an undilated ``reduce_window`` max over that axis (its gradient
    goes to the first maximum, as the plain max pool's)."""
    window, strides, pads = lax_args
    xp = lax.pad(x, np.array(-np.inf, x.dtype), [(b, a, 0) for b, a in pads])
    out = [(n - r * (k - 1) - 1) // s + 1 for n, k, s, r in zip(xp.shape, window, strides, dilation, strict=True)]
    taps = [lax.slice(xp, tuple(t * r for t, r in zip(tap, dilation, strict=True)),
                      tuple(t * r + (o - 1) * s + 1 for t, r, o, s in zip(tap, dilation, out, strides, strict=True)),
                      strides) for tap in itertools.product(*(range(k) for k in window))]
    stacked = jnp.stack(taps)
    return lax.reduce_window(stacked, np.array(-np.inf, x.dtype), lax.max, (len(taps),) + (1,) * x.ndim,
                             (1,) * stacked.ndim, "VALID")[0]


def max_unpool(x, indices, pool_size, strides=None, padding="valid", data_format="channels_last",
               output_size=None):
    """Zeros except y[n, indices[n, o, c], c] = x[n, o, c]; of repeated indices the last (row-major) is kept."""
    x, idx = jnp.asarray(x), jnp.asarray(indices)
    fmt = validation.data_format("max_unpool", data_format)
    d = x.ndim - 2
    pool = validation.int_tuple("max_unpool", "pool_size", pool_size, d)
    strides = pool if strides is None else validation.int_tuple("max_unpool", "strides", strides, d)
    pads = ((0, 0),) * d if padding == "valid" else explicit_pads("max_unpool", padding, d)
    if fmt == "channels_first":
        x, idx = jnp.moveaxis(x, 1, -1), jnp.moveaxis(idx, 1, -1)
    if output_size is None:
        size = tuple((n - 1) * s - b - a + k for n, s, k, (b, a) in zip(x.shape[1:-1], strides, pool, pads,
                                                                         strict=True))
    else:
        size = validation.int_tuple("max_unpool", "output_size", output_size, d)
    n, c, cells = x.shape[0], x.shape[-1], int(np.prod(size))
    keys = ((jnp.arange(n).reshape((n,) + (1,) * (x.ndim - 1)) * cells + idx) * c + jnp.arange(c)).ravel()
    order = jnp.arange(keys.size)
    last = jnp.full(n * cells * c, -1, order.dtype).at[keys].max(order)
    kept = jnp.where(last[keys] == order, x.ravel(), jnp.zeros((), x.dtype))
    y = jnp.zeros(n * cells * c, x.dtype).at[keys].add(kept).reshape((n,) + size + (c,))
    return y if fmt == "channels_last" else jnp.moveaxis(y, -1, 1)


def avg_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last", *, dilation_rate=1,
             ceil_mode=False, count_include_pad=False):
    """y[o] = (sum of the window at o * s) / (its real cells, or with ``count_include_pad`` its cells inside
    the input and the named padding)."""
    x = jnp.asarray(x)
    lax_args, dil, spatial, geo, named, fmt = _window("avg_pool", x, pool_size, strides, padding, data_format,
                                                      dilation_rate, ceil_mode)
    if count_include_pad:  # ones over the input and its named padding; only the ceil_mode cells are not counted
        spatial = tuple(n + b + a for n, (b, a) in zip(spatial, named, strict=True))
        geo = PoolGeometry(geo.pool, geo.strides, tuple((0, ga - a) for (_, ga), (_, a) in
                                                        zip(geo.pads, named, strict=True)), geo.dilation)
    counts = lax.reduce_window(jnp.ones(spatial, x.dtype), np.array(0, x.dtype), lax.add, geo.pool, geo.strides,
                               geo.pads, window_dilation=geo.dilation)
    counts = counts[None, ..., None] if fmt == "channels_last" else counts[None, None]
    return _reduce(x, 0, lax.add, lax_args, dil) / counts


def _adaptive(x, output_size, data_format, reduce_axis):
    fmt = validation.data_format("adaptive_pool", data_format)
    first = 1 if fmt == "channels_last" else 2
    out = validation.int_tuple("adaptive_pool", "output_size", output_size, x.ndim - 2)
    for i, m in enumerate(out):
        axis = first + i
        starts, ends = adaptive_windows(x.shape[axis], m)
        x = jnp.stack([reduce_axis(lax.slice_in_dim(x, int(s), int(e), axis=axis), axis)
                       for s, e in zip(starts, ends, strict=True)], axis=axis)
    return x


def adaptive_avg_pool(x, output_size, data_format="channels_last"):
    """Mean over PyTorch's adaptive windows [floor(i n / out), ceil((i + 1) n / out)), one axis at a time."""
    return _adaptive(jnp.asarray(x), output_size, data_format, lambda part, axis: jnp.mean(part, axis=axis))


def adaptive_max_pool(x, output_size, data_format="channels_last"):
    """Max over PyTorch's adaptive windows, one axis at a time, each window one ``lax.reduce_window`` (its
    gradient goes to the first maximum)."""
    def window_max(part, axis):
        window = tuple(part.shape[a] if a == axis else 1 for a in range(part.ndim))
        y = lax.reduce_window(part, np.array(-np.inf, part.dtype), lax.max, window, (1,) * part.ndim, "VALID")
        return jnp.squeeze(y, axis)
    return _adaptive(jnp.asarray(x), output_size, data_format, window_max)


def _safe_root(s, p):
    """s^(1/p) with value and gradient 0 where s = 0 (never NaN)."""
    positive = s > 0
    safe = jnp.where(positive, s, jnp.ones_like(s))
    root = jnp.sqrt(safe) if p == 2 else safe ** (1.0 / p)
    return jnp.where(positive, root, jnp.zeros_like(s))


def lp_pool(x, pool_size, strides=None, padding="valid", p=2, data_format="channels_last", *, dilation_rate=1,
            ceil_mode=False):
    """y[o] = (sum over the window of |x|^p)^(1/p), computed as M (sum (|x| / M)^p)^(1/p) with M the window's
    largest |x| (held constant: the identity holds for any M > 0), so no |x|^p overflows or underflows for any p;
    an all-zero window gives 0 with gradient 0. The windows are ``lax.conv_general_dilated_patches`` (zero
    padding), laid out channel-major then tap."""
    x = jnp.asarray(x)
    p = validation.number_in("lp_pool", "p", p, 1.0, float("inf"), high_open=True)
    *_, geo, _, fmt = _window("lp_pool", x, pool_size, strides, padding, data_format, dilation_rate, ceil_mode)
    axes = "DHW"[-geo.rank:]
    layout = f"N{axes}C" if fmt == "channels_last" else f"NC{axes}"
    patches = lax.conv_general_dilated_patches(x, geo.pool, geo.strides, geo.pads, rhs_dilation=geo.dilation,
                                               dimension_numbers=(layout, f"{axes}IO", layout))
    taps = int(np.prod(geo.pool))
    if fmt == "channels_last":
        a, axis = jnp.abs(patches.reshape(patches.shape[:-1] + (x.shape[-1], taps))), -1
    else:
        a, axis = jnp.abs(patches.reshape(patches.shape[:1] + (x.shape[1], taps) + patches.shape[2:])), 2
    m = lax.stop_gradient(jnp.max(a, axis, keepdims=True))
    m = jnp.where(m > 0, m, jnp.ones_like(m))
    return _safe_root(jnp.sum((a / m) ** p, axis), p) * jnp.squeeze(m, axis)


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

