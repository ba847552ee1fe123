"""Elementwise primitives with NumPy broadcasting.

Each vjp multiplies the cotangent ``g`` by the local derivative and, for
binary ops, sums it back to the input's shape (``unbroadcast``).
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.function import Function
from tinygrad_cnn.modes import no_grad
from tinygrad_cnn.ops._docs import AB, X, documented
from tinygrad_cnn.ops.movement import unbroadcast
from tinygrad_cnn.tensor import Tensor


def _const(array: np.ndarray) -> Tensor:
    return Tensor._from_op(array, None)


def _broadcast_error(fn: str, a: np.ndarray, b: np.ndarray) -> ValueError:
    return ValueError(f"{fn}: operands with shapes {a.shape} and {b.shape} cannot be broadcast together "
                      f"(NumPy's rule: trailing axes must be equal or 1)")


def _binary(fn: str, op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # IEEE results, as JAX: 1/0 = inf
            return op(a, b)
    except ValueError as exc:
        raise _broadcast_error(fn, a, b) from exc


class Add(Function):
    """y = a + b.   vjp: (g, g), each summed to its input's shape."""

    @staticmethod
    def forward(ctx, a, b):
        return _binary("add", np.add, a, b)

    @staticmethod
    def vjp(ctx, g):
        a, b = ctx.inputs
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)


class Sub(Function):
    """y = a - b.   vjp: (g, -g)."""

    @staticmethod
    def forward(ctx, a, b):
        return _binary("sub", np.subtract, a, b)

    @staticmethod
    def vjp(ctx, g):
        a, b = ctx.inputs
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)


class Mul(Function):
    """y = a * b.   vjp: (g * b, g * a)."""

    @staticmethod
    def forward(ctx, a, b):
        return _binary("mul", np.multiply, a, b)

    @staticmethod
    def vjp(ctx, g):
        a, b = ctx.inputs
        ga = unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b.   vjp: (g / b, -g * y / b)."""

    @staticmethod
    def forward(ctx, a, b):
        return _binary("div", np.divide, a, b)

    @staticmethod
    def vjp(ctx, g):
        a, b = ctx.inputs
        ga = unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-(g * ctx.output) / b, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class PowScalar(Function):
    """y = x ** p for a constant p.   vjp: g * p * x ** (p - 1)."""

    @staticmethod
    def forward(ctx, x, p):
        return np.power(x, np.asarray(p, dtype=x.dtype))

    @staticmethod
    def vjp(ctx, g):
        (x,) = ctx.inputs
        p = ctx.params["p"]
        if p == 0:
            return (g * 0.0,)
        return (g * (p * pow_scalar(x, p - 1)),)


class Pow(Function):
    """y = a ** b.   vjp: (g * b * a ** (b - 1), g * log(a) * y), with log(0) read as 0 (as JAX does)."""

    @staticmethod
    def forward(ctx, a, b):
        return _binary("pow", np.power, a, b)

    @staticmethod
    def vjp(ctx, g):
        a, b = ctx.inputs
        ga = unbroadcast(g * b * a ** (b - 1.0), a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            safe_a = where(a.data == 0, _const(np.ones((), a.dtype)), a)
            gb = unbroadcast(g * log(safe_a) * ctx.output, b.shape)
        return ga, gb


class Neg(Function):
    """y = -x.   vjp: -g."""

    @staticmethod
    def forward(ctx, x):
        return np.negative(x)

    @staticmethod
    def vjp(ctx, g):
        return (-g,)


class Exp(Function):
    """y = e^x.   vjp: g * y."""

    @staticmethod
    def forward(ctx, x):
        return np.exp(x)

    @staticmethod
    def vjp(ctx, g):
        return (g * ctx.output,)


class Log(Function):
    """y = ln x (IEEE: log 0 = -inf, log of a negative = nan, as JAX).   vjp: g / x."""

    @staticmethod
    def forward(ctx, x):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    @staticmethod
    def vjp(ctx, g):
        return (g / ctx.inputs[0],)


class Sqrt(Function):
    """y = sqrt(x).   vjp: g / (2 y)."""

    @staticmethod
    def forward(ctx, x):
        with np.errstate(invalid="ignore"):
            return np.sqrt(x)

    @staticmethod
    def vjp(ctx, g):
        return (g / (2.0 * ctx.output),)


class Abs(Function):
    """y = |x|.   vjp: g * (1 if x >= 0 else -1), so abs'(0) = 1 (as ``jax.grad(jnp.abs)(0.)``)."""

    @staticmethod
    def forward(ctx, x):
        return np.abs(x)

    @staticmethod
    def vjp(ctx, g):
        return (g * _const(np.where(ctx.inputs[0].data >= 0, 1.0, -1.0).astype(g.dtype)),)

    @staticmethod
    def kink_state(x):
        return x >= 0


class Relu(Function):
    """y = max(x, 0).   vjp: g * [x > 0], so relu'(0) = 0 (as ``jax.nn.relu``)."""

    @staticmethod
    def forward(ctx, x):
        return np.maximum(x, 0)

    @staticmethod
    def vjp(ctx, g):
        return (g * _const((ctx.inputs[0].data > 0).astype(g.dtype)),)

    @staticmethod
    def kink_state(x):
        return x > 0


class LeakyRelu(Function):
    """y = x if x >= 0 else s * x.   vjp: g * (1 if x >= 0 else s) (as ``jax.nn.leaky_relu``)."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        return np.where(x >= 0, x, x * np.asarray(negative_slope, x.dtype))

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0].data
        slope = np.where(x >= 0, 1.0, ctx.params["negative_slope"]).astype(g.dtype)
        return (g * _const(slope),)

    @staticmethod
    def kink_state(x, negative_slope):
        return x >= 0


class Softplus(Function):
    """y = log(1 + e^x), computed as logaddexp(x, 0) (finite for |x| = 1000).   vjp: g * sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        return np.logaddexp(x, np.zeros((), x.dtype))

    @staticmethod
    def vjp(ctx, g):
        return (g * sigmoid(ctx.inputs[0]),)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x), computed as e^x / (1 + e^x) for x < 0 (no overflow, full relative accuracy in
    the left tail, e.g. sigmoid(-40) = 4.2e-18 rather than 0).   vjp: g * y * (1 - y)."""

    @staticmethod
    def forward(ctx, x):
        z = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        one = np.ones((), x.dtype)
        return np.where(x >= 0, one / (one + z), z / (one + z)).astype(x.dtype, copy=False)

    @staticmethod
    def vjp(ctx, g):
        y = ctx.output
        return (g * (y * (1.0 - y)),)


class Tanh(Function):
    """y = tanh(x).   vjp: g * (1 - y)(1 + y) (= 1 - y^2, factored to keep relative accuracy at large |x|)."""

    @staticmethod
    def forward(ctx, x):
        return np.tanh(x)

    @staticmethod
    def vjp(ctx, g):
        y = ctx.output
        return (g * ((1.0 - y) * (1.0 + y)),)


class Clip(Function):
    """y = min(max(x, lo), hi).   vjp: g inside (lo, hi), 0 outside, g/2 exactly at a bound (as ``jnp.clip``)."""

    @staticmethod
    def forward(ctx, x, a_min, a_max):
        return np.clip(x, a_min, a_max).astype(x.dtype, copy=False)

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0].data
        lo, hi = ctx.params["a_min"], ctx.params["a_max"]
        slope = np.ones_like(x, dtype=g.dtype)
        for bound, outside in ((lo, np.less), (hi, np.greater)):
            if bound is not None:
                slope[outside(x, bound)] = 0.0
                slope[x == bound] *= 0.5
        return (g * _const(slope),)

    @staticmethod
    def kink_state(x, a_min, a_max):
        lo = x > a_min if a_min is not None else np.zeros(x.shape, bool)
        hi = x < a_max if a_max is not None else np.zeros(x.shape, bool)
        return np.stack([lo, hi])


class Where(Function):
    """y = where(c, a, b) for a constant boolean c.   vjp: (where(c, g, 0), where(c, 0, g))."""

    @staticmethod
    def forward(ctx, a, b, condition):
        return np.where(condition, a, b)

    @staticmethod
    def vjp(ctx, g):
        a, b = ctx.inputs
        c = ctx.params["condition"]
        zero = _const(np.zeros((), g.dtype))
        ga = unbroadcast(where(c, g, zero), a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(where(c, zero, g), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class AsType(Function):
    """y = x cast to ``dtype``.   vjp: g cast back to x's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def vjp(ctx, g):
        return (astype(g, ctx.inputs[0].dtype),)


@documented(X, "p: a Python number, the constant exponent (no gradient).", math=PowScalar.__doc__)
def pow_scalar(x: Tensor, p) -> Tensor:
    return PowScalar.apply(x, p=p)


@documented(X, math=Log.__doc__)
def log(x: Tensor) -> Tensor:
    return Log.apply(x)


@documented(X, math=Sigmoid.__doc__)
def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


@documented("condition: array-like of bools (a constant, no gradient), broadcast against a and b.", AB,
            math=Where.__doc__)
def where(condition, a: Tensor, b: Tensor) -> Tensor:
    condition = np.asarray(condition, dtype=bool)
    try:
        np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError as exc:
        raise ValueError(f"where: condition, a and b with shapes {condition.shape}, {a.shape} and {b.shape} cannot "
                         f"be broadcast together") from exc
    return Where.apply(a, b, condition=condition)


def astype(x: Tensor, dtype) -> Tensor:
    """``x`` cast to ``dtype``: a float dtype keeps the graph; an integer or bool dtype gives a constant (outside the
    graph, ``requires_grad=False``), so no gradient flows through the cast: JAX's semantics, where the derivative
    of an integer cast is zero (``jax.grad`` returns zeros, ``tinygrad_cnn.grad`` too). Complex, string and object
    dtypes are refused: the engine cannot differentiate them.

    Args:
        x: Tensor of any shape.
        dtype: a NumPy dtype or its name (``np.float64``, ``"float32"``, ``"int32"``, ``bool``).
    """
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"astype: dtype={dtype!r} is not a NumPy dtype (e.g. 'float32', 'float64')") from exc
    if dtype.kind not in "biuf":
        raise TypeError(f"astype: dtype {dtype} is not one the engine works with (float, int or bool; "
                        f"complex, string and object data cannot be differentiated)")
    if dtype.kind != "f":
        with no_grad():
            return AsType.apply(x, dtype=dtype)
    return AsType.apply(x, dtype=dtype)
