"""Pooling primitives: max over a window, sum over a window (average and Lp pooling build on it).

Channels-last: ``x`` of shape ``(N, *S, C)``, windows of ``pool`` cells moved by
``strides``, the input padded by ``pads[i] = (before, after)`` cells that take no
part in the result (max pooling pads with -inf, window sums with 0; average
pooling divides by the number of real cells a window covered). Output
``(N, *O, C)`` with ``O = floor((S + P - pool) / stride) + 1``.

Every primitive is a loop over the window's taps (``prod(pool)`` iterations, 4 for
a 2x2 pool): no Python loop over pixels, batch or channels. When the windows are
disjoint (``strides >= pool``, the usual case) the taps are first gathered by one
strided copy into a contiguous tap-major stack (at most the input's size), and the
vjp builds its stack the same way and puts it in place with one strided copy;
overlapping windows work on strided views of the padded input, which costs no
copy ``prod(pool)`` times the output.

Max-pool ties: the window's gradient goes to ONE element, the first maximum in
row-major window order. The forward keeps the first tap whose value is strictly
greater than every earlier one, so the winner is the first maximum. This is what
``jax.grad`` of ``lax.reduce_window(x, -inf, lax.max, ...)`` does: checked on a
window of equal values (jax sends the whole gradient to the window's first cell,
(0, 0), not an even split; ``tests/engine/test_pool.py::test_max_pool_ties_match_jax``).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn.conv_arithmetic import PoolGeometry
from tinygrad_cnn.function import Function
from tinygrad_cnn.ops import buffers, elementwise
from tinygrad_cnn.ops.conv import pad_spatial, tap_slices, unpad_spatial, windows
from tinygrad_cnn.ops.movement import constant


def _out(shape, geo: PoolGeometry):
    return geo.output_size(shape[1:1 + geo.rank])


def _taps(out, geo: PoolGeometry):
    return tap_slices(out, geo.pool, geo.strides, geo.dilation)


def _tiles(geo: PoolGeometry, out, padded) -> bool:
    """Windows that tile the padded input exactly (stride == pool, no dilation, sizes divisible): each cell
    written once."""
    return all(s == p and r == 1 and o * s == n
               for s, p, r, o, n in zip(geo.strides, geo.pool, geo.dilation, out, padded, strict=False))


def tap_major(a, out, geo: PoolGeometry, writeable=False):
    """View ``(*K, N, *O, C)`` of the padded ``a``'s windows: ``view[k, n, o] = a[n, o*s + k*r]``.

    ``writeable`` is safe only for disjoint windows (:meth:`PoolGeometry.disjoint`).
    """
    d = len(out)
    view = windows(a, out, geo.pool, geo.strides, geo.dilation, writeable)
    return np.moveaxis(view, tuple(range(1 + d, 1 + 2 * d)), tuple(range(d)))


def tap_arrays(xp, out, geo) -> list:
    """One ``(N, *O, C)`` array per window tap (row-major), ``xp[n, o*s + k]``.

    Disjoint windows: slices of ONE contiguous copy (one strided copy, at most the input's size; the
    ufuncs that follow then run over contiguous memory, about twice as fast as over strided views whose
    inner runs are only ``C`` long). Overlapping windows: strided views (no copy ``prod(pool)`` times the
    output).
    """
    if not geo.disjoint():
        return [xp[index] for _, index in _taps(out, geo)]
    view = tap_major(xp, out, geo)
    stack = buffers.empty(view.shape, xp.dtype)
    np.copyto(stack, view)
    return list(stack.reshape((math.prod(stack.shape[:len(out)]),) + stack.shape[len(out):]))


def _copy(view):
    out = buffers.empty(view.shape, view.dtype)
    np.copyto(out, view)
    return out


def max_pool_forward(x, geo):
    """The window maxima and, per output cell, the tap (row-major index) of the first maximum."""
    xp = pad_spatial(x, geo.pads, fill=-np.inf)
    return first_max(tap_arrays(xp, _out(x.shape, geo), geo))


def first_max(taps, initial=None):
    """``best = max_t taps[t]`` elementwise and ``idx`` = the first ``t`` that attains it (uint8 below 256 taps).

    With ``initial`` (a scalar), ``best = max(initial, max_t taps[t])`` and ``idx = len(taps)`` (no tap) where
    no tap is strictly greater than ``initial``: ``initial=0`` is relu of the maximum, in the same passes. A NaN
    tap makes ``best`` NaN (``np.maximum`` propagates it) but never wins ``idx``.
    """
    idx_dtype = np.uint8 if len(taps) < 256 else np.int32
    if initial is None:
        best, start = _copy(taps[0]), 1
        idx = buffers.zeros(best.shape, idx_dtype)
    else:
        best, start = buffers.full(taps[0].shape, initial, taps[0].dtype), 0
        idx = buffers.full(best.shape, len(taps), idx_dtype)
    greater, step = buffers.empty(best.shape, bool), buffers.empty(idx.shape, idx.dtype)
    for t, view in enumerate(taps[start:], start=start):
        np.greater(view, best, out=greater)  # strictly greater: the first maximum keeps its place
        np.maximum(best, view, out=best)
        np.subtract(idx.dtype.type(t), idx, out=step)  # idx += greater * (t - idx), modular in uint8
        np.multiply(step, greater, out=step)
        np.add(idx, step, out=idx)
    return best, idx


def _padded_gradient(g, geo, x_shape):
    """The output sizes of ``g`` and a buffer shaped like the padded input (zeroed unless the windows tile it)."""
    d = geo.rank
    padded = geo.padded_size(x_shape[1:1 + d])
    out = g.shape[1:1 + d]
    return out, (buffers.empty if _tiles(geo, out, padded) else buffers.zeros)(
        (x_shape[0],) + padded + tuple(x_shape[1 + d:]), g.dtype)


def scatter_taps(g, idx, geo, x_shape):
    """dx: each output cell's ``g`` added at its window's winning tap (zero elsewhere)."""
    out, dxp = _padded_gradient(g, geo, x_shape)
    if geo.disjoint():  # every tap's share into one contiguous stack, then one strided copy into place
        target = tap_major(dxp, out, geo, writeable=True)
        np.copyto(target, tap_shares(g, idx, math.prod(geo.pool)).reshape(target.shape))
    else:
        mask = buffers.empty(idx.shape, bool)
        for t, (_, index) in enumerate(_taps(out, geo)):
            np.equal(idx, t, out=mask)
            dxp[index] += g * mask
    return unpad_spatial(dxp, geo.pads, x_shape)


def tap_shares(g, idx, taps):
    """``S[t] = g * [idx == t]``, shape ``(taps, *g.shape)``: each window's cotangent at its winning tap, one
    contiguous block per tap (an ``idx`` outside ``[0, taps)`` sends the window's cotangent nowhere)."""
    shares = buffers.empty((taps,) + g.shape, g.dtype)
    mask = buffers.empty(idx.shape, bool)
    for t, share in enumerate(shares):
        np.equal(idx, t, out=mask)
        np.multiply(g, mask, out=share)
    return shares


def gather_taps(c, idx, geo):
    """The adjoint of :func:`scatter_taps`: each output cell reads ``c`` at its window's winning tap."""
    cp = pad_spatial(c, geo.pads)
    out = buffers.zeros(idx.shape, c.dtype)
    mask = buffers.empty(idx.shape, bool)
    for t, (_, index) in enumerate(_taps(idx.shape[1:-1], geo)):
        np.equal(idx, t, out=mask)
        out += cp[index] * mask
    return out


def window_sum_forward(x, geo):
    """y[n, o, c] = sum over the window's taps of xpad[n, o*s + k, c] (zero padding)."""
    taps = tap_arrays(pad_spatial(x, geo.pads), _out(x.shape, geo), geo)
    y = _copy(taps[0])
    for view in taps[1:]:
        np.add(y, view, out=y)
    return y


def window_sum_adjoint(g, geo, x_shape):
    """The adjoint of :func:`window_sum_forward`: every input cell gets the sum of ``g`` over the windows
    covering it."""
    out, dxp = _padded_gradient(g, geo, x_shape)
    if geo.disjoint():  # one broadcast copy into every tap of every window
        np.copyto(tap_major(dxp, out, geo, writeable=True), g)
    else:
        for _, index in _taps(out, geo):
            dxp[index] += g
    return unpad_spatial(dxp, geo.pads, x_shape)


def window_counts(spatial, geo, dtype) -> np.ndarray:
    """How many real (unpadded) cells each window covers, shaped ``(1, *O, 1)``."""
    ones = np.ones((1,) + tuple(spatial) + (1,), dtype=dtype)
    return window_sum_forward(ones, geo)


# ---------------------------------------------------------------------------------------------------
# primitives


class MaxPool(Function):
    """y[n, o, c] = max over the window of x (padding never wins).

    vjp: g goes to the window's first maximum (row-major), MaxPoolScatter(g).
    ``kink_state``: the winning tap of every window (changes when another element takes over).
    """

    @staticmethod
    def forward(ctx, x, geo):
        y, idx = max_pool_forward(x, geo)
        ctx.save_for_backward(idx)
        return y

    @staticmethod
    def vjp(ctx, g):
        return (MaxPoolScatter.apply(g, idx=ctx.saved[0], geo=ctx.params["geo"], x_shape=ctx.inputs[0].shape),)

    @staticmethod
    def kink_state(x, geo):
        return max_pool_forward(x, geo)[1]


class MaxPoolScatter(Function):
    """dx = g placed at each window's winning tap (``idx``), summed where windows overlap.   vjp: MaxPoolGather."""

    @staticmethod
    def forward(ctx, g, idx, geo, x_shape):
        return scatter_taps(g, idx, geo, x_shape)

    @staticmethod
    def vjp(ctx, c):
        return (MaxPoolGather.apply(c, idx=ctx.params["idx"], geo=ctx.params["geo"]),)


class MaxPoolGather(Function):
    """y = c read at each window's winning tap (``idx``).   vjp: MaxPoolScatter."""

    @staticmethod
    def forward(ctx, c, idx, geo):
        return gather_taps(c, idx, geo)

    @staticmethod
    def vjp(ctx, g):
        p = ctx.params
        return (MaxPoolScatter.apply(g, idx=p["idx"], geo=p["geo"], x_shape=ctx.inputs[0].shape),)


class WindowSum(Function):
    """y = sum of x over each window (zero padding).   vjp: WindowSumAdjoint(g)."""

    @staticmethod
    def forward(ctx, x, geo):
        return window_sum_forward(x, geo)

    @staticmethod
    def vjp(ctx, g):
        return (WindowSumAdjoint.apply(g, geo=ctx.params["geo"], x_shape=ctx.inputs[0].shape),)


class WindowSumAdjoint(Function):
    """dx[cell] = sum of g over the windows that cover the cell.   vjp: WindowSum(c)."""

    @staticmethod
    def forward(ctx, g, geo, x_shape):
        return window_sum_adjoint(g, geo, x_shape)

    @staticmethod
    def vjp(ctx, c):
        return (WindowSum.apply(c, geo=ctx.params["geo"]),)


class SafeRoot(Function):
    """y = s^(1/p) for s >= 0.   vjp: g * (1/p) s^(1/p - 1) where s > 0 and 0 where s = 0 (never NaN)."""

    @staticmethod
    def forward(ctx, s, p):
        return np.sqrt(s) if p == 2 else np.power(s, 1.0 / p)

    @staticmethod
    def vjp(ctx, g):
        s = ctx.inputs[0]
        p = ctx.params["p"]
        positive = s.data > 0
        safe = elementwise.where(positive, s, constant(np.ones_like(s.data)))
        slope = elementwise.pow_scalar(safe, 1.0 / p - 1.0) * (1.0 / p)
        return (elementwise.where(positive, g * slope, constant(np.zeros_like(g.data))),)


def max_pool(x, geo):
    return MaxPool.apply(x, geo=geo)


def window_sum(x, geo):
    return WindowSum.apply(x, geo=geo)


def safe_root(s, p):
    return SafeRoot.apply(s, p=p)


# ---------------------------------------------------------------------------------------------------
# indices and unpooling (PyTorch's return_indices / max_unpool)


def flat_indices(idx, geo: PoolGeometry, x_shape) -> np.ndarray:
    """PyTorch's max-pool indices from the winning taps ``idx`` ``(N, *O, C)``: the row-major flat index,
    over the input's (unpadded) spatial axes, of the cell holding each window's first maximum.

    Along axis ``i`` the winner sits at ``o * S + k * r - before`` for its tap ``k`` (``idx`` unravelled over
    ``pool``); ``flat = sum_i pos_i * prod(W_{i+1:})``.
    """
    d = geo.rank
    taps = np.unravel_index(idx, geo.pool)
    flat = np.zeros(idx.shape, np.int64)
    for i, (o, s, r, (b, _)) in enumerate(zip(idx.shape[1:1 + d], geo.strides, geo.dilation, geo.pads,
                                             strict=True)):
        along = np.arange(o).reshape((1,) * (1 + i) + (o,) + (1,) * (d - i))
        flat = flat * x_shape[1 + i] + (along * s + taps[i] * r - b)
    return flat


def unpool_plan(indices, out_shape) -> tuple[np.ndarray, np.ndarray]:
    """For ``indices`` ``(N, *O, C)`` into the spatial cells of ``out_shape`` ``(N, *S, C)``: each element's
    flat position in the output and whether it is the LAST element (row-major) writing there (the one whose
    value the output keeps, as PyTorch's sequential CPU loop)."""
    n, c = out_shape[0], out_shape[-1]
    cells = math.prod(out_shape[1:-1])
    batch = np.arange(n).reshape((n,) + (1,) * (indices.ndim - 1))
    keys = ((batch * cells + indices) * c + np.arange(c)).ravel()
    last = np.zeros(math.prod(out_shape), np.int64) - 1
    np.maximum.at(last, keys, np.arange(keys.size))
    return keys, last[keys] == np.arange(keys.size)


class MaxUnpool(Function):
    """y (``out_shape``, zero elsewhere) with ``y.flat[keys[m]] = x.flat[m]`` for the elements ``m`` that are
    ``winners`` (see :func:`unpool_plan`).   vjp: dx = UnpoolGather(g): ``g.flat[keys] * winners``."""

    @staticmethod
    def forward(ctx, x, keys, winners, out_shape):
        y = np.zeros(math.prod(out_shape), x.dtype)
        y[keys[winners]] = x.ravel()[winners]
        return y.reshape(out_shape)

    @staticmethod
    def vjp(ctx, g):
        keys, winners = ctx.params["keys"], ctx.params["winners"]
        return (UnpoolGather.apply(g, keys=keys, winners=winners, x_shape=ctx.inputs[0].shape),)


class UnpoolGather(Function):
    """dx = ``g.flat[keys] * winners`` shaped ``x_shape`` (the adjoint of MaxUnpool).   vjp: MaxUnpool(c)."""

    @staticmethod
    def forward(ctx, g, keys, winners, x_shape):
        return np.where(winners, g.ravel()[keys], 0).astype(g.dtype).reshape(x_shape)

    @staticmethod
    def vjp(ctx, c):
        p = ctx.params
        return (MaxUnpool.apply(c, keys=p["keys"], winners=p["winners"], out_shape=ctx.inputs[0].shape),)


def max_unpool(x, indices, out_shape):
    """Channels-last unpooling of Tensor ``x`` by the int array ``indices`` into ``out_shape``."""
    keys, winners = unpool_plan(indices, out_shape)
    return MaxUnpool.apply(x, keys=keys, winners=winners, out_shape=tuple(out_shape))
