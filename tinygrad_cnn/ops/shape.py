"""Shape ops composed of the movement primitives (reshape, transpose, broadcast_to, getitem, concatenate).

Each one is a composite, so its vjp (and every higher derivative) is the chain of its parts' vjps; the
docstrings state the forward map and what that vjp amounts to. Axes may be negative (counted from the end);
NumPy's names and semantics unless a docstring says otherwise.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.ops.movement import broadcast_to, concatenate, getitem, reshape, transpose
from tinygrad_cnn.tensor import Tensor


def normalize_axis(fn: str, axis, ndim: int, arg: str = "axis") -> int:
    """One axis in ``[-ndim, ndim)`` as a non-negative int (a rank-0 array has none)."""
    if not validation.is_int(axis):
        raise TypeError(f"{fn}: {arg} must be an int; got {axis!r} of type {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{fn}: {arg}={axis} is out of range for an array of rank {ndim}")
    return int(axis) % ndim


def _distinct_axes(fn: str, axis, ndim: int, arg: str = "axis") -> tuple[int, ...]:
    """An int or a sequence of distinct ints (each in ``[-ndim, ndim)``) as non-negative axes, in the given order."""
    if not (validation.is_int(axis) or isinstance(axis, (tuple, list))):
        raise TypeError(f"{fn}: {arg} must be an int or a tuple of ints; got {axis!r} of type "
                        f"{type(axis).__name__}")
    axes = tuple(normalize_axis(fn, a, ndim, arg) for a in ((axis,) if validation.is_int(axis) else axis))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{fn}: {arg}={axis!r} repeats an axis (rank {ndim})")
    return axes


def _along(axis: int, index) -> tuple:
    """An index applying ``index`` on ``axis`` and taking everything on the axes before it."""
    return (slice(None),) * axis + (index,)


def squeeze(x: Tensor, axis=None) -> Tensor:
    """Remove axes of size 1: all of them (``axis=None``) or the given ones, which must have size 1.

    y = reshape(x, x.shape without those axes); vjp: g reshaped back. NumPy
    raises for a given axis whose size is not 1; PyTorch leaves it alone.

    Args:
        x: Tensor of any shape.
        axis: None (default: every size-1 axis), an int or a tuple of ints; negative axes count from the end.
    """
    if axis is None:
        axes = tuple(a for a, n in enumerate(x.shape) if n == 1)
    else:
        axes = _distinct_axes("squeeze", axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}; only axes of size 1 can be removed "
                             f"(input shape {x.shape})")
    return reshape(x, tuple(n for a, n in enumerate(x.shape) if a not in axes))


def expand_dims(x: Tensor, axis) -> Tensor:
    """Insert axes of size 1 at positions ``axis`` (an int or a tuple) of the result, whose rank is
    ``x.ndim + len(axis)`` (so ``axis=-1`` appends one). PyTorch's ``unsqueeze(dim)`` is the one-int case.

    y = reshape(x, shape with the new 1s); vjp: g reshaped back.

    Args:
        x: Tensor of any shape.
        axis: int or tuple of ints, positions in the result (in [-(ndim + len(axis)), ndim + len(axis)));
            no repeats.
    """
    count = len(axis) if isinstance(axis, (tuple, list)) else 1
    axes = _distinct_axes("expand_dims", axis, x.ndim + count)
    sizes = iter(x.shape)
    return reshape(x, tuple(1 if a in axes else next(sizes) for a in range(x.ndim + count)))


def flip(x: Tensor, axis=None) -> Tensor:
    """Reverse the order of the elements along ``axis`` (an int, a tuple, or None for every axis).

    y[..., i, ...] = x[..., n - 1 - i, ...]: the view x[..., ::-1, ...];
    vjp: g flipped the same way (getitem's scatter into reversed positions).

    Args:
        x: Tensor of any shape.
        axis: None (default: every axis), an int or a tuple of ints.
    """
    axes = range(x.ndim) if axis is None else _distinct_axes("flip", axis, x.ndim)
    if not axes:
        return x
    return getitem(x, tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(x.ndim)))


def _int_or_ints(fn: str, arg: str, value) -> np.ndarray:
    values = np.atleast_1d(np.asarray(value))
    if values.ndim != 1 or values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"{fn}: {arg} must be an int or a sequence of ints; got {value!r}")
    return values


def roll(x: Tensor, shift, axis=None) -> Tensor:
    """Shift the elements cyclically by ``shift`` along ``axis``: y[(i + shift) mod n] = x[i].

    ``axis=None`` rolls the flattened array and restores the shape. ``shift``
    and ``axis`` may be sequences (broadcast against each other); shifts of
    the same axis add up (NumPy's ``np.roll``). Each axis' roll joins two
    slices, x[n - s:] then x[:n - s] (s = shift mod n); vjp: g rolled by -shift.

    Args:
        x: Tensor of any shape.
        shift: int or sequence of ints, the number of places (negative: backwards).
        axis: None (default: the flattened x), an int or a sequence of ints matching ``shift``.
    """
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, 0), x.shape)
    shifts, axes = _int_or_ints("roll", "shift", shift), _int_or_ints("roll", "axis", axis)
    try:
        shifts, axes = np.broadcast_arrays(shifts, axes)
    except ValueError as exc:
        raise ValueError(f"roll: shift={shift!r} and axis={axis!r} must have the same length (or one be an "
                         f"int)") from exc
    total: dict[int, int] = {}
    for s, a in zip(shifts.tolist(), axes.tolist(), strict=True):
        a = normalize_axis("roll", a, x.ndim)
        total[a] = total.get(a, 0) + s
    for a, s in total.items():
        n = x.shape[a]
        if n and s % n:
            cut = n - s % n
            x = concatenate([getitem(x, _along(a, slice(cut, None))), getitem(x, _along(a, slice(0, cut)))], axis=a)
    return x


def repeat(x: Tensor, repeats, axis=None) -> Tensor:
    """NumPy's ``np.repeat``: each element repeated ``repeats`` times along ``axis`` (flattened first if None).

    ``repeats`` is an int (y[i] = x[i // repeats]: x given a new axis of size
    1 after ``axis``, broadcast to ``repeats`` and merged; vjp: g summed over
    each run) or one count per element of the axis (y = x[r] with
    r = [0]*repeats[0] + [1]*repeats[1] + ...; vjp: each run of g added into
    its element). PyTorch's ``repeat_interleave`` is this; PyTorch's
    ``Tensor.repeat`` is ``tile``.

    Args:
        x: Tensor of any shape.
        repeats: a non-negative int, or one non-negative int per element along ``axis``.
        axis: int, or None (default) for the flattened x.
    """
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = normalize_axis("repeat", axis, x.ndim)
    counts = _int_or_ints("repeat", "repeats", repeats)
    if (counts < 0).any():
        raise ValueError(f"repeat: repeats={repeats!r} must be non-negative")
    n, head, tail = x.shape[axis], x.shape[:axis + 1], x.shape[axis + 1:]
    if counts.size == 1:  # one count for every element (a length-1 sequence broadcasts, as in NumPy)
        r = int(counts[0])
        runs = broadcast_to(reshape(x, head + (1,) + tail), head + (r,) + tail)
        return reshape(runs, x.shape[:axis] + (n * r,) + tail)
    if counts.size != n:
        raise ValueError(f"repeat: repeats has {counts.size} counts but axis {axis} has {n} elements "
                         f"(input shape {x.shape}); give one count per element or a single int")
    return getitem(x, _along(axis, np.repeat(np.arange(n), counts)))


def tile(x: Tensor, reps) -> Tensor:
    """NumPy's ``np.tile``: ``x`` repeated ``reps[i]`` times as a whole along axis i (PyTorch's ``Tensor.repeat``
    and ``tile``). The shorter of ``reps`` and ``x.shape`` is padded with leading 1s.

    y[k * n + j] = x[j] on each axis: x given a new axis of size 1 before each
    axis, broadcast to ``reps`` and merged; vjp: g summed over the copies.

    Args:
        x: Tensor of any shape.
        reps: int or sequence of non-negative ints, the copies along each axis.
    """
    reps = (reps,) if validation.is_int(reps) else tuple(reps)
    if not all(validation.is_int(r) and r >= 0 for r in reps):
        raise ValueError(f"tile: reps={reps!r} must be a non-negative int or a sequence of them")
    reps = tuple(int(r) for r in reps)
    rank = max(len(reps), x.ndim)
    reps, shape = (1,) * (rank - len(reps)) + reps, (1,) * (rank - x.ndim) + x.shape
    spread = broadcast_to(reshape(x, tuple(v for n in shape for v in (1, n))),
                          tuple(v for r, n in zip(reps, shape, strict=True) for v in (r, n)))
    return reshape(spread, tuple(r * n for r, n in zip(reps, shape, strict=True)))


def expand(x: Tensor, shape) -> Tensor:
    """PyTorch's ``Tensor.expand``: ``broadcast_to`` where a size of -1 keeps the input's size on that axis.

    New leading axes (of any size >= 0) may be added; -1 is allowed only on the
    input's own axes. vjp: g summed over the broadcast axes.

    Args:
        x: Tensor of any shape.
        shape: sequence of ints, the target shape; -1 keeps x's size on that (trailing-aligned) axis.
    """
    shape = tuple(shape)
    lead = len(shape) - x.ndim
    if lead < 0 or not all(validation.is_int(n) and n >= -1 for n in shape):
        raise ValueError(f"expand: shape={shape!r} must hold ints >= -1, at least one per input axis "
                         f"(input shape {x.shape})")
    if -1 in shape[:lead]:
        raise ValueError(f"expand: shape={shape!r} has -1 on a new leading axis; -1 (keep the size) is only "
                         f"allowed on the input's own axes (input shape {x.shape})")
    return broadcast_to(x, shape[:lead] + tuple(x.shape[i] if n == -1 else n for i, n in enumerate(shape[lead:])))


def split(x: Tensor, indices_or_sections, axis: int = 0) -> list[Tensor]:
    """NumPy's ``np.split``: an int k cuts ``axis`` into k equal sections (k must divide its size); a sequence
    of indices [i0, i1, ...] gives x[:i0], x[i0:i1], ..., x[i_last:] along ``axis`` (Python slicing: an
    index past the end gives an empty piece).

    PyTorch's ``split(sizes, dim)`` (piece sizes, not cut points) is
    ``split(x, np.cumsum(sizes)[:-1], axis)``, and its ``split(size)`` (every
    piece that size, the last smaller) is ``split(x, range(size, n, size))``.
    Each piece is a basic slice; its vjp puts g into zeros at the slice.

    Args:
        x: Tensor of any shape.
        indices_or_sections: int k (k equal sections) or a sequence of increasing cut indices.
        axis: int, default 0.
    """
    axis = normalize_axis("split", axis, x.ndim)
    n = x.shape[axis]
    if validation.is_int(indices_or_sections):
        k = indices_or_sections
        if k < 1 or n % k:
            raise ValueError(f"split: axis {axis} of size {n} cannot be cut into indices_or_sections={k} equal "
                             f"sections (k must be >= 1 and divide the size); pass cut indices or use chunk")
        cuts = [n // k * i for i in range(1, k)]
    else:
        cuts = [int(i) if validation.is_int(i) else None for i in indices_or_sections]
        if None in cuts:
            raise TypeError(f"split: indices_or_sections must be an int or a sequence of ints; got "
                            f"{indices_or_sections!r}")
    edges = [0, *cuts, n]
    return [getitem(x, _along(axis, slice(a, b))) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def chunk(x: Tensor, chunks: int, axis: int = 0) -> list[Tensor]:
    """PyTorch's ``chunk``: pieces of ceil(n / chunks) elements along ``axis``, the last one smaller, so there
    may be fewer than ``chunks`` (5 elements in 4 chunks give sizes 2, 2, 1); a size-0 axis gives ``chunks``
    empty pieces. (NumPy's ``np.array_split`` instead makes exactly ``chunks`` pieces, the first ones longer.)

    Args:
        x: Tensor of any shape.
        chunks: positive int, the largest number of pieces.
        axis: int, default 0.
    """
    chunks = validation.positive_int("chunk", "chunks", chunks)
    n = x.shape[normalize_axis("chunk", axis, x.ndim)]
    size = -(-n // chunks)
    return split(x, list(range(size, n, size)) if n else chunks, axis)


def moveaxis(x: Tensor, source, destination) -> Tensor:
    """NumPy's ``np.moveaxis``: the axes ``source`` (an int or a sequence) end up at positions ``destination``,
    the others keep their order. A transpose; vjp: g transposed back.

    Args:
        x: Tensor of any shape.
        source: int or sequence of distinct ints, the axes to move.
        destination: int or sequence of ints of the same length, their new positions.
    """
    src = _distinct_axes("moveaxis", source, x.ndim, "source")
    dst = _distinct_axes("moveaxis", destination, x.ndim, "destination")
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source={source!r} and destination={destination!r} must have the same "
                         f"number of axes")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return transpose(x, order)


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes (NumPy's ``swapaxes``; PyTorch's ``transpose(dim0, dim1)``). A transpose; vjp: the
    same swap of g.

    Args:
        x: Tensor of any shape.
        axis1, axis2: ints, the two axes (negative counts from the end).
    """
    a, b = normalize_axis("swapaxes", axis1, x.ndim, "axis1"), normalize_axis("swapaxes", axis2, x.ndim, "axis2")
    order = list(range(x.ndim))
    order[a], order[b] = b, a
    return transpose(x, order)
