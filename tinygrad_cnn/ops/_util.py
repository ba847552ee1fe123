"""Helpers shared by the primitives: axis normalisation."""

from __future__ import annotations


def normalize_axes(axis, ndim: int, fn: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (int, tuple, list)) or isinstance(axis, bool):
        raise TypeError(f"{fn}: axis must be None, an int or a tuple of ints; got {axis!r} of type "
                        f"{type(axis).__name__}")
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int) or isinstance(a, bool) or not -ndim <= a < ndim:
            valid = (f"expected -{ndim} <= axis < {ndim}" if ndim
                     else "a rank-0 array has no axes: use axis=None or axis=(), as NumPy and JAX do")
            raise ValueError(f"{fn}: axis {a!r} is out of range for an array of rank {ndim} ({valid})")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))
