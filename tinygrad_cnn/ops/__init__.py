"""The engine's primitives, one family a module, and the thin functions that apply them."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.ops import unary as _unary
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


def add(a, b): return Add.apply(a, b)
def sub(a, b): return Sub.apply(a, b)
def mul(a, b): return Mul.apply(a, b)
def div(a, b): return Div.apply(a, b)
def neg(x): return Neg.apply(x)
def exp(x): return Exp.apply(x)
def sqrt(x): return Sqrt.apply(x)
def abs(x): return Abs.apply(x)  # noqa: A001
def relu(x): return Relu.apply(x)
def softplus(x): return Softplus.apply(x)
def tanh(x): return Tanh.apply(x)


def leaky_relu(x, negative_slope: float = 0.2):
    return LeakyRelu.apply(x, negative_slope=float(negative_slope))


def pow(x, p):  # noqa: A001
    """x ** p: a constant exponent (a Python number) or an elementwise Tensor exponent."""
    if isinstance(p, (int, float, np.number)) and not isinstance(p, bool):
        return pow_scalar(x, p)
    return _Pow.apply(x, as_tensor(p, like=x))


def clip(x, a_min=None, a_max=None):
    if a_min is None and a_max is None:
        raise ValueError("clip: at least one of a_min and a_max must be given; got both None")
    if a_min is not None and a_max is not None and a_min > a_max:
        raise ValueError(f"clip: a_min={a_min} must be <= a_max={a_max}")
    return _Clip.apply(x, a_min=a_min, a_max=a_max)


def sum(x, axis=None, keepdims: bool = False):  # noqa: A001
    axes = normalize_axes(axis, x.ndim, "sum")
    return _Sum.apply(x, axes=axes, keepdims=bool(keepdims))


def max(x, axis=None, keepdims: bool = False):  # noqa: A001
    return _Max.apply(x, axes=normalize_axes(axis, x.ndim, "max"), keepdims=bool(keepdims))


def min(x, axis=None, keepdims: bool = False):  # noqa: A001
    return _Min.apply(x, axes=normalize_axes(axis, x.ndim, "min"), keepdims=bool(keepdims))


# -- elementwise math (ops.unary) and activations (ops.activations) ------------------------------------------------
__all__ += [
    "acos", "asin", "atan", "atanh", "ceil", "cos", "cosh", "erf", "erfc", "exp2", "expm1", "floor", "log1p", "log2",
    "reciprocal", "round", "rsqrt", "sign", "sin", "sinh", "square", "tan",
    "celu", "elu", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "mish", "prelu", "relu6", "selu",
    "silu", "softsign", "swish",
]


def log1p(x): return _unary.Log1p.apply(x)
def expm1(x): return _unary.Expm1.apply(x)
def log2(x): return _unary.Log2.apply(x)
def exp2(x): return _unary.Exp2.apply(x)
def sin(x): return _unary.Sin.apply(x)
def cos(x): return _unary.Cos.apply(x)
def tan(x): return _unary.Tan.apply(x)
def asin(x): return _unary.Asin.apply(x)
def acos(x): return _unary.Acos.apply(x)
def atan(x): return _unary.Atan.apply(x)
def sinh(x): return _unary.Sinh.apply(x)
def cosh(x): return _unary.Cosh.apply(x)
def atanh(x): return _unary.Atanh.apply(x)
def erf(x): return _unary.Erf.apply(x)
def erfc(x): return _unary.Erfc.apply(x)
def sign(x): return _unary.Sign.apply(x)
def floor(x): return _unary.Floor.apply(x)
def ceil(x): return _unary.Ceil.apply(x)


def round(x, decimals: int = 0):  # noqa: A001
    """x rounded to ``decimals`` decimals, halves to even (as np.round); zero gradient."""
    if not isinstance(decimals, (int, np.integer)) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int; got {decimals!r} of type {type(decimals).__name__}")
    return _unary.Round.apply(x, decimals=int(decimals))


def square(x):
    """x * x."""
    return x * x


def reciprocal(x):
    """1 / x."""
    return 1.0 / x


def rsqrt(x):
    """1 / sqrt(x)."""
    return 1.0 / sqrt(x)


swish, hard_swish = silu, hard_silu  # Keras' other names
