"""The softmax family: logsumexp, log_softmax and softmax over one axis, stable for logits of +-1000.

Composites of the engine's primitives (so every order of derivative works); ``F`` re-exports them and the
losses build on ``log_softmax``.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops, validation
from tinygrad_cnn.tensor import Tensor, as_float_tensor

__all__ = ["log_softmax", "logsumexp", "softmax"]


def _axis(fn: str, x: Tensor, axis) -> int:
    if not validation.is_int(axis):
        raise TypeError(f"{fn}: axis must be an int (one axis); got {axis!r} ({type(axis).__name__})")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fn}: axis={axis!r} is out of range for an input of shape {x.shape}")
    return int(axis)


def _max_shift(x: Tensor, axis: int) -> np.ndarray:
    """The constant m = max x along ``axis`` (kept), 0 where it is not finite or the axis is empty, for the
    overflow-free forms of logsumexp and log_softmax."""
    m = np.max(x.data, axis=axis, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(m), m, 0).astype(x.dtype)


def logsumexp(x, axis: int = -1, keepdims: bool = False):
    """log sum_i e^{x_i}, computed as m + log sum_i e^{x_i - m} with m = max x (a constant), so no overflow.
    Over an empty axis it is log 0 = -inf, as ``jax.nn.logsumexp``. vjp: g softmax(x) along ``axis``.

    Args:
        x: Tensor or array-like of floating dtype, at least one axis.
        axis: int, default -1: the one axis summed over.
        keepdims: bool, default False: keep it with size 1.
    """
    x = as_float_tensor("logsumexp", "x", x)
    axis = _axis("logsumexp", x, axis)
    m = _max_shift(x, axis)
    out = ops.log(ops.sum(ops.exp(x - m), axis, True)) + m
    return out if keepdims else ops.reshape(out, np.delete(np.array(out.shape), axis % x.ndim))


def log_softmax(x, axis: int = -1, _fn: str = "log_softmax"):
    """x_i - logsumexp(x), computed as s_i - log sum_j e^{s_j} with s = x - max x (a constant).

    Finite for logits of +-1000, and accurate: adding max x back before
    subtracting (x - (m + log sum e^{x - m})) would lose the low bits of the
    result to rounding at |x| ~ 1000 (an error of ~3e-5 in float32).

    Args:
        x: any shape.
        axis: int, default -1: the class axis.

    Returns:
        A Tensor shaped like ``x``; its vjp is ``g - softmax(x) sum(g)`` along ``axis``.
    """
    x = as_float_tensor(_fn, "x", x)
    axis = _axis(_fn, x, axis)
    shifted = x - _max_shift(x, axis)
    return shifted - ops.log(ops.sum(ops.exp(shifted), axis, True))


def softmax(x, axis: int = -1):
    """e^{x_i} / sum_j e^{x_j}, computed as exp(log_softmax(x)).

    Args:
        x: any shape.
        axis: int, default -1: the axis the probabilities sum to 1 over.

    Returns:
        A Tensor shaped like ``x``.
    """
    return ops.exp(log_softmax(x, axis, _fn="softmax"))
