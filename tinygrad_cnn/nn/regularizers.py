"""Weight and activity penalties with Keras' names: ``L1``, ``L2``, ``L1L2``.

``L1(l1)(w) = l1 * sum|w|``, ``L2(l2)(w) = l2 * sum w^2``,
``L1L2(l1, l2)(w)`` is their sum. The strings ``"l1"``, ``"l2"`` and
``"l1_l2"`` give the factor 0.01 (both factors for ``"l1_l2"``). A penalty is
a scalar Tensor in the graph, so ``fit`` differentiates it with the loss.
"""

from __future__ import annotations

from tinygrad_cnn import ops, validation
from tinygrad_cnn.nn import _serial
from tinygrad_cnn.tensor import as_tensor

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "serialize"]


def _factor(cls: str, arg: str, value) -> float:
    return validation.number_in(cls, arg, 0.0 if value is None else value, 0.0, float("inf"))


class Regularizer(_serial.Configurable):
    """Base class: ``reg(weight_tensor) -> scalar Tensor``."""

    def __call__(self, x):
        raise NotImplementedError


class L1L2(Regularizer):
    """l1 * sum|w| + l2 * sum w^2 (defaults 0, as Keras' class)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _factor("L1L2", "l1", l1), _factor("L1L2", "l2", l2)

    def __call__(self, x):
        x = as_tensor(x)
        total = None
        if self.l1:
            total = ops.sum(ops.abs(x)) * self.l1
        if self.l2:
            term = ops.sum(x * x) * self.l2
            total = term if total is None else total + term
        return total if total is not None else ops.sum(x) * 0.0

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """l1 * sum|w|."""

    def __init__(self, l1=0.01):
        self.l1 = _factor("L1", "l1", 0.01 if l1 is None else l1)

    def __call__(self, x):
        x = as_tensor(x)
        return ops.sum(ops.abs(x)) * self.l1

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """l2 * sum w^2."""

    def __init__(self, l2=0.01):
        self.l2 = _factor("L2", "l2", 0.01 if l2 is None else l2)

    def __call__(self, x):
        x = as_tensor(x)
        return ops.sum(x * x) * self.l2

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01), "l1l2": lambda: L1L2(0.01, 0.01)}


def get(identifier, where: str = "regularizers.get", arg: str = "identifier"):
    """A Regularizer from a name, a config dict or an object; None stays None."""
    if isinstance(identifier, str) and identifier.lower() in ("l1_l2", "l1l2"):
        return L1L2(0.01, 0.01)
    return _serial.lookup(where, arg, identifier, _BY_NAME, _CLASSES, "regularizer")


def serialize(regularizer):
    return _serial.serialize(regularizer)
