"""Shape and indexing primitives: reshape, transpose, broadcast and its adjoint (sum to a shape), pad (all modes),
index, scatter, concatenate."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.function import Function
from tinygrad_cnn.tensor import Tensor


def constant(array: np.ndarray) -> Tensor:
    """A Tensor outside the graph (``requires_grad=False``): no gradient flows into it.

    Args:
        array: a NumPy array (or array-like), wrapped as it is.
    """
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
        try:
            return np.broadcast_to(x, shape)
        except ValueError as exc:
            raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to shape {shape} (each axis of the "
                             f"input, aligned from the end, must be 1 or equal the target's)") from exc

    @staticmethod
    def vjp(ctx, g):
        return (unbroadcast(g, ctx.inputs[0].shape),)


class SumTo(Function):
    """y = x summed down to ``shape``, the adjoint of broadcasting: x of shape (*lead, *s) with s broadcastable
    to ``shape``-aligned axes is summed over the ``lead`` axes and over every axis where ``shape`` has 1 and x
    does not.   vjp: g broadcast back to x's shape (so BroadcastTo and SumTo are each other's vjp).
    """

    @staticmethod
    def forward(ctx, x, shape):
        lead = x.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
        return np.sum(x, axis=axes).reshape(shape)

    @staticmethod
    def vjp(ctx, g):
        return (broadcast_to(g, ctx.inputs[0].shape),)


class Pad(Function):
    """y = x surrounded by the constant ``value``, ``pad_width[i] = (before, after)`` (both >= 0) on axis i.

    vjp: the interior of g (``value`` is a constant: it gets no gradient).
    """

    @staticmethod
    def forward(ctx, x, pad_width, value=0.0):
        return np.pad(x, pad_width, constant_values=value)

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
    """y = x with shape ``shape`` (same elements, row-major, as ``np.reshape``).   vjp: g reshaped to x's shape.

    Args:
        x: Tensor of any shape.
        shape: sequence of non-negative ints with the same product as x.shape; one -1 is inferred. The same shape
            returns x itself (nothing recorded).
    """
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
    end). The axes are normalised to ``range(x.ndim)`` here, once, so the vjp's inverse permutation is right.
    y.shape[i] = x.shape[axes[i]].   vjp: g permuted by the inverse permutation.

    Args:
        x: Tensor of any shape.
        axes: None (default: reverse the axes) or a permutation of ``range(x.ndim)``.
    """
    if axes is None:
        return Transpose.apply(x, axes=None)
    axes = tuple(axes)
    if (not all(validation.is_int(a) and -x.ndim <= a < x.ndim for a in axes)
            or sorted(int(a) % x.ndim for a in axes) != list(range(x.ndim))):
        raise ValueError(f"transpose: axes {axes} are not a permutation of range({x.ndim}) (negative axes count "
                         f"from the end; input shape {x.shape})")
    return Transpose.apply(x, axes=tuple(int(a) % x.ndim for a in axes))


def broadcast_to(x: Tensor, shape) -> Tensor:
    """y = x broadcast to ``shape`` (NumPy's rules: new leading axes, size-1 axes repeated).   vjp: g summed back to
    x's shape (``unbroadcast``).

    Args:
        x: Tensor whose shape broadcasts to ``shape``.
        shape: sequence of non-negative ints; x's own shape returns x itself.
    """
    shape = tuple(shape)
    if not all(validation.is_int(n) and n >= 0 for n in shape):
        raise ValueError(f"broadcast_to: shape={shape!r} must hold non-negative ints (input shape {x.shape})")
    shape = tuple(int(n) for n in shape)
    if x.shape == shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


def unbroadcast(g: Tensor, shape) -> Tensor:
    """Undo NumPy broadcasting: sum ``g`` down to ``shape`` (the vjp of every broadcasting op).

    If ``x`` of shape ``shape`` was broadcast to ``g.shape``, every copy of an element received part of the
    cotangent, so dL/dx is the sum over the leading axes that were added and over the axes where ``shape`` has
    size 1 (one ``SumTo`` primitive; nothing is recorded when the shapes already agree).

    Args:
        g: Tensor, the cotangent of the broadcast result.
        shape: the shape before broadcasting (it broadcasts to ``g.shape``).
    """
    shape = tuple(shape)
    return g if g.shape == shape else SumTo.apply(g, shape=shape)


PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def normalize_pad_width(pad_width, ndim: int) -> tuple[tuple[int, int], ...]:
    """NumPy's ``pad_width`` forms (int, (before, after), or one pair per axis) as one pair per axis."""
    try:
        pairs = np.broadcast_to(np.asarray(pad_width), (ndim, 2))
    except ValueError as exc:
        raise ValueError(f"pad: pad_width={pad_width!r} must be an int, a (before, after) pair or one pair "
                         f"per axis of the rank-{ndim} input") from exc
    if not np.issubdtype(pairs.dtype, np.integer):
        raise ValueError(f"pad: pad_width={pad_width!r} must hold integers")
    return tuple((int(b), int(a)) for b, a in pairs)


def _source_index(mode: str, q: np.ndarray, n: int) -> np.ndarray:
    """For positions ``q`` along an axis of size ``n`` (q < 0 before it, q >= n after it), the index of the
    element each one copies: edge clamps; wrap is periodic with period n; reflect mirrors about the end
    elements (period 2(n - 1), the ends not repeated), symmetric about the ends' outer edges (period 2n).
    Pads longer than the axis keep mirroring, as NumPy's ``np.pad`` does."""
    if mode == "edge":
        return np.clip(q, 0, n - 1)
    if mode == "wrap":
        return q % n
    symmetric = mode == "symmetric"
    period = 2 * n if symmetric else 2 * (n - 1)
    if period == 0:  # reflect on one element: every position copies it
        return np.zeros_like(q)
    m = q % period
    return np.where(m < n, m, period - m - symmetric)


def pad(x: Tensor, pad_width, mode: str = "constant", constant_values=0.0) -> Tensor:
    """NumPy's ``np.pad(x, pad_width, mode, constant_values=...)`` for ``mode`` in ``PAD_MODES``, differentiable.

    ``pad_width``: an int, a (before, after) pair, or one pair per axis. With
    y_j = x_{s(j - before)} on a padded axis, s being ``_source_index`` (the
    identity inside the axis), the vjp adds every cotangent g_j into element
    s(j - before) of x: the mirrored (reflect, symmetric), clamped (edge) or
    wrapped cotangents come back on top of the interior's. ``"constant"``
    fills with ``constant_values`` (a number; no gradient flows to it) and
    its vjp is the interior of g; a zero pad with non-negative widths is one
    ``Pad`` primitive (the conv path).

    Negative widths crop, as PyTorch's ``F.pad`` allows (NumPy and JAX's
    ``jnp.pad`` reject them): the array is padded with the positive widths,
    then the negative ones remove that many elements from their side. An
    axis with a negative width must keep at least one element.

    Args:
        x: Tensor of any shape.
        pad_width: int, ``(before, after)``, or one ``(before, after)`` pair per axis of x.
        mode: one of ``PAD_MODES``: ``"constant"`` (default), ``"edge"``, ``"reflect"``, ``"symmetric"``, ``"wrap"``.
        constant_values: number, default 0.0: the fill of ``"constant"`` mode.
    """
    mode = validation.choice("pad", "mode", mode, PAD_MODES)
    if isinstance(constant_values, (bool, np.bool_)) or not isinstance(constant_values, (int, float, np.number)):
        raise TypeError(f"pad: constant_values must be a number; got {constant_values!r} of type "
                        f"{type(constant_values).__name__}")
    widths = normalize_pad_width(pad_width, x.ndim)
    for axis, ((before, after), n) in enumerate(zip(widths, x.shape, strict=True)):
        if min(before, after) < 0 and n + before + after < 1:
            raise ValueError(f"pad: pad_width={pad_width!r} must hold non-negative integers, or negative ones "
                             f"(crops) that leave at least one element: axis {axis} of size {n} would have "
                             f"{n + before + after}")
        if mode != "constant" and n == 0 and max(before, after) > 0:
            raise ValueError(f"pad: mode={mode!r} cannot extend axis {axis}, which has size 0 (only 'constant' "
                             f"can); input shape {x.shape}")
    if mode == "constant":
        grow = tuple((max(b, 0), max(a, 0)) for b, a in widths)
        if any(b or a for b, a in grow):
            x = Pad.apply(x, pad_width=grow, value=constant_values)
        if not any(b < 0 or a < 0 for b, a in widths):
            return x
        return getitem(x, tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(widths, x.shape, strict=True)))
    for axis, ((before, after), n) in enumerate(zip(widths, x.shape, strict=True)):
        if before <= 0 and after <= 0:
            index = slice(-before, n + after) if before or after else None
        else:
            index = _source_index(mode, np.arange(n + before + after) - before, n)
        if index is not None:
            x = getitem(x, (slice(None),) * axis + (index,))
    return x


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
    """y = x[index] (NumPy basic or advanced indexing).   vjp: g scattered into zeros like x, repeats adding up.

    Args:
        x: Tensor of any shape.
        index: what NumPy accepts: ints, slices, None, Ellipsis, integer or boolean arrays (or Tensors), or a tuple.
    """
    return GetItem.apply(x, index=_normalize_index(index))


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join Tensors along an existing axis, as ``np.concatenate`` (``tg.cat`` is PyTorch's name for it).

    The vjp cuts the cotangent back into the pieces' sizes along ``axis``.

    Args:
        tensors: a non-empty sequence of Tensors whose shapes agree except along ``axis``.
        axis: int, default 0.

    Raises:
        ValueError: an empty sequence, or shapes that do not agree.
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one Tensor; got an empty sequence")
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join Tensors of equal shape along a new axis (each one reshaped to have it, then concatenated), as
    ``np.stack``.   vjp: g cut back along ``axis``, each piece reshaped to its input's shape.

    Args:
        tensors: a non-empty sequence of Tensors of one shape.
        axis: int, default 0: the new axis' position in the result (in ``[-ndim - 1, ndim]``).
    """
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
