"""Tensors made from scratch: constants, ranges, the identity and random draws.

Every helper returns a leaf Tensor of ``dtype`` (float32 unless given; NumPy would pick float64 or an integer
type) with ``requires_grad`` as asked. Shapes are given as NumPy does (an int or a tuple) or as PyTorch does
(several ints): ``zeros((2, 3)) == zeros(2, 3)``, so ``dtype`` is keyword-only there; ``full(shape,
fill_value)`` takes one shape argument. ``rand`` and ``randn`` take an explicit ``seed`` (an int or a
``np.random.Generator``, see ``ops.random``): the same seed gives bit-identical Tensors.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.ops import random as _random
from tinygrad_cnn.tensor import Tensor, _shape_args

__all__ = ["arange", "eye", "full", "linspace", "ones", "ones_like", "rand", "randn", "zeros", "zeros_like"]


def _shape(fn: str, shape: tuple) -> tuple[int, ...]:
    shape = _shape_args(shape)
    if not all(validation.is_int(n) and n >= 0 for n in shape):
        raise ValueError(f"{fn}: shape {shape!r} must hold non-negative ints")
    return tuple(int(n) for n in shape)


def _leaf(data: np.ndarray, requires_grad: bool, fn: str) -> Tensor:
    requires_grad = validation.boolean(fn, "requires_grad", requires_grad)
    if requires_grad and not np.issubdtype(data.dtype, np.floating):
        raise TypeError(f"{fn}: requires_grad=True needs a floating dtype; got dtype {data.dtype}")
    return Tensor(data, requires_grad=requires_grad)


def full(shape, fill_value, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Every element ``fill_value``; ``shape`` an int or a tuple (NumPy's and PyTorch's ``full``).

    Args:
        shape: int or tuple of non-negative ints.
        fill_value: number, the value of every element (cast to ``dtype``).
        dtype: NumPy dtype, default float32.
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    return _leaf(np.full(_shape("full", (shape,)), fill_value, dtype=dtype), requires_grad, "full")


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A new Tensor of all zeros.

    Args:
        *shape: the shape, as ints (``zeros(2, 3)``) or one tuple (``zeros((2, 3))``).
        dtype: default float32.
        requires_grad: bool, default False: make it a leaf that receives ``.grad``.
    """
    return _leaf(np.zeros(_shape("zeros", shape), dtype=dtype), requires_grad, "zeros")


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A new Tensor of all ones.

    Args:
        *shape: the shape, as ints (``zeros(2, 3)``) or one tuple (``zeros((2, 3))``).
        dtype: default float32.
        requires_grad: bool, default False: make it a leaf that receives ``.grad``.
    """
    return _leaf(np.ones(_shape("ones", shape), dtype=dtype), requires_grad, "ones")


def _like(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def zeros_like(x, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``x``'s shape and (unless ``dtype`` is given) its dtype; ``x`` a Tensor or an array.

    Args:
        x: Tensor or array-like whose shape (and dtype) is copied.
        dtype: NumPy dtype, default None (x's).
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    return _leaf(np.zeros_like(_like(x), dtype=dtype), requires_grad, "zeros_like")


def ones_like(x, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones of ``x``'s shape and (unless ``dtype`` is given) its dtype; ``x`` a Tensor or an array.

    Args:
        x: Tensor or array-like whose shape (and dtype) is copied.
        dtype: NumPy dtype, default None (x's).
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    return _leaf(np.ones_like(_like(x), dtype=dtype), requires_grad, "ones_like")


def arange(start, stop=None, step=1, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """NumPy's ``np.arange(start, stop, step, dtype)``: start, start + step, ... up to but excluding stop
    (``arange(n)`` is 0, 1, ..., n - 1); ceil((stop - start) / step) elements, computed by NumPy in ``dtype``.

    Args:
        start: number; with ``stop`` None it is the stop and the range starts at 0.
        stop: number or None (default).
        step: nonzero number, default 1.
        dtype: NumPy dtype, default float32.
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    if step == 0:
        raise ValueError("arange: step=0 must be non-zero")
    return _leaf(np.arange(start, stop, step, dtype=dtype), requires_grad, "arange")


def linspace(start, stop, num: int = 50, endpoint: bool = True, dtype=np.float32,
             requires_grad: bool = False) -> Tensor:
    """NumPy's ``np.linspace``: ``num`` evenly spaced values from start to stop (included if ``endpoint``),
    start + i (stop - start) / (num - 1 if endpoint else num), computed in float64 and rounded to ``dtype``.

    Args:
        start, stop: numbers, the first and (with ``endpoint``) last value.
        num: non-negative int, default 50: the number of values.
        endpoint: bool, default True: include ``stop``.
        dtype: NumPy dtype, default float32.
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    num = validation.positive_int("linspace", "num", num, minimum=0)
    endpoint = validation.boolean("linspace", "endpoint", endpoint)
    return _leaf(np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype), requires_grad, "linspace")


def eye(N: int, M: int | None = None, k: int = 0, dtype=np.float32, requires_grad: bool = False) -> Tensor:  # noqa: N803
    """NumPy's ``np.eye``: an N x M (M = N by default) matrix with ones on diagonal ``k`` (0 the main one,
    k > 0 above it, k < 0 below it) and zeros elsewhere.

    Args:
        N: non-negative int, the number of rows.
        M: non-negative int or None (default: N), the number of columns.
        k: int, default 0: the diagonal's offset.
        dtype: NumPy dtype, default float32.
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    n = validation.positive_int("eye", "N", N, minimum=0)
    m = n if M is None else validation.positive_int("eye", "M", M, minimum=0)
    if not validation.is_int(k):
        raise TypeError(f"eye: k must be an int; got {k!r} of type {type(k).__name__}")
    return _leaf(np.eye(n, m, int(k), dtype=dtype), requires_grad, "eye")


def _random_dtype(fn: str, dtype) -> np.dtype:
    return np.dtype(validation.dtype_choice(fn, "dtype", dtype, ("float32", "float64")))


def rand(*shape, seed=None, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Uniform draws on [0, 1): ``Generator.random(shape, dtype)`` of ``seed`` (an int, a Generator, or None
    for fresh entropy; inside ``ops.random.fixed_seed`` None is pinned). float32 is drawn as float32, so no
    value rounds up to 1.

    Args:
        *shape: the shape, as ints (``rand(2, 3)``) or one tuple (``rand((2, 3))``).
        seed: keyword-only int, ``np.random.Generator`` or None (default: fresh entropy).
        dtype: keyword-only, float32 (default) or float64.
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    dtype = _random_dtype("rand", dtype)
    draws = _random.rng(validation.seed("rand", "seed", seed), "rand").random(_shape("rand", shape), dtype=dtype)
    return _leaf(draws, requires_grad, "rand")


def randn(*shape, seed=None, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal draws (mean 0, variance 1): ``Generator.standard_normal(shape, dtype)`` of ``seed``
    (an int, a Generator, or None; see ``rand``).

    Args:
        *shape: the shape, as ints (``rand(2, 3)``) or one tuple (``rand((2, 3))``).
        seed: keyword-only int, ``np.random.Generator`` or None (default: fresh entropy).
        dtype: keyword-only, float32 (default) or float64.
        requires_grad: bool, default False: make it a leaf that receives ``.grad`` (needs a floating dtype).
    """
    dtype = _random_dtype("randn", dtype)
    rng = _random.rng(validation.seed("randn", "seed", seed), "randn")
    return _leaf(rng.standard_normal(_shape("randn", shape), dtype=dtype), requires_grad, "randn")
