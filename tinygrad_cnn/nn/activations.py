"""Activation functions by Keras 3 name: relu softplus sigmoid tanh softmax linear leaky_relu gelu silu (swish)
elu selu celu softsign hard_sigmoid hard_silu (hard_swish) mish relu6 log_sigmoid log_softmax exponential.

``get(None)`` is ``linear`` (the identity), as in Keras. Activations are
serialized as their name; the aliases ``swish`` and ``hard_swish`` serialize as
``silu`` and ``hard_silu``, as in Keras 3.
"""

from __future__ import annotations

from tinygrad_cnn import functional as F
from tinygrad_cnn import ops
from tinygrad_cnn.nn import _serial
from tinygrad_cnn.tensor import as_tensor

__all__ = ["get", "leaky_relu", "linear", "relu", "serialize", "sigmoid", "softmax", "softplus", "tanh",
           "celu", "elu", "exponential", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid",
           "log_softmax", "mish", "relu6", "selu", "silu", "softsign", "swish"]


def relu(x):
    """max(x, 0)."""
    return F.relu(x)


def softplus(x):
    """log(1 + e^x)."""
    return F.softplus(x)


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return F.sigmoid(x)


def tanh(x):
    """tanh(x)."""
    return F.tanh(x)


def softmax(x, axis: int = -1):
    """e^x_i / sum_j e^x_j over ``axis``."""
    return F.softmax(x, axis)


def linear(x):
    """The identity."""
    return x


def leaky_relu(x, negative_slope: float = 0.2):
    """x if x >= 0 else negative_slope * x (Keras' default slope 0.2)."""
    return F.leaky_relu(x, negative_slope)


def gelu(x, approximate: bool = False):
    """x Phi(x), Phi the standard normal CDF; ``approximate=True``: the tanh form (Keras' default: exact)."""
    return F.gelu(x, approximate)


def silu(x):
    """x sigmoid(x)."""
    return F.silu(x)


def elu(x, alpha: float = 1.0):
    """x if x > 0 else alpha (e^x - 1)."""
    return F.elu(x, alpha)


def selu(x):
    """1.0507... * elu(x, 1.6732...)."""
    return F.selu(x)


def celu(x, alpha: float = 1.0):
    """x if x > 0 else alpha (e^{x / alpha} - 1)."""
    return F.celu(x, alpha)


def softsign(x):
    """x / (1 + |x|)."""
    return F.softsign(x)


def hard_sigmoid(x):
    """relu6(x + 3) / 6: Keras 3's hard sigmoid (Keras 2's was clip(0.2 x + 0.5, 0, 1))."""
    return F.hard_sigmoid(x)


def hard_silu(x):
    """x hard_sigmoid(x)."""
    return F.hard_silu(x)


def mish(x):
    """x tanh(softplus(x))."""
    return F.mish(x)


def relu6(x):
    """min(max(x, 0), 6)."""
    return F.relu6(x)


def log_sigmoid(x):
    """log sigmoid(x) = -softplus(-x)."""
    return F.log_sigmoid(x)


def log_softmax(x, axis: int = -1):
    """x_i - logsumexp(x) over ``axis``."""
    return F.log_softmax(x, axis)


def exponential(x):
    """e^x."""
    return ops.exp(as_tensor(x))


swish, hard_swish = silu, hard_silu  # Keras 3's aliases (serialized under the names above)

_BY_NAME = {f.__name__: f for f in (relu, softplus, sigmoid, tanh, softmax, linear, leaky_relu, gelu, silu, elu,
                                    selu, celu, softsign, hard_sigmoid, hard_silu, mish, relu6, log_sigmoid,
                                    log_softmax, exponential)}
_BY_NAME.update(swish=silu, hard_swish=hard_silu)


def get(identifier, where: str = "activations.get", arg: str = "activation"):
    """An activation function from a name or a callable; None gives ``linear``."""
    if identifier is None:
        return linear
    if isinstance(identifier, dict):
        raise TypeError(f"{where}: {arg} must be a name or a callable; got {identifier!r}")
    return _serial.lookup(where, arg, identifier, _BY_NAME, {}, "activation")


def serialize(activation) -> str:
    """The activation's name (``"relu"``)."""
    return _serial.serialize(activation, _BY_NAME)
