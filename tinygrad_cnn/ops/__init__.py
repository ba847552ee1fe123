"""The engine's primitives, one family a module, and the thin functions that apply them."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.ops import unary as _unary
from tinygrad_cnn.ops._docs import AB, AXES, KEEPDIMS, X, documented
from tinygrad_cnn.ops._util import normalize_axes
from tinygrad_cnn.ops.activations import (
    celu,
    elu,
    gelu,
    hard_sigmoid,
    hard_silu,
    log_sigmoid,
    mish,
    prelu,
    relu6,
    selu,
    silu,
    softsign,
)
from tinygrad_cnn.ops.elementwise import (
    Abs,
    Add,
    Div,
    Exp,
    LeakyRelu,
    Mul,
    Neg,
    Relu,
    Softplus,
    Sqrt,
    Sub,
    Tanh,
    astype,
    log,
    pow_scalar,
    sigmoid,
    where,
)
from tinygrad_cnn.ops.elementwise import Clip as _Clip
from tinygrad_cnn.ops.elementwise import Pow as _Pow
from tinygrad_cnn.ops.indexing import argsort, gather, one_hot, sort, take_along_axis, topk
from tinygrad_cnn.ops.linalg import matmul
from tinygrad_cnn.ops.movement import (
    broadcast_to,
    concatenate,
    constant,
    getitem,
    pad,
    reshape,
    stack,
    transpose,
    unbroadcast,
)
from tinygrad_cnn.ops.normalization import normalize
from tinygrad_cnn.ops.reduce import Max as _Max
from tinygrad_cnn.ops.reduce import Min as _Min
from tinygrad_cnn.ops.reduce import Sum as _Sum
from tinygrad_cnn.ops.reduce import (  # noqa: A004  (any, all: NumPy's names)
    all,
    any,
    argmax,
    argmin,
    cumprod,
    cumsum,
    maximum,
    mean,
    minimum,
    prod,
    std,
    var,
)
from tinygrad_cnn.ops.shape import (
    chunk,
    expand,
    expand_dims,
    flip,
    moveaxis,
    repeat,
    roll,
    split,
    squeeze,
    swapaxes,
    tile,
)
from tinygrad_cnn.tensor import as_tensor

__all__ = [
    "abs", "add", "astype", "broadcast_to", "clip", "concatenate", "constant", "div", "exp", "getitem",
    "leaky_relu", "log", "matmul", "max", "mean", "min", "mul", "neg", "normalize", "pad", "pow", "relu", "reshape",
    "sigmoid", "softplus", "sqrt", "stack", "sub", "sum", "tanh", "transpose", "unbroadcast", "where",
    # reductions and indexing along an axis
    "all", "any", "argmax", "argmin", "argsort", "cumprod", "cumsum", "gather", "maximum", "minimum", "one_hot",
    "prod", "sort", "std", "take_along_axis", "topk", "var",
]
__all__ += ["chunk", "expand", "expand_dims", "flip", "moveaxis", "repeat", "roll", "split", "squeeze", "swapaxes",
            "tile"]


@documented(AB, math=Add.__doc__)
def add(a, b): return Add.apply(a, b)
@documented(AB, math=Sub.__doc__)
def sub(a, b): return Sub.apply(a, b)
@documented(AB, math=Mul.__doc__)
def mul(a, b): return Mul.apply(a, b)
@documented(AB, math=Div.__doc__)
def div(a, b): return Div.apply(a, b)
@documented(X, math=Neg.__doc__)
def neg(x): return Neg.apply(x)
@documented(X, math=Exp.__doc__)
def exp(x): return Exp.apply(x)
@documented(X, math=Sqrt.__doc__)
def sqrt(x): return Sqrt.apply(x)
@documented(X, math=Abs.__doc__)
def abs(x): return Abs.apply(x)  # noqa: A001
@documented(X, math=Relu.__doc__)
def relu(x): return Relu.apply(x)
@documented(X, math=Softplus.__doc__)
def softplus(x): return Softplus.apply(x)
@documented(X, math=Tanh.__doc__)
def tanh(x): return Tanh.apply(x)


@documented(X, "negative_slope: float s, default 0.2 (Keras' default): the slope for x < 0.", math=LeakyRelu.__doc__)
def leaky_relu(x, negative_slope: float = 0.2):
    return LeakyRelu.apply(x, negative_slope=float(negative_slope))


def pow(x, p):  # noqa: A001
    """x ** p: a constant exponent (a Python number) or an elementwise Tensor exponent.

    vjp: g p x^(p - 1) to x; for a Tensor p also g log(x) x^p to p, with log(0) read as 0 (as JAX).

    Args:
        x: Tensor of any shape and floating dtype.
        p: a Python number (a constant, no gradient) or a Tensor broadcast against x (gets a gradient).
    """
    if isinstance(p, (int, float, np.number)) and not isinstance(p, bool):
        return pow_scalar(x, p)
    return _Pow.apply(x, as_tensor(p, like=x))


@documented(X, "a_min, a_max: numbers, the bounds lo and hi (None: no bound on that side; not both None, and\n"
            "    a_min <= a_max).", math=_Clip.__doc__)
def clip(x, a_min=None, a_max=None):
    if a_min is None and a_max is None:
        raise ValueError("clip: at least one of a_min and a_max must be given; got both None")
    if a_min is not None and a_max is not None and a_min > a_max:
        raise ValueError(f"clip: a_min={a_min} must be <= a_max={a_max}")
    return _Clip.apply(x, a_min=a_min, a_max=a_max)


@documented(X, AXES, KEEPDIMS, math=_Sum.__doc__)
def sum(x, axis=None, keepdims: bool = False):  # noqa: A001
    axes = normalize_axes(axis, x.ndim, "sum")
    return _Sum.apply(x, axes=axes, keepdims=bool(keepdims))


@documented(X, AXES, KEEPDIMS, math=_Max.__doc__)
def max(x, axis=None, keepdims: bool = False):  # noqa: A001
    return _Max.apply(x, axes=normalize_axes(axis, x.ndim, "max"), keepdims=bool(keepdims))


@documented(X, AXES, KEEPDIMS, math=_Min.__doc__)
def min(x, axis=None, keepdims: bool = False):  # noqa: A001
    return _Min.apply(x, axes=normalize_axes(axis, x.ndim, "min"), keepdims=bool(keepdims))


# -- elementwise math (ops.unary) and activations (ops.activations) ------------------------------------------------
__all__ += [
    "acos", "asin", "atan", "atanh", "ceil", "cos", "cosh", "erf", "erfc", "exp2", "expm1", "floor", "log1p", "log2",
    "reciprocal", "round", "rsqrt", "sign", "sin", "sinh", "square", "tan",
    "celu", "elu", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "mish", "prelu", "relu6", "selu",
    "silu", "softsign", "swish",
]


@documented(X, math=_unary.Log1p.__doc__)
def log1p(x): return _unary.Log1p.apply(x)
@documented(X, math=_unary.Expm1.__doc__)
def expm1(x): return _unary.Expm1.apply(x)
@documented(X, math=_unary.Log2.__doc__)
def log2(x): return _unary.Log2.apply(x)
@documented(X, math=_unary.Exp2.__doc__)
def exp2(x): return _unary.Exp2.apply(x)
@documented(X, math=_unary.Sin.__doc__)
def sin(x): return _unary.Sin.apply(x)
@documented(X, math=_unary.Cos.__doc__)
def cos(x): return _unary.Cos.apply(x)
@documented(X, math=_unary.Tan.__doc__)
def tan(x): return _unary.Tan.apply(x)
@documented(X, math=_unary.Asin.__doc__)
def asin(x): return _unary.Asin.apply(x)
@documented(X, math=_unary.Acos.__doc__)
def acos(x): return _unary.Acos.apply(x)
@documented(X, math=_unary.Atan.__doc__)
def atan(x): return _unary.Atan.apply(x)
@documented(X, math=_unary.Sinh.__doc__)
def sinh(x): return _unary.Sinh.apply(x)
@documented(X, math=_unary.Cosh.__doc__)
def cosh(x): return _unary.Cosh.apply(x)
@documented(X, math=_unary.Atanh.__doc__)
def atanh(x): return _unary.Atanh.apply(x)
@documented(X, math=_unary.Erf.__doc__)
def erf(x): return _unary.Erf.apply(x)
@documented(X, math=_unary.Erfc.__doc__)
def erfc(x): return _unary.Erfc.apply(x)
@documented(X, math=_unary.Sign.__doc__)
def sign(x): return _unary.Sign.apply(x)
@documented(X, math=_unary.Floor.__doc__)
def floor(x): return _unary.Floor.apply(x)
@documented(X, math=_unary.Ceil.__doc__)
def ceil(x): return _unary.Ceil.apply(x)


def round(x, decimals: int = 0):  # noqa: A001
    """x rounded to ``decimals`` decimals, halves to even (as np.round, jnp.round: round(2.5) = 2); zero gradient.

    Args:
        x: Tensor of any shape and floating dtype; the result has its shape and dtype.
        decimals: int, default 0: round to multiples of 10^-decimals (negative: to tens, hundreds, ...).
    """
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int; got {decimals!r} of type {type(decimals).__name__}")
    return _unary.Round.apply(x, decimals=int(decimals))


def square(x):
    """x * x (a product in the graph, so vjp: 2 x g and higher orders work).

    Args:
        x: Tensor of any shape and floating dtype.
    """
    return x * x


def reciprocal(x):
    """1 / x (a division in the graph; vjp: -g / x^2; 1/0 = inf as IEEE).

    Args:
        x: Tensor of any shape and floating dtype.
    """
    return 1.0 / x


def rsqrt(x):
    """1 / sqrt(x) (vjp: -g x^(-3/2) / 2; 0 gives inf, a negative x NaN).

    Args:
        x: Tensor of any shape and floating dtype.
    """
    return 1.0 / sqrt(x)


swish, hard_swish = silu, hard_silu  # Keras' other names
