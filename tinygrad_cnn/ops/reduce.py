"""Reductions: sum, max, min, prod, var/std over axes (mean is sum / count in ``ops``); cumulative sums and
products; the elementwise extrema maximum/minimum (same tie rule as max/min); and the gradient-free argmax,
argmin, any, all."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.function import Function
from tinygrad_cnn.ops import movement
from tinygrad_cnn.ops._docs import AXES, DDOF, KEEPDIMS, ONE_AXIS, PAIR, X, documented
from tinygrad_cnn.ops._util import normalize_axes
from tinygrad_cnn.ops.elementwise import Sqrt, _binary, where
from tinygrad_cnn.ops.movement import unbroadcast
from tinygrad_cnn.tensor import Tensor, as_tensor


def _keepdims_shape(shape, axes) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class _Reduction(Function):
    """y = ``reduce`` of x over ``axes`` (NumPy's reduction of the subclass)."""

    reduce = None

    @classmethod
    def forward(cls, ctx, x, axes, keepdims):
        return cls.reduce(x, axis=axes, keepdims=keepdims)


class Sum(_Reduction):
    """y = sum of x over ``axes``.   vjp: g broadcast back over the summed axes."""

    reduce = staticmethod(np.sum)

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0]
        g = movement.reshape(g, _keepdims_shape(x.shape, ctx.params["axes"]))
        return (movement.broadcast_to(g, x.shape),)


class _Extremum(Function):
    """y = max (or min) of x over ``axes``.

    vjp: g shared evenly among the elements that attain the extremum (as
    ``jnp.max``): dL/dx_i = g * [x_i == y] / #{j : x_j == y}.
    """

    reduce = None

    @classmethod
    def forward(cls, ctx, x, axes, keepdims):
        empty = [a for a in axes if x.shape[a] == 0]
        if empty:  # no identity to start from (as NumPy and JAX); an empty axis that is kept is fine
            raise ValueError(f"{cls.__name__.lower()}: cannot reduce over axis {empty[0]} of size 0 (input shape "
                             f"{x.shape}, axes {axes}): a {cls.__name__.lower()} of no elements has no value")
        return cls.reduce(x, axis=axes, keepdims=keepdims)

    @classmethod
    def vjp(cls, ctx, g):
        x = ctx.inputs[0]
        axes = ctx.params["axes"]
        kept = _keepdims_shape(x.shape, axes)
        winners = x.data == np.reshape(ctx.output.data, kept)
        share = winners / np.sum(winners, axis=axes, keepdims=True)
        g = movement.broadcast_to(movement.reshape(g, kept), x.shape)
        return (g * movement.constant(share.astype(g.dtype)),)

    @classmethod
    def kink_state(cls, x, axes, keepdims):
        return x == cls.reduce(x, axis=axes, keepdims=True)


class Max(_Extremum):
    __doc__ = _Extremum.__doc__
    reduce = staticmethod(np.max)


class Min(_Extremum):
    __doc__ = _Extremum.__doc__.replace("max (or min)", "min (or max)")
    reduce = staticmethod(np.min)


# -- products and cumulative sums/products -----------------------------------------------------------------------
def _along(axis: int, index) -> tuple:
    """An index that applies ``index`` on ``axis`` and takes everything on the axes before it."""
    return (slice(None),) * axis + (index,)


def _flip(t, axis: int):
    return movement.getitem(t, _along(axis, slice(None, None, -1)))


def _shift_up(t, d: int, axis: int):
    """t[i + d] along ``axis`` (0 < d < n), zeros past the end."""
    widths = [(0, 0)] * t.ndim
    widths[axis] = (0, d)
    return movement.pad(movement.getitem(t, _along(axis, slice(d, None))), widths)


def _exclusive_cumprod(t, axis: int):
    """prod_{j < i} t_j along ``axis`` (1 at i = 0), without division: cumprod of (1, t_0, ..., t_{n-2})."""
    ones = np.ones(t.shape[:axis] + (1,) + t.shape[axis + 1:], t.dtype)
    head = movement.getitem(t, _along(axis, slice(0, t.shape[axis] - 1)))
    return cumprod(movement.concatenate([movement.constant(ones), head], axis), axis)


class Prod(_Reduction):
    """y = prod of x over ``axes``.

    vjp: dL/dx_i = g * prod_{j != i} x_j, computed without division (exact when x has zeros, as JAX) as the
    product of the exclusive cumulative products from the left and from the right over the reduced
    elements (flattened in row-major order): prod_{j < i} x_j * prod_{j > i} x_j.
    """

    reduce = staticmethod(np.prod)

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0]
        axes = ctx.params["axes"]
        if x.size == 0:
            return (movement.constant(np.zeros(x.shape, g.dtype)),)
        kept = [i for i in range(x.ndim) if i not in axes]
        moved = movement.transpose(x, kept + list(axes))
        lead = moved.shape[:len(kept)]
        flat = movement.reshape(moved, lead + (-1,))
        last = flat.ndim - 1
        others = _exclusive_cumprod(flat, last) * _flip(_exclusive_cumprod(_flip(flat, last), last), last)
        grad = movement.reshape(movement.reshape(g, lead + (1,)) * others, moved.shape)
        return (movement.transpose(grad, tuple(np.argsort(kept + list(axes)))),)


class Cumsum(Function):
    """y_k = sum_{j <= k} x_j along ``axis``.   vjp: dL/dx_i = sum_{k >= i} g_k, the reversed cumulative sum of g."""

    @staticmethod
    def forward(ctx, x, axis):
        return np.cumsum(x, axis=axis)

    @staticmethod
    def vjp(ctx, g):
        axis = ctx.params["axis"]
        return (_flip(cumsum(_flip(g, axis), axis), axis),)


class Cumprod(Function):
    """y_k = prod_{j <= k} x_j along ``axis``.

    vjp: dL/dx_i = sum_{k >= i} g_k prod_{j <= k, j != i} x_j = L_i S_i, with L_i = prod_{j < i} x_j (the
    exclusive cumulative product) and S_i = sum_{k >= i} g_k prod_{i < j <= k} x_j, the solution of the
    backward recurrence S_i = g_i + x_{i+1} S_{i+1} (S = 0 past the end). S comes from a doubling scan in
    Tensor ops: ceil(log2 n) steps of B <- B + A B[i + d], A <- A A[i + d], d = 1, 2, 4, ..., starting from
    B = g, A_i = x_{i+1}. No division, so the gradient is exact where x has zeros (as JAX's associative
    scan), and a recorded backward pass is differentiable again.
    """

    @staticmethod
    def forward(ctx, x, axis):
        return np.cumprod(x, axis=axis)

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0]
        axis = ctx.params["axis"]
        n = x.shape[axis]
        if x.size == 0:
            return (movement.constant(np.zeros(x.shape, g.dtype)),)
        b = g
        if n > 1:
            a = _shift_up(x, 1, axis)
            d = 1
            while d < n:  # log2(n) whole-array steps, not a loop over elements
                b = b + a * _shift_up(b, d, axis)
                if 2 * d < n:
                    a = a * _shift_up(a, d, axis)
                d *= 2
        return (_exclusive_cumprod(x, axis) * b,)


def single_axis(fn: str, axis, ndim: int, allow_none: bool = True):
    """One axis, normalised by ``normalize_axes`` (or None when allowed): the rule of ops that work along one
    axis (argmax, cumsum, sort, gather), which take no tuple."""
    if axis is None and allow_none:
        return None
    if not validation.is_int(axis):
        what = "None or an int" if allow_none else "an int"
        raise TypeError(f"{fn}: axis must be {what} (this op works along one axis); got {axis!r} of type "
                        f"{type(axis).__name__}")
    return normalize_axes(int(axis), ndim, fn)[0]


@documented(X, AXES, KEEPDIMS)
def prod(x, axis=None, keepdims: bool = False):
    """Product over ``axis`` (None, an int or a tuple; 1 over no elements), as ``np.prod``.

    vjp: dL/dx_i = g prod_{j != i} x_j, computed without division (exact when x has zeros, as JAX).
    """
    x = as_tensor(x)
    return Prod.apply(x, axes=normalize_axes(axis, x.ndim, "prod"), keepdims=bool(keepdims))


def _cumulative(fn: str, function, x, axis):
    x = as_tensor(x)
    a = single_axis(fn, axis, x.ndim)
    if a is None:  # NumPy: axis=None runs over the flattened array
        x, a = movement.reshape(x, (-1,)), 0
    return function.apply(x, axis=a)


@documented(X, ONE_AXIS)
def cumsum(x, axis=None):
    """Cumulative sum y_k = sum_{j <= k} x_j along ``axis`` (None: over the flattened array, as ``np.cumsum``).

    vjp: dL/dx_i = sum_{k >= i} g_k, the reversed cumulative sum of g.
    """
    return _cumulative("cumsum", Cumsum, x, axis)


@documented(X, ONE_AXIS)
def cumprod(x, axis=None):
    """Cumulative product y_k = prod_{j <= k} x_j along ``axis`` (None: the flattened array, as ``np.cumprod``).

    vjp: dL/dx_i = sum_{k >= i} g_k prod_{j <= k, j != i} x_j, without division (exact at zeros; see ``Cumprod``).
    """
    return _cumulative("cumprod", Cumprod, x, axis)


# -- mean and variance --------------------------------------------------------------------------------------------
@documented(X, AXES, KEEPDIMS)
def mean(x, axis=None, keepdims: bool = False):
    """Sum over ``axis`` divided by the number of summed elements, n.   vjp: g / n broadcast back.

    Over zero elements (n = 0) the mean is NaN, with NumPy's ``RuntimeWarning`` (NumPy and JAX give NaN too).
    """
    axes = normalize_axes(axis, x.ndim, "mean")
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    if count == 0:
        warnings.warn(f"mean: mean of an empty slice (axis={axis!r} of shape {x.shape} has no elements): NaN",
                      RuntimeWarning, stacklevel=2)
        return Sum.apply(x, axes=axes, keepdims=bool(keepdims)) * float("nan")
    return Sum.apply(x, axes=axes, keepdims=bool(keepdims)) * (1.0 / count)


@documented(X, AXES, DDOF, KEEPDIMS)
def var(x, axis=None, *, ddof=0, keepdims: bool = False):
    """Variance over ``axis``: sum_i (x_i - mean x)^2 / (N - ddof), N the number of reduced elements (a
    composite of mean, subtract, multiply, sum and divide, so its vjp is 2 (x_i - mean x) / (N - ddof) g and
    second order works). ``ddof=0`` is NumPy's and JAX's default (``torch.var`` defaults to ``correction=1``).
    Where N - ddof <= 0 the result is NaN, as ``jnp.var`` (NumPy gives inf or NaN and warns), and so is its
    gradient 0 / (N - ddof): NaN for N = ddof, 0 for N < ddof, exactly as JAX's.
    """
    x = as_tensor(x)
    validation.float_array("var", "x", x.data)
    if not isinstance(ddof, numbers.Real) or isinstance(ddof, bool) or not np.isfinite(ddof):
        raise TypeError(f"var: ddof must be a finite number (the delta degrees of freedom); got {ddof!r}")
    axes = normalize_axes(axis, x.ndim, "var")
    normalizer = int(np.prod([x.shape[a] for a in axes])) - ddof
    centered = x - mean(x, axes, True)
    result = Sum.apply(centered * centered, axes=axes, keepdims=bool(keepdims)) / float(normalizer)
    if normalizer > 0:
        return result
    # jnp.var's where(normalizer > 0, result, nan): the gradient through the division is 0 / normalizer
    return where(np.False_, result, movement.constant(np.asarray(np.nan, x.dtype)))


@documented(X, AXES, DDOF, KEEPDIMS)
def std(x, axis=None, *, ddof=0, keepdims: bool = False):
    """sqrt(var(x, axis, ddof)) (see ``var``). At zero variance the value is 0 and the gradient NaN
    (sqrt'(0) = inf times 0), exactly as ``jnp.std``."""
    return Sqrt.apply(var(x, axis, ddof=ddof, keepdims=keepdims))


# -- elementwise extrema -----------------------------------------------------------------------------------------
class _Pairwise(Function):
    """y = maximum(a, b) (or minimum), elementwise with NumPy broadcasting; NaN if either input is NaN.

    vjp: g goes to the input equal to y, split 0.5 / 0.5 where a == b (as ``jnp.maximum``):
    dL/da = g [a == y] (1/2 if b == y else 1), dL/db likewise, each summed to its input's shape.
    Where y is NaN neither input gets a gradient.
    """

    name, reduce = "", None

    @classmethod
    def forward(cls, ctx, a, b):
        return _binary(cls.name, cls.reduce, a, b)

    @classmethod
    def vjp(cls, ctx, g):
        a, b = ctx.inputs
        y = ctx.output.data
        hit_a, hit_b = a.data == y, b.data == y
        out = []
        for t, hit, other, needed in ((a, hit_a, hit_b, ctx.needs_input_grad[0]),
                                      (b, hit_b, hit_a, ctx.needs_input_grad[1])):
            share = np.where(hit, np.where(other, 0.5, 1.0), 0.0).astype(g.dtype)
            out.append(unbroadcast(g * movement.constant(share), t.shape) if needed else None)
        return tuple(out)

    @staticmethod
    def kink_state(a, b):
        return np.sign(a - b)


class Maximum(_Pairwise):
    __doc__ = _Pairwise.__doc__
    name, reduce = "maximum", staticmethod(np.maximum)


class Minimum(_Pairwise):
    __doc__ = _Pairwise.__doc__.replace("maximum(a, b) (or minimum)", "minimum(a, b) (or maximum)")
    name, reduce = "minimum", staticmethod(np.minimum)


def pair(a, b):
    """``a`` and ``b`` as Tensors; a number takes the dtype of the other operand if that is a Tensor."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return as_tensor(a, like=like), as_tensor(b, like=like)


@documented(PAIR, math=Maximum.__doc__)
def maximum(a, b):
    """Elementwise larger of ``a`` and ``b`` with broadcasting, as ``np.maximum``; ties split the gradient."""
    return Maximum.apply(*pair(a, b))


@documented(PAIR, math=Minimum.__doc__)
def minimum(a, b):
    """Elementwise smaller of ``a`` and ``b`` with broadcasting, as ``np.minimum``; ties split the gradient."""
    return Minimum.apply(*pair(a, b))


# -- no gradient: arg-extrema and truth tests --------------------------------------------------------------------
def _arg_extremum(fn: str, pick, x, axis, keepdims):
    x = as_tensor(x)
    a = single_axis(fn, axis, x.ndim)
    if (x.size if a is None else x.shape[a]) == 0:
        where = "an empty array" if a is None else f"axis {a} of size 0"
        raise ValueError(f"{fn}: cannot take the {fn} of {where} (input shape {x.shape}): no element to pick")
    return movement.constant(np.asarray(pick(x.data, axis=a, keepdims=bool(keepdims))))


@documented(X, ONE_AXIS, KEEPDIMS)
def argmax(x, axis=None, keepdims: bool = False):
    """Index of the largest element along ``axis`` (the first one at ties; axis=None: of the flattened array,
    as ``np.argmax``), an integer Tensor outside the graph (no gradient)."""
    return _arg_extremum("argmax", np.argmax, x, axis, keepdims)


@documented(X, ONE_AXIS, KEEPDIMS)
def argmin(x, axis=None, keepdims: bool = False):
    """Index of the smallest element along ``axis`` (the first one at ties), as ``np.argmin``; no gradient."""
    return _arg_extremum("argmin", np.argmin, x, axis, keepdims)


@documented("x: Tensor (or array-like) of any shape and dtype.", AXES, KEEPDIMS)
def any(x, axis=None, keepdims: bool = False):  # noqa: A001
    """Whether any element over ``axis`` is nonzero (False over no elements), a boolean Tensor; no gradient."""
    x = as_tensor(x)
    return movement.constant(np.asarray(np.any(x.data, axis=normalize_axes(axis, x.ndim, "any"),
                                               keepdims=bool(keepdims))))


@documented("x: Tensor (or array-like) of any shape and dtype.", AXES, KEEPDIMS)
def all(x, axis=None, keepdims: bool = False):  # noqa: A001
    """Whether every element over ``axis`` is nonzero (True over no elements), a boolean Tensor; no gradient."""
    x = as_tensor(x)
    return movement.constant(np.asarray(np.all(x.data, axis=normalize_axes(axis, x.ndim, "all"),
                                               keepdims=bool(keepdims))))
