"""The functional API (imported as ``F``): activations, losses, dense, dropout, conv and pooling.

Every function takes and returns Tensors (arrays are accepted and wrapped)
and is differentiable through the engine's primitives.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops, validation
from tinygrad_cnn.ops.random import dropout_mask
from tinygrad_cnn.tensor import Tensor, as_tensor

__all__ = [
    "cross_entropy", "dense", "dropout", "leaky_relu", "log_softmax", "logsumexp", "mse", "relu",
    "sigmoid", "softmax", "softplus", "tanh",
]


def _float_tensor(fn: str, arg: str, x) -> Tensor:
    if not isinstance(x, (Tensor, np.ndarray, list, tuple, int, float)):
        raise TypeError(f"{fn}: {arg} must be a Tensor or an array; got {type(x).__name__}")
    x = as_tensor(x)
    validation.float_array(fn, arg, x.data)
    return x


def relu(x):
    """max(x, 0); relu'(0) = 0."""
    return ops.relu(_float_tensor("relu", "x", x))


def softplus(x):
    """log(1 + e^x) = logaddexp(x, 0); its derivative is the logistic sigmoid."""
    return ops.softplus(_float_tensor("softplus", "x", x))


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return ops.sigmoid(_float_tensor("sigmoid", "x", x))


def tanh(x):
    """(e^x - e^-x) / (e^x + e^-x)."""
    return ops.tanh(_float_tensor("tanh", "x", x))


def leaky_relu(x, negative_slope: float = 0.2):
    """x for x >= 0, negative_slope * x otherwise (Keras' default slope 0.2)."""
    validation.number_in("leaky_relu", "negative_slope", negative_slope, 0.0, float("inf"))
    return ops.leaky_relu(_float_tensor("leaky_relu", "x", x), negative_slope)


def _axis(fn: str, x: Tensor, axis) -> int:
    if not validation.is_int(axis) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fn}: axis={axis!r} is out of range for an input of shape {x.shape}")
    return int(axis)


def logsumexp(x, axis: int = -1, keepdims: bool = False):
    """log sum_i e^{x_i}, computed as m + log sum_i e^{x_i - m} with m = max x (a constant), so no overflow."""
    x = _float_tensor("logsumexp", "x", x)
    axis = _axis("logsumexp", x, axis)
    m = np.max(x.data, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    out = ops.log(ops.sum(ops.exp(x - m), axis, True)) + m
    return out if keepdims else ops.reshape(out, np.delete(np.array(out.shape), axis % x.ndim))


def log_softmax(x, axis: int = -1):
    """x_i - logsumexp(x): finite for logits of +-1000."""
    x = _float_tensor("log_softmax", "x", x)
    return x - logsumexp(x, _axis("log_softmax", x, axis), keepdims=True)


def softmax(x, axis: int = -1):
    """e^{x_i} / sum_j e^{x_j}, computed as exp(log_softmax(x))."""
    return ops.exp(log_softmax(x, axis))


_REDUCTIONS = ("mean", "sum", "none")


def _reduce(fn: str, per_example: Tensor, reduction: str) -> Tensor:
    reduction = validation.choice(fn, "reduction", reduction, _REDUCTIONS)
    if reduction == "mean":
        return ops.mean(per_example)
    if reduction == "sum":
        return ops.sum(per_example)
    return per_example


def one_hot_targets(fn: str, labels, num_classes: int, batch_shape, dtype) -> np.ndarray:
    """Integer class ids (shape ``batch_shape``) or one-hot rows (``batch_shape + (classes,)``) as one-hot."""
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if np.issubdtype(y.dtype, np.integer):
        if y.shape != tuple(batch_shape):
            raise ValueError(f"{fn}: labels has shape {y.shape} but the predictions need {tuple(batch_shape)} "
                             f"(one class id per example)")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            bad = y[(y < 0) | (y >= num_classes)].flat[0]
            raise ValueError(f"{fn}: labels must be class ids in [0, {num_classes}); got {bad}")
        return np.eye(num_classes, dtype=dtype)[y]
    if np.issubdtype(y.dtype, np.floating):
        if y.shape != tuple(batch_shape) + (num_classes,):
            raise ValueError(f"{fn}: one-hot labels have shape {y.shape} but the predictions have shape "
                             f"{tuple(batch_shape) + (num_classes,)}")
        return y.astype(dtype, copy=False)
    raise TypeError(f"{fn}: labels must be integer class ids or float one-hot rows; got dtype {y.dtype}")


def cross_entropy(logits, labels, from_logits: bool = True, reduction: str = "mean"):
    """Softmax cross-entropy, -sum_c y_c log p_c, over the last axis.

    ``labels``: integer class ids or one-hot (or soft) rows. With
    ``from_logits=False`` the inputs are probabilities: as in Keras they are
    renormalised to sum to 1 and clipped to [1e-7, 1 - 1e-7] before the log.
    ``reduction``: ``"mean"`` over examples, ``"sum"`` or ``"none"``.
    """
    fn = "cross_entropy"
    logits = _float_tensor(fn, "logits", logits)
    if logits.ndim < 1:
        raise ValueError(f"{fn}: logits must have a class axis; got shape {logits.shape}")
    target = one_hot_targets(fn, labels, logits.shape[-1], logits.shape[:-1], logits.dtype)
    if from_logits:
        log_p = log_softmax(logits, -1)
    else:
        p = logits / ops.sum(logits, -1, True)
        log_p = ops.log(ops.clip(p, 1e-7, 1 - 1e-7))
    per_example = -ops.sum(log_p * target, -1)
    return _reduce(fn, per_example, reduction)


def mse(predictions, targets, reduction: str = "mean"):
    """Mean squared error over the last axis, mean_j (p_j - t_j)^2, then reduced over examples."""
    p = _float_tensor("mse", "predictions", predictions)
    t = as_tensor(targets, like=p)
    if p.shape != t.shape:
        raise ValueError(f"mse: predictions have shape {p.shape} but targets have shape {t.shape}")
    diff = p - t
    per_example = ops.mean(diff * diff, -1) if p.ndim else diff * diff
    return _reduce("mse", per_example, reduction)


def dense(x, kernel, bias=None):
    """y = x @ kernel + bias, kernel of shape (in, out) as in Keras."""
    x, kernel = _float_tensor("dense", "x", x), _float_tensor("dense", "kernel", kernel)
    validation.rank("dense", "kernel", kernel.shape, 2)
    if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"dense: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but "
                         f"kernel expects {kernel.shape[0]} (kernel shape {kernel.shape})")
    y = x @ kernel
    if bias is not None:
        bias = _float_tensor("dense", "bias", bias)
        if bias.shape != (kernel.shape[1],):
            raise ValueError(f"dense: bias must have shape ({kernel.shape[1]},); got {bias.shape}")
        y = y + bias
    return y


def dropout(x, rate: float, training: bool, seed=None):
    """Inverted dropout: each element is zeroed with probability ``rate`` and the rest scaled by 1/(1-rate).

    Identity when not training. ``rate = 1`` gives zeros and a zero gradient
    (never NaN). ``seed`` (int or numpy Generator) makes the mask reproducible.
    """
    x = _float_tensor("dropout", "x", x)
    rate = validation.number_in("dropout", "rate", rate, 0.0, 1.0)
    if not training or rate == 0.0:
        return x
    return x * ops.constant(dropout_mask(x.shape, rate, x.dtype, seed))
