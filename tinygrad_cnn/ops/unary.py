"""Elementwise math primitives: log1p, expm1, log2, exp2, trig and hyperbolic, erf/erfc, and the step functions.

A smooth one is a ``_Smooth``: ``y = f(x)`` on arrays, vjp ``g * f'(x)`` with ``f'`` written in Tensor ops (so
gradients of gradients work). The step functions (sign, floor, ceil, round) are piecewise constant: their
gradient is zero everywhere (as ``jax.grad`` gives), and their ``kink_state`` is the output itself, which
changes exactly where the function jumps, so ``gradcheck`` flags a finite difference that straddles a jump.
Outside a function's domain the result is IEEE's (``log1p(-2) = nan``, ``atanh(1) = inf``), as in JAX.

``erf`` and ``erfc`` have no NumPy ufunc; ``erf_array``/``erfc_array`` compute them to about 1e-15 relative
error (see their docstrings).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn.function import Function
from tinygrad_cnn.ops.elementwise import Exp, Sqrt
from tinygrad_cnn.tensor import Tensor

LN2 = math.log(2.0)
TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _const(array: np.ndarray) -> Tensor:
    return Tensor._from_op(array, None)


# -- erf and erfc on arrays ---------------------------------------------------------------------------------------
# Below SERIES_BELOW: erf(a) = 2/sqrt(pi) a e^{-a^2} sum_n (2a^2)^n / (2n+1)!!, a series of positive terms (no
# cancellation); 32 terms reach 1e-17 relative at a = 2. From there on: the continued fraction
# erfc(a) = e^{-a^2}/sqrt(pi) / (a + (1/2)/(a + 1/(a + (3/2)/(a + ...)))), 60 levels deep (6.4e-16 relative at
# a = 2, better beyond), evaluated bottom-up. Against the C library on a fine grid over [-27, 27]: erf within
# 7e-16 relative, erfc within 1.3e-13 (its worst just below a = 2, where 1 - erf(a) cancels).
SERIES_BELOW = 2.0
_SERIES = np.cumprod(1.0 / np.arange(1.0, 64.0, 2.0))  # 1 / (2n+1)!! for n = 0..31
_FRACTION_DEPTH = 60
_ERFC_ZERO_FROM = 30.0  # erfc(a) underflows to 0 in float64 for a > 27.3; clipping keeps inf out of the fraction


def _exp_neg_square(a: np.ndarray) -> np.ndarray:
    """e^{-a^2} with a = h + l, h = a rounded to 24 bits so h^2 is exact: e^{-h^2} e^{-(a-h)(a+h)}."""
    h = a.astype(np.float32).astype(np.float64)
    return np.exp(-h * h) * np.exp(-(a - h) * (a + h))


def _erf_series(a: np.ndarray) -> np.ndarray:
    """erf(a) for 0 <= a < SERIES_BELOW."""
    y = 2.0 * a * a
    s = np.full_like(a, _SERIES[-1])
    for c in _SERIES[-2::-1]:  # Horner over the 32 coefficients (a loop over terms, not elements)
        s *= y
        s += c
    return TWO_OVER_SQRT_PI * a * np.exp(-a * a) * s  # a^2 <= 4: its rounding costs < 5e-16


def _erfc_fraction(a: np.ndarray) -> np.ndarray:
    """erfc(a) for a >= SERIES_BELOW (NaN stays NaN)."""
    a = np.minimum(a, _ERFC_ZERO_FROM)
    t = a.copy()
    for k in range(_FRACTION_DEPTH, 0, -1):
        t = a + (0.5 * k) / t
    return _exp_neg_square(a) / (math.sqrt(math.pi) * t)


def _by_magnitude(x: np.ndarray, near, far) -> np.ndarray:
    """``near(|x|, mask)`` where |x| < SERIES_BELOW and ``far(|x|, mask)`` elsewhere, in float64."""
    a = np.abs(np.asarray(x, np.float64))
    out = np.empty_like(a)
    small = a < SERIES_BELOW
    out[small] = near(a[small], small)
    out[~small] = far(a[~small], ~small)
    return out


def erf_array(x: np.ndarray) -> np.ndarray:
    """erf(x) = 2/sqrt(pi) int_0^x e^{-t^2} dt, elementwise, in x's dtype; odd (erf(-0.) = -0.)."""
    magnitude = _by_magnitude(x, lambda a, _: _erf_series(a), lambda a, _: 1.0 - _erfc_fraction(a))
    return np.copysign(magnitude, x).astype(x.dtype, copy=False)


def erfc_array(x: np.ndarray) -> np.ndarray:
    """erfc(x) = 1 - erf(x), elementwise, in x's dtype, with full relative accuracy in the right tail."""
    positive = np.asarray(x) > 0

    def near(a, mask):
        return 1.0 - np.copysign(_erf_series(a), np.asarray(x, np.float64)[mask])

    def far(a, mask):
        tail = _erfc_fraction(a)
        return np.where(positive[mask], tail, 2.0 - tail)

    return _by_magnitude(x, near, far).astype(x.dtype, copy=False)


# -- smooth unary primitives --------------------------------------------------------------------------------------
class _Smooth(Function):
    """y = fn(x) elementwise.   vjp: g * derivative(x, y), the derivative in Tensor ops."""

    fn = None

    @classmethod
    def forward(cls, ctx, x):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return cls.fn(x)

    @classmethod
    def vjp(cls, ctx, g):
        return (g * cls.derivative(ctx.inputs[0], ctx.output),)

    @staticmethod
    def derivative(x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError


def _one_minus_square(x: Tensor) -> Tensor:
    """1 - x^2 as (1 - x)(1 + x): full relative accuracy near |x| = 1."""
    return (1.0 - x) * (1.0 + x)


class Log1p(_Smooth):
    """y = log(1 + x), accurate for small x.   vjp: g / (1 + x)."""

    fn = np.log1p

    @staticmethod
    def derivative(x, y):
        return 1.0 / (x + 1.0)


class Expm1(_Smooth):
    """y = e^x - 1, accurate for small x.   vjp: g * (y + 1)."""

    fn = np.expm1

    @staticmethod
    def derivative(x, y):
        return y + 1.0


class Log2(_Smooth):
    """y = log2 x (exact at powers of 2).   vjp: g / (x ln 2)."""

    fn = np.log2

    @staticmethod
    def derivative(x, y):
        return 1.0 / (x * LN2)


class Exp2(_Smooth):
    """y = 2^x.   vjp: g * y ln 2."""

    fn = np.exp2

    @staticmethod
    def derivative(x, y):
        return y * LN2


class Sin(_Smooth):
    """y = sin x.   vjp: g cos x."""

    fn = np.sin

    @staticmethod
    def derivative(x, y):
        return Cos.apply(x)


class Cos(_Smooth):
    """y = cos x.   vjp: -g sin x."""

    fn = np.cos

    @staticmethod
    def derivative(x, y):
        return -Sin.apply(x)


class Tan(_Smooth):
    """y = tan x.   vjp: g (1 + y^2)."""

    fn = np.tan

    @staticmethod
    def derivative(x, y):
        return y * y + 1.0


class Asin(_Smooth):
    """y = arcsin x on [-1, 1].   vjp: g / sqrt((1 - x)(1 + x))."""

    fn = np.arcsin

    @staticmethod
    def derivative(x, y):
        return 1.0 / Sqrt.apply(_one_minus_square(x))


class Acos(_Smooth):
    """y = arccos x on [-1, 1].   vjp: -g / sqrt((1 - x)(1 + x))."""

    fn = np.arccos

    @staticmethod
    def derivative(x, y):
        return -1.0 / Sqrt.apply(_one_minus_square(x))


class Atan(_Smooth):
    """y = arctan x.   vjp: g / (1 + x^2)."""

    fn = np.arctan

    @staticmethod
    def derivative(x, y):
        return 1.0 / (x * x + 1.0)


class Sinh(_Smooth):
    """y = sinh x.   vjp: g cosh x."""

    fn = np.sinh

    @staticmethod
    def derivative(x, y):
        return Cosh.apply(x)


class Cosh(_Smooth):
    """y = cosh x.   vjp: g sinh x."""

    fn = np.cosh

    @staticmethod
    def derivative(x, y):
        return Sinh.apply(x)


class Atanh(_Smooth):
    """y = artanh x on (-1, 1).   vjp: g / ((1 - x)(1 + x))."""

    fn = np.arctanh

    @staticmethod
    def derivative(x, y):
        return 1.0 / _one_minus_square(x)


class Erf(_Smooth):
    """y = erf x = 2/sqrt(pi) int_0^x e^{-t^2} dt.   vjp: g 2/sqrt(pi) e^{-x^2}."""

    fn = staticmethod(erf_array)

    @staticmethod
    def derivative(x, y):
        return Exp.apply(-(x * x)) * TWO_OVER_SQRT_PI


class Erfc(_Smooth):
    """y = erfc x = 1 - erf x (accurate where it is tiny, x >> 1).   vjp: -g 2/sqrt(pi) e^{-x^2}."""

    fn = staticmethod(erfc_array)

    @staticmethod
    def derivative(x, y):
        return Exp.apply(-(x * x)) * -TWO_OVER_SQRT_PI


# -- piecewise-constant primitives --------------------------------------------------------------------------------
class _Step(Function):
    """y = fn(x), piecewise constant.   vjp: 0 (as jax.grad). kink_state: y itself (it changes at every jump)."""

    fn = None

    @classmethod
    def forward(cls, ctx, x, **params):
        return cls.fn(x, **params)

    @staticmethod
    def vjp(ctx, g):
        return (_const(np.zeros(g.shape, g.dtype)),)

    @classmethod
    def kink_state(cls, x, **params):
        return cls.fn(x, **params)


class Sign(_Step):
    """y = -1, 0 or 1 as x < 0, x = 0, x > 0 (NaN for NaN).   vjp: 0, also at x = 0 (as jax.grad(jnp.sign))."""

    fn = np.sign


class Floor(_Step):
    """y = the largest integer <= x.   vjp: 0."""

    fn = np.floor


class Ceil(_Step):
    """y = the smallest integer >= x.   vjp: 0."""

    fn = np.ceil


class Round(_Step):
    """y = x rounded to ``decimals`` decimals, halves to even (np.round, jnp.round: round(2.5) = 2).   vjp: 0."""

    fn = np.round
