"""Activation functions by Keras name: relu softplus sigmoid tanh softmax linear leaky_relu.

``get(None)`` is ``linear`` (the identity), as in Keras. Activations are
serialized as their name.
"""

from __future__ import annotations

from tinygrad_cnn import functional as F
from tinygrad_cnn.nn import _serial

__all__ = ["get", "leaky_relu", "linear", "relu", "serialize", "sigmoid", "softmax", "softplus", "tanh"]


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


_BY_NAME = {f.__name__: f for f in (relu, softplus, sigmoid, tanh, softmax, linear, leaky_relu)}


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
