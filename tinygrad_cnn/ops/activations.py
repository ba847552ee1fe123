"""Activation functions: the kinked ones are primitives (Elu, Relu6, Prelu, each with a ``kink_state``), the
smooth ones composites of existing primitives (their gradients, to any order, come from those).

Values at the kinks follow ``jax.nn``: ``relu6'(0) = relu6'(6) = 0``, ``elu'(0) = alpha`` (the x <= 0 side),
``prelu`` takes the x >= 0 side at 0 (slope 1, as ``jax.nn.leaky_relu``). ``hard_sigmoid`` is Keras 3's (and
``jax.nn``'s): relu6(x + 3) / 6.
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn.function import Function
from tinygrad_cnn.ops._docs import X, documented
from tinygrad_cnn.ops.elementwise import Abs, Sigmoid, Softplus, Tanh, _binary, _const, where
from tinygrad_cnn.ops.movement import unbroadcast
from tinygrad_cnn.ops.unary import Erfc
from tinygrad_cnn.tensor import Tensor

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
SQRT_HALF = math.sqrt(0.5)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


class Elu(Function):
    """y = x for x > 0, alpha (e^{beta x} - 1) for x <= 0 (expm1 of min(beta x, 0): no overflow for large x).

    ``beta = 1`` is ELU, ``beta = 1 / alpha`` CELU.   vjp: g for x > 0, g beta (y + alpha) for x <= 0, so
    elu'(0) = alpha beta (the x <= 0 side, as ``jax.nn.elu``). The second derivative jumps at 0 (kink_state).
    """

    @staticmethod
    def forward(ctx, x, alpha, beta):
        negative = np.expm1(np.minimum(x * np.asarray(beta, x.dtype), 0))
        return np.where(x > 0, x, np.asarray(alpha, x.dtype) * negative)

    @staticmethod
    def vjp(ctx, g):
        x, alpha, beta = ctx.inputs[0], ctx.params["alpha"], ctx.params["beta"]
        slope = where(x.data > 0, _const(np.ones((), g.dtype)), (ctx.output + alpha) * beta)
        return (g * slope,)

    @staticmethod
    def kink_state(x, alpha, beta):
        return x > 0


class Relu6(Function):
    """y = min(max(x, 0), 6).   vjp: g for 0 < x < 6, else 0 (relu6'(0) = relu6'(6) = 0, as ``jax.nn.relu6``)."""

    @staticmethod
    def forward(ctx, x):
        return np.clip(x, 0, 6).astype(x.dtype, copy=False)

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0].data
        return (g * _const(((x > 0) & (x < 6)).astype(g.dtype)),)

    @staticmethod
    def kink_state(x):
        return np.stack([x > 0, x < 6])


class Prelu(Function):
    """y = x for x >= 0, alpha x for x < 0, alpha broadcast against x.

    vjp: (g * (1 if x >= 0 else alpha), g * (0 if x >= 0 else x)), each summed to its input's shape; at x = 0
    the slope is 1 (the x >= 0 side, as ``jax.nn.leaky_relu``).
    """

    @staticmethod
    def forward(ctx, x, alpha):
        return _binary("prelu", lambda a, b: np.where(a >= 0, a, a * b), x, alpha)

    @staticmethod
    def vjp(ctx, g):
        x, alpha = ctx.inputs
        nonnegative = x.data >= 0
        zero, one = _const(np.zeros((), g.dtype)), _const(np.ones((), g.dtype))
        gx = unbroadcast(g * where(nonnegative, one, alpha), x.shape) if ctx.needs_input_grad[0] else None
        ga = unbroadcast(g * where(nonnegative, zero, x), alpha.shape) if ctx.needs_input_grad[1] else None
        return gx, ga

    @staticmethod
    def kink_state(x, alpha):
        return x >= 0


@documented(X, "alpha: float, default 1.0: the negative branch saturates at -alpha.")
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise; elu'(0) = alpha (the x <= 0 side, as ``jax.nn.elu``)."""
    return Elu.apply(x, alpha=float(alpha), beta=1.0)


@documented(X, "alpha: float, default 1.0 (nonzero): the negative branch saturates at -alpha, its scale.")
def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^{x / alpha} - 1) otherwise (continuously differentiable: slope 1 at 0)."""
    return Elu.apply(x, alpha=float(alpha), beta=1.0 / float(alpha))


@documented(X)
def selu(x: Tensor) -> Tensor:
    """scale * elu(x, alpha) with the self-normalizing constants alpha = 1.6732..., scale = 1.0507..."""
    return elu(x, SELU_ALPHA) * SELU_SCALE


@documented(X, math=Relu6.__doc__)
def relu6(x: Tensor) -> Tensor:
    return Relu6.apply(x)


@documented(X, "alpha: Tensor of learned slopes for x < 0, broadcast against x (e.g. one per channel);\n"
            "    it gets a gradient, summed back to its shape.", math=Prelu.__doc__)
def prelu(x: Tensor, alpha: Tensor) -> Tensor:
    return Prelu.apply(x, alpha)


@documented(X, "approximate: bool, default False: the exact erfc form; True the tanh form (Keras' and PyTorch's\n"
            "    ``approximate='tanh'``; ``jax.nn.gelu`` defaults to True).")
def gelu(x: Tensor, approximate: bool = False) -> Tensor:
    """x Phi(x), Phi the standard normal CDF: exactly ``x/2 erfc(-x/sqrt 2)`` (erfc keeps the left tail's relative
    accuracy), or with ``approximate`` the tanh form ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    if approximate:
        inner = (x + x * x * x * GELU_CUBIC) * SQRT_2_OVER_PI
        return x * (Tanh.apply(inner) + 1.0) * 0.5
    return x * Erfc.apply(x * -SQRT_HALF) * 0.5


@documented(X)
def silu(x: Tensor) -> Tensor:
    """x sigmoid(x) (also called swish)."""
    return x * Sigmoid.apply(x)


@documented(X)
def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|); its second derivative jumps at 0 (abs' kink_state flags it)."""
    return x / (Abs.apply(x) + 1.0)


@documented(X)
def hard_sigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6: 0 for x <= -3, 1 for x >= 3, x/6 + 1/2 between (Keras 3, jax.nn, PyTorch's hardsigmoid)."""
    return Relu6.apply(x + 3.0) / 6.0


@documented(X)
def hard_silu(x: Tensor) -> Tensor:
    """x hard_sigmoid(x) (also called hard_swish): 0 for x <= -3, x for x >= 3, x (x + 3) / 6 between."""
    return x * hard_sigmoid(x)


@documented(X)
def mish(x: Tensor) -> Tensor:
    """x tanh(softplus(x)), softplus = logaddexp(x, 0) (finite for |x| = 1000)."""
    return x * Tanh.apply(Softplus.apply(x))


@documented(X)
def log_sigmoid(x: Tensor) -> Tensor:
    """log(1 / (1 + e^-x)) = -softplus(-x) (finite for |x| = 1000; its derivative is sigmoid(-x))."""
    return -Softplus.apply(-x)
