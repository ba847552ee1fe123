"""Convolution, relu and a non-overlapping max-pool as one primitive.

``z = max_pool(relu(conv(x, w) + b))`` (channels-last, conv geometry ``geo`` as in
:mod:`tinygrad_cnn.ops.conv`, pool windows ``P`` with strides ``P`` and no
padding, so ``Q = floor(O / P)`` pooled cells per axis). It computes exactly what
the two primitives compute one after the other, and is what ``Sequential`` runs
for a ``Conv*D(activation="relu")`` followed by such a ``MaxPooling*D``.

Why one primitive: the conv's GEMM rows can be ordered pool-tap-major, row
``(p, n, q)`` for the conv output cell ``o = q*P + p``. The pool then reads ``prod(P)``
contiguous blocks of the GEMM's output (no strided gather), the vjp writes the
winners' cotangent into the same contiguous blocks (no strided scatter), and
relu folds into the pool: ``max_pool(relu(y)) = relu(max_pool(y))`` (relu is monotone),
and the pool's running maximum simply starts at 0 instead of at the first tap
(:func:`tinygrad_cnn.ops.pool.first_max` with ``initial=0``): no relu pass over the conv's
output. The winner of a window is positive iff the pooled value is, so the cotangent that
reaches the conv is ``g * [z > 0]`` at the winning tap and 0 elsewhere (relu'(0) = 0); a
window whose maximum is not positive is won by no tap, so the vjp needs no relu mask at all.

Gradients, with ``G`` that pool-tap-major cotangent of the conv output: the kernel
and bias gradients are ONE GEMM ``[columns | 1]^T G`` (the columns carry a ones
column when the bias is folded); the input gradient puts ``G`` into the conv's
output layout with one strided copy and runs the conv's own adjoint
(:func:`tinygrad_cnn.ops.conv.conv_input_adjoint`, one GEMM per kernel tap).
With ``create_graph`` the vjp is built from the differentiable primitives
(``MaxPoolScatter`` then the conv's vjp), so higher orders work as for the unfused pair.
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn.conv_arithmetic import ConvGeometry, PoolGeometry
from tinygrad_cnn.function import Function
from tinygrad_cnn.modes import is_grad_enabled
from tinygrad_cnn.ops import buffers
from tinygrad_cnn.ops.conv import (
    ChannelSum,
    ConvKernelGrad,
    ConvTranspose,
    columns,
    conv_forward,
    conv_input_adjoint,
    folds_bias,
    kernel_matrix,
    matrix,
    pad_spatial,
    windows,
)
from tinygrad_cnn.ops.movement import constant
from tinygrad_cnn.ops.pool import MaxPoolScatter, first_max, max_pool_forward, tap_major, tap_shares


def pooled_sizes(x_shape, geo: ConvGeometry, pool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The conv's output sizes ``O`` and the pooled sizes ``Q = floor(O / P)``."""
    out = geo.output_size(x_shape[1:-1])
    return out, tuple(o // p for o, p in zip(out, pool, strict=True))


def _pool_geometry(pool) -> PoolGeometry:
    """The max-pool's own geometry: windows ``pool``, strides ``pool``, no padding."""
    return PoolGeometry(tuple(pool), tuple(pool), ((0, 0),) * len(pool))


def _pool_major(xp, pool, pooled, geo):
    """View ``(*P, N, *Q, *K, C)`` of the padded input: ``[p, n, q, k, c] = xp[n, (q*P + p)*s + k*r, c]``.

    The conv's window view over the covered outputs ``Q*P``, each output axis split into ``(Q, P)`` and the
    ``P`` axes moved to the front.
    """
    d = len(pool)
    covered = tuple(q * p for q, p in zip(pooled, pool, strict=True))
    view = windows(xp, covered, geo.ksize, geo.strides, geo.dilation)  # (N, *Q*P, *K, C)
    split = sum(((q, p) for q, p in zip(pooled, pool, strict=True)), ())
    view = np.reshape(view, view.shape[:1] + split + view.shape[1 + d:], copy=False)
    return np.moveaxis(view, tuple(2 + 2 * i for i in range(d)), tuple(range(d)))


class ConvReluMaxPool(Function):
    """z = max_pool(relu(conv(x, w) + b)) for pool windows ``pool`` that do not overlap (see the module docstring).

    vjp: G = g * [z > 0] at each window's first maximum (0 elsewhere; the forward's ``idx`` names no tap for
    a window with z = 0) in the conv's output layout, then
    dx = ConvTranspose(G, w), dw = ConvKernelGrad(x, G), db = sum of G. ``kink_state``: the relu sign
    pattern of the conv's output and the pool's winners.
    """

    @staticmethod
    def forward(ctx, x, w, *bias, geo, pool):
        b = bias[0] if bias else None
        fold = folds_bias(x, w, b, geo.groups)
        pooled = pooled_sizes(x.shape, geo, pool)[1]
        cols = columns(_pool_major(pad_spatial(x, geo.pads), pool, pooled, geo), geo.ksize, ones=fold)
        cols = matrix(cols)  # im2col, rows in pool-tap-major order
        wm = kernel_matrix(w, 1)
        if fold:
            wm = np.concatenate([wm, b.reshape(1, -1)])
        y = np.matmul(cols, wm, out=buffers.empty((cols.shape[0], w.shape[-1]), np.result_type(cols, wm)))
        if b is not None and not fold:
            y += b
        taps = math.prod(pool)
        # relu(max_t y_t) = max(0, max_t y_t); a window whose maximum is not positive is won by no tap
        z, idx = first_max(list(y.reshape(taps, y.shape[0] // taps, w.shape[-1])), initial=0)
        ctx.save_for_backward(cols if ctx.needs_input_grad[1] or (fold and ctx.needs_input_grad[2]) else None,
                              idx)
        return z.reshape((x.shape[0],) + pooled + (w.shape[-1],))

    @staticmethod
    def vjp(ctx, g):
        if is_grad_enabled():
            return _vjp_by_primitives(ctx, g)
        x, w = ctx.inputs[:2]
        geo, pool = ctx.params["geo"], ctx.params["pool"]
        cols, idx = ctx.saved
        c_out = w.shape[-1]
        winners = tap_shares(matrix(g.data), idx, math.prod(pool))  # G, pool-tap-major (relu in idx)
        gm = winners.reshape(math.prod(winners.shape[:-1]), c_out)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:  # G in the conv's output layout (one strided copy), then the conv's adjoint
            out, pooled = pooled_sizes(x.shape, geo, pool)
            covered = tuple(q * p for q, p in zip(pooled, pool, strict=True))
            gy = (buffers.empty if covered == out else buffers.zeros)((x.shape[0],) + out + (c_out,), gm.dtype)
            np.copyto(tap_major(gy, pooled, _pool_geometry(pool), writeable=True), winners.reshape(
                tuple(pool) + g.shape))
            gx = constant(conv_input_adjoint(gy, w.data, geo, x.shape))
        with_bias = len(ctx.inputs) == 3
        if cols is not None:
            both = np.matmul(cols.T, gm)  # (T*C [+ 1], C_out): the last row is the bias gradient when it was folded
            taps_c = math.prod(w.shape[:-1])
            if ctx.needs_input_grad[1]:
                gw = constant(both[:taps_c].reshape(w.shape))
            if with_bias and ctx.needs_input_grad[2] and both.shape[0] > taps_c:
                gb = constant(both[taps_c])
        if with_bias and gb is None and ctx.needs_input_grad[2]:
            gb = constant(np.ones(gm.shape[0], gm.dtype) @ gm)
        return (gx, gw, gb) if with_bias else (gx, gw)

    @staticmethod
    def kink_state(x, w, *bias, geo, pool):
        y = conv_forward(x, w, geo, bias=bias[0] if bias else None)[0]
        relu = np.maximum(y, 0)
        winners = max_pool_forward(relu, _pool_geometry(pool))[1]
        return np.concatenate([(y > 0).ravel(), winners.ravel()]).astype(np.int64)


def _vjp_by_primitives(ctx, g):
    """The same vjp recorded with differentiable primitives (for ``create_graph``)."""
    x, w = ctx.inputs[:2]
    geo, pool = ctx.params["geo"], ctx.params["pool"]
    idx = ctx.saved[1]
    y_shape = (x.shape[0],) + pooled_sizes(x.shape, geo, pool)[0] + (w.shape[-1],)
    gy = MaxPoolScatter.apply(g, idx=idx.reshape(g.shape), geo=_pool_geometry(pool), x_shape=y_shape)
    gx = ConvTranspose.apply(gy, w, geo=geo, x_shape=x.shape) if ctx.needs_input_grad[0] else None
    gw = ConvKernelGrad.apply(x, gy, geo=geo, w_shape=w.shape) if ctx.needs_input_grad[1] else None
    if len(ctx.inputs) == 3:
        return gx, gw, ChannelSum.apply(gy) if ctx.needs_input_grad[2] else None
    return gx, gw


def fusable(geo: ConvGeometry, pool: PoolGeometry, x_shape) -> bool:
    """The fused primitive applies: one group, pool stride == pool size, no pool padding or dilation, >= 1
    pooled cell."""
    if (geo.groups != 1 or pool.strides != pool.pool or any(a or b for a, b in pool.pads)
            or any(r != 1 for r in pool.dilation)):
        return False
    return all(q >= 1 for q in pooled_sizes(x_shape, geo, pool.pool)[1])


def conv_relu_max_pool(x, w, b=None, *, geo, pool):
    """``max_pool(relu(conv(x, w) + b))`` of channels-last Tensors as one primitive (see :func:`fusable`)."""
    args = (x, w) if b is None else (x, w, b)
    return ConvReluMaxPool.apply(*args, geo=geo, pool=tuple(pool))
