"""Weight constraints with Keras' names and axis defaults, applied after every optimizer step.

A constraint maps a weight array to its projection (NumPy in, NumPy out);
norms are taken over ``axis`` (Keras' default ``axis=0``; use ``[0, 1, 2]`` for
a channels-last Conv2D kernel), with Keras' epsilon 1e-7:

- ``MaxNorm(max_value=2)``: w * clip(n, 0, max_value) / (eps + n)
- ``NonNeg()``: max(w, 0)
- ``UnitNorm()``: w / (eps + n)
- ``MinMaxNorm(min_value=0, max_value=1, rate=1)``: w * (rate * clip(n, min, max) + (1 - rate) * n) / (eps + n)
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.nn import _serial

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get", "serialize"]

EPSILON = 1e-7


def _axis(cls: str, axis):
    if validation.is_int(axis):
        return int(axis)
    if isinstance(axis, (list, tuple)) and axis and all(validation.is_int(a) for a in axis):
        return [int(a) for a in axis]
    raise TypeError(f"{cls}: axis must be an int or a list of ints; got {axis!r}")


def _norms(w: np.ndarray, axis) -> np.ndarray:
    ax = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt(np.sum(np.square(w), axis=ax, keepdims=True))


class Constraint(_serial.Configurable):
    """Base class: ``c(w: ndarray) -> ndarray`` of the same shape and dtype."""

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w


class MaxNorm(Constraint):
    """Rescale each slice whose norm exceeds ``max_value`` down to it."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = validation.number_in("MaxNorm", "max_value", max_value, 0.0, float("inf"))
        self.axis = _axis("MaxNorm", axis)

    def __call__(self, w):
        n = _norms(w, self.axis)
        return (w * (np.clip(n, 0, self.max_value) / (EPSILON + n))).astype(w.dtype)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Clip negative weights to 0."""

    def __call__(self, w):
        return np.maximum(w, 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Divide each slice by its norm."""

    def __init__(self, axis=0):
        self.axis = _axis("UnitNorm", axis)

    def __call__(self, w):
        return (w / (EPSILON + _norms(w, self.axis))).astype(w.dtype)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each slice's norm (at ``rate``) into [min_value, max_value]."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = validation.number_in("MinMaxNorm", "min_value", min_value, 0.0, float("inf"))
        self.max_value = validation.number_in("MinMaxNorm", "max_value", max_value, self.min_value, float("inf"))
        self.rate = validation.number_in("MinMaxNorm", "rate", rate, 0.0, 1.0)
        self.axis = _axis("MinMaxNorm", axis)

    def __call__(self, w):
        n = _norms(w, self.axis)
        desired = self.rate * np.clip(n, self.min_value, self.max_value) + (1 - self.rate) * n
        return (w * (desired / (EPSILON + n))).astype(w.dtype)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


_CLASSES = {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm}
_BY_NAME = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}


def get(identifier, where: str = "constraints.get", arg: str = "identifier"):
    """A Constraint from a name, a config dict or an object; None stays None."""
    return _serial.lookup(where, arg, identifier, _BY_NAME, _CLASSES, "constraint")


def serialize(constraint):
    return _serial.serialize(constraint)
