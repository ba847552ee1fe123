"""Shape and indexing primitives: reshape, transpose, broadcast, pad, index, scatter, concatenate."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.function import Function
from tinygrad_cnn.ops._util import unbroadcast
from tinygrad_cnn.tensor import Tensor


def constant(array: np.ndarray) -> Tensor:
    """A Tensor outside the graph."""
    return Tensor._from_op(array, None)


class Reshape(Function):
    """y = x with shape ``shape`` (same elements, row-major).   vjp: g reshaped to x's shape."""

    @staticmethod
    def forward(ctx, x, shape):
        try:
            return np.reshape(x, shape)
        except ValueError as exc:
            raise ValueError(f"reshape: cannot reshape an array of shape {x.shape} ({x.size} elements) "
                             f"into shape {shape}") from exc

    @staticmethod
    def vjp(ctx, g):
        return (reshape(g, ctx.inputs[0].shape),)


class Transpose(Function):
    """y = x with its axes permuted: y.shape[i] = x.shape[axes[i]].   vjp: g permuted by the inverse."""

    @staticmethod
    def forward(ctx, x, axes):
        return np.transpose(x, axes)

    @staticmethod
    def vjp(ctx, g):
        axes = ctx.params["axes"]  # non-negative (``transpose`` normalises them), so argsort inverts the permutation
        inverse = None if axes is None else tuple(np.argsort(axes))
        return (transpose(g, inverse),)


class BroadcastTo(Function):
    """y = x broadcast to ``shape``.   vjp: g summed back to x's shape."""

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def vjp(ctx, g):
        return (unbroadcast(g, ctx.inputs[0].shape),)


class Pad(Function):
    """y = x surrounded by zeros, ``pad_width[i] = (before, after)`` on axis i.   vjp: the interior of g."""

    @staticmethod
    def forward(ctx, x, pad_width):
        return np.pad(x, pad_width)

    @staticmethod
    def vjp(ctx, g):
        shape = ctx.inputs[0].shape
        # explicit stops, never x[p:-p], which is empty for p = 0
        index = tuple(slice(before, before + n) for (before, _), n in zip(ctx.params["pad_width"], shape, strict=True))
        return (getitem(g, index),)


def _is_basic(index: tuple) -> bool:
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in index)


class GetItem(Function):
    """y = x[index] (NumPy basic or advanced indexing).   vjp: g scattered into zeros, repeats adding up."""

    @staticmethod
    def forward(ctx, x, index):
        try:
            return x[index]
        except (IndexError, TypeError) as exc:
            raise IndexError(f"getitem: index {index!r} is invalid for shape {x.shape}: {exc}") from exc

    @staticmethod
    def vjp(ctx, g):
        return (ScatterAdd.apply(g, shape=ctx.inputs[0].shape, index=ctx.params["index"]),)


class ScatterAdd(Function):
    """y = zeros(shape) with y[index] += g (repeated indices add up).   vjp: g[index]."""

    @staticmethod
    def forward(ctx, g, shape, index):
        out = np.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g
        else:
            np.add.at(out, index, g)
        return out

    @staticmethod
    def vjp(ctx, g):
        return (getitem(g, ctx.params["index"]),)


class Concatenate(Function):
    """y = the inputs joined along ``axis``.   vjp: g cut back into the inputs' extents."""

    @staticmethod
    def forward(ctx, *arrays, axis):
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError as exc:
            shapes = [a.shape for a in arrays]
            raise ValueError(f"concatenate: shapes {shapes} must agree on every axis but axis={axis}") from exc

    @staticmethod
    def vjp(ctx, g):
        axis = ctx.params["axis"] % g.ndim
        out, start = [], 0
        for t in ctx.inputs:
            stop = start + t.shape[axis]
            index = (slice(None),) * axis + (slice(start, stop),)
            out.append(getitem(g, index))
            start = stop
        return tuple(out)


def reshape(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if not all(validation.is_int(n) and n >= -1 for n in shape) or sum(n == -1 for n in shape) > 1:
        raise ValueError(f"reshape: shape={shape!r} must hold non-negative ints and at most one -1 (input shape "
                         f"{x.shape})")
    shape = tuple(int(n) for n in shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


def transpose(x: Tensor, axes=None) -> Tensor:
    """``x`` with its axes permuted as NumPy's ``transpose`` (``None`` reverses them; negative axes count from the
    end). The axes are normalised to ``range(x.ndim)`` here, once, so the vjp's inverse permutation is right."""
    if axes is None:
        return Transpose.apply(x, axes=None)
    axes = tuple(axes)
    if (not all(validation.is_int(a) and -x.ndim <= a < x.ndim for a in axes)
            or sorted(int(a) % x.ndim for a in axes) != list(range(x.ndim))):
        raise ValueError(f"transpose: axes {axes} are not a permutation of range({x.ndim}) (negative axes count "
                         f"from the end; input shape {x.shape})")
    return Transpose.apply(x, axes=tuple(int(a) % x.ndim for a in axes))


def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


def normalize_pad_width(pad_width, ndim: int) -> tuple[tuple[int, int], ...]:
    """NumPy's ``pad_width`` forms (int, (before, after), or one pair per axis) as one pair per axis."""
    try:
        pairs = np.broadcast_to(np.asarray(pad_width), (ndim, 2))
    except ValueError as exc:
        raise ValueError(f"pad: pad_width={pad_width!r} must be an int, a (before, after) pair or one pair "
                         f"per axis of the rank-{ndim} input") from exc
    if not np.issubdtype(pairs.dtype, np.integer) or (pairs < 0).any():
        raise ValueError(f"pad: pad_width={pad_width!r} must hold non-negative integers")
    return tuple((int(b), int(a)) for b, a in pairs)


def pad(x: Tensor, pad_width) -> Tensor:
    widths = normalize_pad_width(pad_width, x.ndim)
    if not any(b or a for b, a in widths):
        return x
    return Pad.apply(x, pad_width=widths)


def _normalize_index(index) -> tuple:
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        if isinstance(item, list):
            item = np.asarray(item)
        if isinstance(item, np.ndarray) and not (np.issubdtype(item.dtype, np.integer) or item.dtype == bool):
            raise IndexError(f"getitem: index arrays must be integer or boolean; got dtype {item.dtype}")
        out.append(item)
    return tuple(out)


def getitem(x: Tensor, index) -> Tensor:
    return GetItem.apply(x, index=_normalize_index(index))


def concatenate(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one Tensor; got an empty sequence")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join Tensors of equal shape along a new axis (each one reshaped to have it, then concatenated)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one Tensor; got an empty sequence")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all Tensors must have the same shape; got {sorted(shapes)}")
    ndim = tensors[0].ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"stack: axis={axis} is out of range for a result of rank {ndim}")
    axis %= ndim
    shape = tensors[0].shape[:axis] + (1,) + tensors[0].shape[axis:]
    return concatenate([reshape(t, shape) for t in tensors], axis=axis)
