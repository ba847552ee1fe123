"""What ``compile`` resolves: the loss (a name, a Loss object or a callable), its per-example weighted form, and
the metrics (Keras names or callables ``fn(outputs, targets) -> batch mean``). The rules are in ``nn.training``.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.nn import losses
from tinygrad_cnn.tensor import Tensor

__all__ = ["get_loss", "get_metric", "weighted_loss"]


def get_loss(loss):
    """The ``(outputs, targets) -> scalar Tensor`` that ``compile`` trains with.

    A callable is used as is; a name of ``nn.losses.LOSSES`` (Keras' meaning: ``"sparse_categorical_crossentropy"``
    is ``SparseCategoricalCrossentropy()``, which expects probabilities), a Keras class name, a config dict or a
    ``nn.losses.Loss`` object or class gives that loss in the engine's argument order (``Loss.forward``).
    """
    if isinstance(loss, (str, dict, losses.Loss)) or (isinstance(loss, type) and issubclass(loss, losses.Loss)):
        return losses.get(loss, "compile", "loss").forward
    if callable(loss):
        return loss
    raise TypeError(f"compile: loss must be a loss name, a config dict, a Loss object or a callable "
                    f"(outputs, targets) -> scalar Tensor; got {loss!r} of type {type(loss).__name__}")


_MEAN_REDUCTIONS = {"sum_over_batch_size": "mean", "mean": "mean", "mean_with_sample_weight": "weighted_mean",
                    "sum": "sum"}


def weighted_loss(loss):
    """``(outputs, targets, weights) -> scalar Tensor``: the loss with per-example weights as Keras reduces it (see
    the module docstring), or None when ``loss`` cannot give per-example values (a callable without
    ``reduction``)."""
    if isinstance(loss, (str, dict, losses.Loss)) or (isinstance(loss, type) and issubclass(loss, losses.Loss)):
        obj = losses.get(loss, "compile", "loss")
        kind = _MEAN_REDUCTIONS.get(obj.reduction)
        if kind is None:
            return None
        per_example = copy.copy(obj)
        per_example.reduction = "none"
        values_of = per_example.forward
    elif callable(loss):
        try:
            takes_reduction = "reduction" in inspect.signature(loss).parameters
        except (TypeError, ValueError):
            takes_reduction = False
        if not takes_reduction:
            return None
        kind = "mean"

        def values_of(outputs, targets):
            return loss(outputs, targets, reduction="none")
    else:
        return None

    def weighted(outputs, targets, weights):
        values = values_of(outputs, targets)
        w = Tensor(np.asarray(weights, dtype=values.dtype).reshape((len(weights),) + (1,) * (values.ndim - 1)))
        total = (values * w).sum()
        if kind == "sum":
            return total
        divisor = float(np.sum(weights)) if kind == "weighted_mean" else float(values.data.size)
        return total / divisor if divisor else total * 0.0

    return weighted


def _accuracy(out: np.ndarray, y: np.ndarray) -> float:
    if np.issubdtype(y.dtype, np.integer) and out.ndim == y.ndim + 1 and out.shape[-1] > 1:
        return float(np.mean(np.argmax(out, -1) == y))
    if out.shape == y.shape and out.shape[-1] > 1:
        return float(np.mean(np.argmax(out, -1) == np.argmax(y, -1)))
    y = y.reshape(out.shape) if y.size == out.size else y
    return float(np.mean((out > 0.5) == (y > 0.5)))


def _metric_mse(out, y):
    return float(np.mean((out - y.reshape(out.shape)) ** 2))


def _metric_mae(out, y):
    return float(np.mean(np.abs(out - y.reshape(out.shape))))


_METRICS = {"accuracy": _accuracy, "acc": _accuracy, "sparse_categorical_accuracy": _accuracy,
            "categorical_accuracy": _accuracy, "mse": _metric_mse, "mae": _metric_mae}


def get_metric(metric):
    """(name, fn(outputs ndarray, targets ndarray) -> batch mean) from a Keras name or a callable."""
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    key = validation.choice("compile", "metrics", metric, tuple(_METRICS))
    return ("accuracy" if key == "acc" else key), _METRICS[key]
