"""Argument checks shared by every op and layer.

Each checker raises a ``ValueError`` or ``TypeError`` whose message names the
function, the argument, the value it got and what was expected, e.g.
``conv2d: padding='smae' is not one of 'valid', 'same', 'causal'; did you mean 'same'?``
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Sequence

import numpy as np


def _suggest(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def choice(fn: str, arg: str, value, choices: Sequence[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``choices``, else raise, suggesting the nearest."""
    if not isinstance(value, str):
        raise TypeError(f"{fn}: {arg} must be a string, one of {_fmt(choices)}; got {value!r} "
                        f"of type {type(value).__name__}")
    key = value.lower()
    if key not in choices:
        raise ValueError(f"{fn}: {arg}={value!r} is not one of {_fmt(choices)}{_suggest(key, choices)}")
    return key


def _fmt(choices: Iterable[str]) -> str:
    return ", ".join(repr(c) for c in choices)


def is_int(value) -> bool:
    """True for Python and NumPy integers, never for bools (a plain ``int`` skips the ABC check: hot paths
    validate shapes and axes on every call)."""
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


def positive_int(fn: str, arg: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``, else raise."""
    if not is_int(value):
        raise TypeError(f"{fn}: {arg} must be an integer >= {minimum}; got {value!r} "
                        f"of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{fn}: {arg} must be an integer >= {minimum}; got {value}")
    return int(value)


def int_tuple(fn: str, arg: str, value, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, each >= ``minimum``, as a tuple of length ``rank``."""
    if is_int(value):
        positive_int(fn, arg, value, minimum)
        return (int(value),) * rank
    if isinstance(value, (tuple, list)) and len(value) == rank and all(is_int(v) for v in value):
        for v in value:
            if v < minimum:
                raise ValueError(f"{fn}: {arg} must hold integers >= {minimum}; got {tuple(value)}")
        return tuple(int(v) for v in value)
    raise ValueError(f"{fn}: {arg} must be an int or a tuple of {rank} ints (one per spatial axis); "
                     f"got {value!r}")


def number_in(fn: str, arg: str, value, low: float, high: float, *, high_open: bool = False) -> float:
    """Return ``value`` as a float if ``low <= value <= high`` (``< high`` when ``high_open``)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{fn}: {arg} must be a number; got {value!r} of type {type(value).__name__}")
    ok = low <= value < high if high_open else low <= value <= high
    if not ok or value != value:
        bracket = ")" if high_open else "]"
        raise ValueError(f"{fn}: {arg} must be in [{low}, {high}{bracket}; got {value}")
    return float(value)


def rank(fn: str, arg: str, shape: tuple[int, ...], expected: int | Sequence[int]) -> None:
    """Raise unless ``len(shape)`` is ``expected`` (or one of them)."""
    allowed = (expected,) if is_int(expected) else tuple(expected)
    if len(shape) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{fn}: {arg} must have rank {want}; got shape {tuple(shape)} (rank {len(shape)})")


def data_format(fn: str, value) -> str:
    """``'channels_last'`` or ``'channels_first'``."""
    return choice(fn, "data_format", value, ("channels_last", "channels_first"))


def float_array(fn: str, arg: str, array: np.ndarray) -> None:
    """Raise unless ``array`` has a floating dtype (gradients only flow through floats)."""
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{fn}: {arg} must have a floating dtype; got {array.dtype}")


def boolean(fn: str, arg: str, value) -> bool:
    """Return ``value`` as a bool if it is True/False (Python or NumPy), else raise (``"yes"`` is not a flag)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {arg} must be True or False; got {value!r} of type {type(value).__name__}")
    return bool(value)


def seed(fn: str, arg: str, value, allow_generator: bool = True):
    """``None``, a non-negative int or (if allowed) a ``np.random.Generator``; returned unchanged."""
    ok = value is None or (is_int(value) and value >= 0) or (allow_generator and isinstance(value, np.random.Generator))
    if not ok:
        what = "a non-negative int, a numpy Generator or None" if allow_generator else "a non-negative int or None"
        raise TypeError(f"{fn}: {arg} must be {what}; got {value!r} of type {type(value).__name__}")
    return value


def dtype_choice(fn: str, arg: str, value, choices: Sequence[str]) -> str:
    """A dtype given as a string, type or np.dtype, as its name, if it is one of ``choices`` (with did-you-mean)."""
    if isinstance(value, str):
        return choice(fn, arg, value, choices)
    try:
        name = str(np.dtype(value))
    except TypeError as exc:
        raise TypeError(f"{fn}: {arg} must be one of {_fmt(choices)}; got {value!r}") from exc
    return choice(fn, arg, name, choices)

