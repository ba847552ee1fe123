"""The convolution family: conv, its input adjoint (conv_transpose) and its kernel gradient.

Everything here is channels-last, ``x`` of shape ``(N, *S, C)`` with ``d = len(S)``
spatial axes (1, 2 or 3), kernel ``w`` of shape ``(*K, C // G, C_out)`` (Keras'
layout) with ``G`` groups, output ``y`` of shape ``(N, *O, C_out)``. With the
input padded by ``pads[i] = (before, after)`` zeros (a negative amount crops),
strides ``s`` and dilation ``r``, the op is a cross-correlation:

    y[n, o, co] = b[co] + sum_{k, ci} xpad[n, o * s + k * r, G(co) * C/G + ci] * w[k, ci, co]

where ``G(co) = co // (C_out / G)`` is the output channel's group.

Three primitives, each a bilinear map, whose vjps are expressed with each other:

* ``Conv(x, w[, b])``: the formula above. As a matrix, ``y = A_w x``.
* ``ConvTranspose(g, w)``: the adjoint ``A_w^T g`` (x-shaped), the input gradient.
* ``ConvKernelGrad(x, g)``: ``dw[k, ci, co] = sum_{n, o} xpad[n, o*s + k*r, .] g[n, o, co]``.

From ``<A_w x, g> = <x, A_w^T g> = <w, KG(x, g)>``:
Conv: dx = ConvTranspose(g, w), dw = ConvKernelGrad(x, g), db = sum of g over (N, *O);
ConvTranspose(g, w) with cotangent c: dg = Conv(c, w), dw = ConvKernelGrad(c, g);
ConvKernelGrad(x, g) with cotangent c: dx = ConvTranspose(g, c), dg = Conv(x, c).
So ``grad(..., create_graph=True)`` through a conv gives gradients of any order.

Speed: the forward is one im2col copy (an ``as_strided`` view of the padded input,
``(N*prod(O), prod(K)*C)``, plus a ones column that carries the bias through the GEMM) and one
GEMM; the kernel gradient is one GEMM reusing
the forward's columns; the input gradient is, per kernel tap, one GEMM ``g @ w_k^T``
into one reused buffer, added into the input gradient by one strided slice (no
``np.add.at``, no column matrix). Groups run as batched matmuls over the group axis.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_cnn.conv_arithmetic import ConvGeometry
from tinygrad_cnn.function import Function
from tinygrad_cnn.ops import buffers, elementwise, movement

# ---------------------------------------------------------------------------------------------------
# array helpers (channels-last, spatial axes 1..d)


def pad_spatial(x: np.ndarray, pads, fill=0.0) -> np.ndarray:
    """``x`` with ``pads[i] = (before, after)`` cells of ``fill`` around spatial axis ``i`` (negative crops)."""
    if all(b == 0 and a == 0 for b, a in pads):
        return x
    d = len(pads)
    sizes = tuple(n + b + a for n, (b, a) in zip(x.shape[1:1 + d], pads, strict=False))
    out = buffers.full((x.shape[0],) + sizes + x.shape[1 + d:], fill, x.dtype)
    src = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(x.shape[1:1 + d], pads, strict=False))
    dst = tuple(slice(max(b, 0), m - max(a, 0)) for m, (b, a) in zip(sizes, pads, strict=False))
    out[(slice(None),) + dst] = x[(slice(None),) + src]
    return out


def unpad_spatial(xp: np.ndarray, pads, shape) -> np.ndarray:
    """Adjoint of :func:`pad_spatial` (fill 0): the cells of ``xp`` that came from ``x``; cropped cells get 0."""
    if all(b == 0 and a == 0 for b, a in pads):
        return xp
    d = len(pads)
    src = tuple(slice(max(b, 0), m - max(a, 0)) for m, (b, a) in zip(xp.shape[1:1 + d], pads, strict=False))
    if all(b >= 0 and a >= 0 for b, a in pads):
        return xp[(slice(None),) + src]
    out = np.zeros(shape, dtype=xp.dtype)
    dst = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(shape[1:1 + d], pads, strict=False))
    out[(slice(None),) + dst] = xp[(slice(None),) + src]
    return out


def windows(xp: np.ndarray, out, ksize, strides, dilation, writeable=False) -> np.ndarray:
    """View ``(N, *O, *K, C...)`` of the padded input: ``view[n, o, k] = xp[n, o*s + k*r]``.

    Read-only unless ``writeable``, which is safe only when no two windows share a cell (stride >= kernel).
    """
    d = len(out)
    st = xp.strides
    shape = (xp.shape[0],) + tuple(out) + tuple(ksize) + xp.shape[1 + d:]
    strides = ((st[0],) + tuple(st[1 + i] * strides[i] for i in range(d))
               + tuple(st[1 + i] * dilation[i] for i in range(d)) + st[1 + d:])
    return as_strided(xp, shape, strides, writeable=writeable)


def tap_slices(out, ksize, strides, dilation):
    """For each kernel tap ``k`` (row-major), the index of ``xp`` cells ``o*s + k*r`` for all ``o``."""
    for k in itertools.product(*(range(n) for n in ksize)):
        yield k, (slice(None),) + tuple(slice(ki * r, ki * r + s * (o - 1) + 1, s)
                                        for ki, o, s, r in zip(k, out, strides, dilation, strict=False))


def tap_overlaps(out, spatial, geo):
    """For each kernel tap ``k`` (row-major), the output cells whose tap lands inside the unpadded input.

    Along each axis the tap reads input cell ``i = o*s + k*r - b`` (``b`` the padding before); it is a real
    cell for ``o`` in ``[ceil((b - k*r) / s), floor((X - 1 - k*r + b) / s)]`` clipped to ``[0, O - 1]``.
    Yields ``(output index, input index)`` (``(None, None)`` when the tap only ever reads padding).
    """
    lead = (slice(None),)
    for k in itertools.product(*(range(n) for n in geo.ksize)):
        o_index, x_index = lead, lead
        for ki, o, n, s, r, (b, _) in zip(k, out, spatial, geo.strides, geo.dilation, geo.pads,
                                          strict=False):
            offset = ki * r - b
            lo, hi = max(0, -(offset // s)), min(o - 1, (n - 1 - offset) // s)
            if hi < lo:
                o_index = x_index = None
                break
            o_index += (slice(lo, hi + 1),)
            x_index += (slice(lo * s + offset, hi * s + offset + 1, s),)
        yield o_index, x_index


def matrix(a: np.ndarray) -> np.ndarray:
    """``a`` as a ``(prod(leading axes), last axis)`` matrix. The sizes are explicit because NumPy cannot infer a
    ``-1`` when another size is 0 (an empty batch, zero filters)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def columns(view, ksize, ones=False):
    """The im2col matrix of a window view ``(*lead, *K, C)``: ``(*lead, T*C)`` (T = taps), from the buffer cache.

    ``ones=True`` adds a last column of ones, so that one GEMM with the kernel matrix stacked on the bias
    row gives ``conv + b`` (no separate bias pass over the output). With one input channel the copy goes
    one tap at a time (a plain strided copy each, about half the time of copying the window view, whose
    innermost axis is a single element).
    """
    taps, c = math.prod(ksize), view.shape[-1]
    cols = buffers.empty(view.shape[:-len(ksize) - 1] + (taps * c + int(ones),), view.dtype)
    if c == 1:
        for t, k in enumerate(itertools.product(*(range(n) for n in ksize))):
            cols[..., t] = view[(Ellipsis,) + k + (0,)]
    else:
        np.copyto(np.reshape(cols[..., :taps * c], view.shape, copy=False), view)
    if ones:
        cols[..., -1] = 1
    return cols


def _im2col(x, geo, ones=False):
    """Columns ``(M, T*C [+ 1])`` for one group (see :func:`columns`) or ``(G, M, T*C/G)`` for several
    (M = N*prod(O), T = taps)."""
    out = geo.output_size(x.shape[1:-1])
    view = windows(pad_spatial(x, geo.pads), out, geo.ksize, geo.strides, geo.dilation)
    m, groups = x.shape[0] * math.prod(out), geo.groups
    if groups == 1:
        return matrix(columns(view, geo.ksize, ones)), out
    view = view.reshape(view.shape[:-1] + (groups, x.shape[-1] // groups))
    view = np.moveaxis(view, -2, 0)
    return view.reshape(groups, m, math.prod(view.shape[2 + len(out):])), out


def kernel_matrix(w, groups):
    """``(*K, Cg, C_out)`` as ``(T*Cg, C_out)`` or, grouped, ``(G, T*Cg, C_out/G)``."""
    if groups == 1:
        return matrix(w)
    w3 = w.reshape(math.prod(w.shape[:-1]), groups, w.shape[-1] // groups)
    return np.moveaxis(w3, 1, 0)


def _out_matrix(g, groups):
    """Output-shaped ``g`` as ``(M, C_out)`` or ``(G, M, C_out/G)``."""
    g2 = matrix(g)
    if groups == 1:
        return g2
    return np.moveaxis(g2.reshape(g2.shape[0], groups, g2.shape[1] // groups), 1, 0)


def folds_bias(x, w, bias, groups) -> bool:
    """The bias rides in the GEMM (a ones column) when there is one group and all dtypes agree."""
    return groups == 1 and bias is not None and x.dtype == w.dtype == bias.dtype


def conv_forward(x, w, geo, cols=None, bias=None):
    """``y`` (channels-last, ``+ bias`` when given) and the im2col columns it used.

    With :func:`folds_bias` the columns carry a last column of ones and the kernel matrix a last row
    ``bias``; :func:`conv_kernel_grad` ignores that column.
    """
    fold = folds_bias(x, w, bias, geo.groups)
    if cols is None:
        cols, out = _im2col(x, geo, ones=fold)
    else:
        out = geo.output_size(x.shape[1:-1])
    wm = kernel_matrix(w, geo.groups)
    if fold:
        wm = np.concatenate([wm, bias.reshape(1, -1)])
    if geo.groups == 1:
        y = np.matmul(cols, wm, out=buffers.empty((cols.shape[0], wm.shape[-1]), np.result_type(cols, wm)))
    else:
        y = np.moveaxis(np.matmul(cols, wm), 0, 1)
    y = y.reshape((x.shape[0],) + out + (w.shape[-1],))
    if bias is not None and not fold:
        y = y + bias
    return y, cols


def flipped_kernel(w):
    """``wf[k', co, ci] = w[K-1-k', ci, co]``: the kernel of the adjoint of a stride-1 conv (contiguous copy)."""
    d = w.ndim - 2
    return np.ascontiguousarray(np.swapaxes(w[(slice(None, None, -1),) * d], -1, -2))


def adjoint_geometry(geo: ConvGeometry, out, x_shape) -> ConvGeometry:
    """For stride 1 and one group, ``A_w^T g = conv(g, flipped w)`` with these pads and the same dilation.

    ``dx[i] = sum_k g[i + b - k r] w[k]``; with ``k' = K-1-k`` that reads ``g`` at ``i + k' r - ((K-1) r - b)``,
    a cross-correlation of ``g`` padded by ``(K-1) r - b`` before and ``X - O + b`` after (negative crops).
    """
    d = geo.rank
    return geo.with_pads(((k - 1) * r - b, n - o + b) for k, r, (b, _), n, o in
                         zip(geo.ksize, geo.dilation, geo.pads, x_shape[1:1 + d], out, strict=False))


def _adjoint_as_conv(geo) -> bool:
    return geo.groups == 1 and all(s == 1 for s in geo.strides)


def conv_input_adjoint(g, w, geo, x_shape):
    """``A_w^T g``, the x-shaped input gradient: ``dx[n, o*s + k*r - b, ci] += sum_co g[n, o, co] w[k, ci, co]``.

    Stride 1, one group and ``C_out < C_in``: one im2col of the padded ``g`` and one GEMM with the flipped
    kernel (a conv; its columns are ``T*C_out`` wide, narrower than the ``T*C_in`` of the other way).
    Otherwise, per kernel tap ``k``: one GEMM ``g @ w_k^T`` (batched over groups) into one reused
    ``(M, C_in)`` buffer, then one strided add of the cells that land inside the input (see
    :func:`tap_overlaps`), straight into ``dx``: no padded copy, no column matrix ``T`` times the input.
    A tap that reaches every input cell once (:func:`_covering_tap`, one group) runs first and its GEMM
    writes ``dx`` directly (no zero fill).
    """
    groups, d = geo.groups, len(geo.ksize)
    out = g.shape[1:-1]
    if _adjoint_as_conv(geo) and w.shape[-1] < w.shape[-2]:
        return conv_forward(g, flipped_kernel(w), adjoint_geometry(geo, out, x_shape))[0]
    dtype = np.result_type(g.dtype, w.dtype)
    cg, co = w.shape[-2], w.shape[-1] // groups
    taps = math.prod(geo.ksize)
    wt = np.ascontiguousarray(np.transpose(w.reshape(taps, cg, groups, co), (0, 2, 3, 1)), dtype=dtype)
    gm = np.ascontiguousarray(np.moveaxis(g.reshape(math.prod(g.shape[:-1]), groups, co), 1, 0),
                              dtype=dtype)  # (G, M, C_out/G)
    slab = buffers.empty((groups,) + g.shape[:-1] + (cg,), dtype)  # one tap's (G, N, *O, Cg), reused
    overlaps = list(tap_overlaps(out, x_shape[1:1 + d], geo))
    first = _covering_tap(overlaps, out, x_shape[1:1 + d]) if groups == 1 else None
    if first is None:
        dx = buffers.zeros(x_shape, dtype)
    else:  # that tap's GEMM writes dx itself: no zero fill, one strided add fewer
        dx = buffers.empty(x_shape, dtype)
        np.matmul(gm[0], wt[first, 0], out=matrix(dx))
    dx_groups = dx.reshape(x_shape[:-1] + (groups, cg))
    slab_groups = np.moveaxis(slab, 0, -2)  # (N, *O, G, Cg) view
    shifted = groups == 1 and all(s == 1 for s in geo.strides) and tuple(out) == tuple(x_shape[1:1 + d])
    for t, (o_index, x_index) in enumerate(overlaps):
        if o_index is not None and t != first:
            np.matmul(gm, wt[t], out=slab.reshape(groups, math.prod(slab.shape[1:-1]), cg))
            if shifted:
                _add_shifted(dx, slab[0], o_index, x_index)
            else:
                dx_groups[x_index] += slab_groups[o_index]
    return dx


def _add_shifted(dx, part, o_index, x_index):
    """``dx[x_index] += part[o_index]`` for a stride-1 tap over an output grid the size of the input's, where
    every cell moves by the same offset: the cells of ``part`` outside ``o_index`` are set to 0 and the whole
    of ``part`` is added to ``dx`` at one constant offset of the flattened arrays, one contiguous add (NumPy
    runs a strided add that crops the second-to-last axis about 5x slower). Zeroed cells land on other cells
    or past the ends and add nothing; ``part`` is overwritten."""
    spatial = part.shape[1:-1]
    shift = 0
    for i, (o, xi, n) in enumerate(zip(o_index[1:], x_index[1:], spatial, strict=True)):
        lead = (slice(None),) * (1 + i)
        part[lead + (slice(0, o.start),)] = 0
        part[lead + (slice(o.stop, n),)] = 0
        shift += (xi.start - o.start) * (dx.strides[1 + i] // dx.itemsize)
    d, p = dx.reshape(-1), part.reshape(-1)
    d, p = (d[shift:], p[:p.size - shift]) if shift >= 0 else (d[:shift], p[-shift:])
    np.add(d, p, out=d)


def _covering_tap(overlaps, out, spatial):
    """The first kernel tap whose output cells map one-to-one onto every input cell (the centre tap of a
    stride-1 "same" conv), or None: its ``g @ w_k^T`` is the whole input gradient's first term, in place."""
    if tuple(out) != tuple(spatial):
        return None
    for t, (o_index, x_index) in enumerate(overlaps):
        if o_index is not None and all(
                (o.start, o.stop) == (0, n) and (xi.start, xi.stop, xi.step) == (0, n, 1)
                for o, xi, n in zip(o_index[1:], x_index[1:], spatial, strict=True)):
            return t
    return None


def conv_kernel_grad(x, g, geo, w_shape, cols=None):
    """``dw = columns^T @ g``: one GEMM (batched over groups)."""
    if cols is None:
        cols, _ = _im2col(x, geo)
    elif geo.groups == 1 and cols.shape[-1] != math.prod(geo.ksize) * x.shape[-1]:
        cols = cols[:, :-1]  # the forward's ones column (bias folded into its GEMM)
    gm = _out_matrix(g, geo.groups)
    dw = np.matmul(np.swapaxes(cols, -1, -2), gm)  # (T*Cg, C_out) or (G, T*Cg, C_out/G)
    if geo.groups > 1:
        dw = np.moveaxis(dw, 0, 1)
    return dw.reshape(w_shape)


# ---------------------------------------------------------------------------------------------------
# primitives


class Conv(Function):
    """y = conv(x, w) + b (channels-last, see the module docstring); with ``relu=True``, y = max(that, 0).

    vjp: with relu, first g <- g * [y > 0] (relu'(0) = 0; the mask is a constant, so higher orders stay
    right); then dx = ConvTranspose(g, w), dw = ConvKernelGrad(x, g), db = sum of g over every axis but
    the last. ``kink_state``: the sign pattern of the pre-activation when ``relu`` (empty otherwise).
    """

    @staticmethod
    def forward(ctx, x, w, *bias, geo, relu=False):
        y, cols = conv_forward(x, w, geo, bias=bias[0] if bias else None)
        if relu:
            np.maximum(y, 0, out=y)
        saved = ()
        if ctx.needs_input_grad[1]:
            saved = (cols,)
        if relu and any(ctx.needs_input_grad):
            saved = saved + (np.greater(y, 0, out=buffers.empty(y.shape, bool)),)
        ctx.save_for_backward(*saved)
        return y

    @staticmethod
    def vjp(ctx, g):
        x, w = ctx.inputs[:2]
        geo = ctx.params["geo"]
        saved = ctx.saved
        if ctx.params.get("relu"):
            g = elementwise.Mul.apply(g, movement.constant(saved[-1]))
            saved = saved[:-1]
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = ConvTranspose.apply(g, w, geo=geo, x_shape=x.shape)
        if ctx.needs_input_grad[1]:
            cols = saved[0] if saved else None
            gw = ConvKernelGrad.apply(x, g, geo=geo, w_shape=w.shape, cols=cols)
        if len(ctx.inputs) == 3:
            gb = ChannelSum.apply(g) if ctx.needs_input_grad[2] else None
            return gx, gw, gb
        return gx, gw

    @staticmethod
    def kink_state(x, w, *bias, geo, relu=False):
        if not relu:
            return np.zeros(0, dtype=bool)
        y = conv_forward(x, w, geo)[0]
        return (y + bias[0] if bias else y) > 0


class ConvTranspose(Function):
    """z = A_w^T g, the adjoint of ``Conv`` in its input (x-shaped, ``x_shape``).

    vjp (cotangent c, x-shaped): dg = Conv(c, w), dw = ConvKernelGrad(c, g).
    """

    @staticmethod
    def forward(ctx, g, w, geo, x_shape):
        return conv_input_adjoint(g, w, geo, x_shape)

    @staticmethod
    def vjp(ctx, c):
        g, w = ctx.inputs
        geo = ctx.params["geo"]
        dg = Conv.apply(c, w, geo=geo) if ctx.needs_input_grad[0] else None
        dw = ConvKernelGrad.apply(c, g, geo=geo, w_shape=w.shape) if ctx.needs_input_grad[1] else None
        return dg, dw


class ConvKernelGrad(Function):
    """dw = KG(x, g): dw[k, ci, co] = sum_{n, o} xpad[n, o*s + k*r, ci of group(co)] g[n, o, co].

    ``cols`` (optional) are the forward's im2col columns of ``x``, reused to skip a copy.
    vjp (cotangent c, kernel-shaped): dx = ConvTranspose(g, c), dg = Conv(x, c).
    """

    @staticmethod
    def forward(ctx, x, g, geo, w_shape, cols=None):
        return conv_kernel_grad(x, g, geo, w_shape, cols)

    @staticmethod
    def vjp(ctx, c):
        x, g = ctx.inputs
        geo = ctx.params["geo"]
        dx = ConvTranspose.apply(g, c, geo=geo, x_shape=x.shape) if ctx.needs_input_grad[0] else None
        dg = Conv.apply(x, c, geo=geo) if ctx.needs_input_grad[1] else None
        return dx, dg


class ChannelSum(Function):
    """y[c] = sum of g[..., c] over every other axis (a GEMV with ones).   vjp: c broadcast to g's shape."""

    @staticmethod
    def forward(ctx, g):
        g2 = matrix(g)
        return np.ones(g2.shape[0], dtype=g.dtype) @ g2

    @staticmethod
    def vjp(ctx, c):
        return (movement.broadcast_to(c, ctx.inputs[0].shape),)


def conv(x, w, b=None, *, geo: ConvGeometry, relu=False):
    """Channels-last convolution of Tensors ``x`` ``(N, *S, C)`` and ``w`` ``(*K, C/G, C_out)``, bias ``b``;
    ``relu=True`` applies max(., 0) inside the same primitive (no separate activation pass)."""
    extra = {"relu": True} if relu else {}
    return Conv.apply(x, w, geo=geo, **extra) if b is None else Conv.apply(x, w, b, geo=geo, **extra)


def conv_transpose(g, w, x_shape, *, geo: ConvGeometry):
    """The adjoint of :func:`conv` in its input: maps ``(N, *O, C_out)`` to ``x_shape``."""
    return ConvTranspose.apply(g, w, geo=geo, x_shape=tuple(x_shape))
