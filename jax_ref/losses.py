"""The twin's losses: ``tinygrad_cnn.losses`` name for name and argument for argument, written from optax and
jax.numpy and Keras' definitions (``keras.losses``), and the resolution of a loss name through the engine's one
registry, ``tinygrad_cnn.nn.losses.LOSSES``.

Every function returns one value per example reduced by ``reduction`` (``"mean"`` over examples, ``"sum"``,
``"none"``); element-wise losses take the mean over the last axis per example, distribution losses the sum
(as Keras). All of them are pure and trace under ``jax.jit``/``jax.grad``; concrete labels get the engine's
checks (class-id range, shapes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tinygrad_cnn import validation
from tinygrad_cnn.losses import EPSILON, one_hot_targets

__all__ = ["binary_cross_entropy", "cross_entropy", "engine_loss_function", "hinge", "huber", "kl_div",
           "loss_function", "mae", "mse", "nll_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(fn, per_example, reduction, keep=None):
    """Mean (over the examples ``keep`` marks, when given; 0 for no examples), sum or none."""
    reduction = validation.choice(fn, "reduction", reduction, _REDUCTIONS)
    if reduction == "sum":
        return jnp.sum(per_example)
    if reduction == "none":
        return per_example
    count = per_example.size if keep is None else jnp.maximum(jnp.sum(keep), 1)
    return jnp.sum(per_example) / jnp.maximum(count, 1).astype(per_example.dtype)


def _per_example_mean(values):
    return jnp.mean(values, axis=-1) if values.ndim else values


def _one_hot(fn, labels, num_classes, dtype, batch_shape):
    if not isinstance(labels, jax.core.Tracer):  # concrete labels: the engine's checks (range, count, dtype)
        return jnp.asarray(one_hot_targets(fn, np.asarray(labels), num_classes, batch_shape, np.dtype(dtype)))
    y = jnp.asarray(labels)
    if jnp.issubdtype(y.dtype, jnp.integer):
        return jax.nn.one_hot(y, num_classes, dtype=dtype)
    return y.astype(dtype)


def _ignored(fn, labels, ignore_index):
    """``(labels with ignored ids set to 0, keep mask or None)``; NumPy for concrete labels (the engine's checks)."""
    if ignore_index is None:
        return labels, None
    xp = jnp if isinstance(labels, jax.core.Tracer) else np
    y = xp.asarray(labels)
    if not xp.issubdtype(y.dtype, xp.integer):
        raise ValueError(f"{fn}: ignore_index={ignore_index} needs integer class ids as labels; got {y.dtype}")
    keep = y != ignore_index
    return xp.where(keep, y, 0), keep


def _keras_log_probabilities(p):
    """Keras' ``from_logits=False``: renormalise to sum 1, clip to [1e-7, 1 - 1e-7], log."""
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    return jnp.log(jnp.clip(p, EPSILON, 1 - EPSILON))


def cross_entropy(logits, labels, from_logits: bool = True, reduction: str = "mean", label_smoothing: float = 0.0,
                  ignore_index=None):
    """``optax.softmax_cross_entropy`` on ``optax.smooth_labels(one_hot(labels))`` (logits), or Keras'
    probability rule (renormalise, clip, log); ignored examples give 0 and are not counted by "mean"."""
    logits = jnp.asarray(logits)
    labels, keep = _ignored("cross_entropy", labels, ignore_index)
    target = _one_hot("cross_entropy", labels, logits.shape[-1], logits.dtype, logits.shape[:-1])
    if label_smoothing:
        target = optax.smooth_labels(target, label_smoothing)
    if from_logits:
        per = optax.softmax_cross_entropy(logits, target)
    else:
        per = -jnp.sum(target * _keras_log_probabilities(logits), axis=-1)
    if keep is not None:
        per = jnp.where(keep, per, 0.0)
    return _reduce("cross_entropy", per, reduction, keep)


def nll_loss(log_probs, labels, ignore_index=None, reduction: str = "mean"):
    """``-log_probs[..., label]`` (``jnp.take_along_axis``), or ``-sum y log_probs`` for one-hot rows."""
    log_probs = jnp.asarray(log_probs)
    labels, keep = _ignored("nll_loss", labels, ignore_index)
    y = jnp.asarray(labels)
    if jnp.issubdtype(y.dtype, jnp.integer):
        if not isinstance(labels, jax.core.Tracer):  # the engine's checks (range, shape)
            one_hot_targets("nll_loss", labels, log_probs.shape[-1], log_probs.shape[:-1], np.float64)
        per = -jnp.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]
    else:
        per = -jnp.sum(y.astype(log_probs.dtype) * log_probs, axis=-1)
    if keep is not None:
        per = jnp.where(keep, per, 0.0)
    return _reduce("nll_loss", per, reduction, keep)


def binary_cross_entropy(predictions, targets, from_logits: bool = False, label_smoothing: float = 0.0,
                         reduction: str = "mean"):
    """``optax.sigmoid_binary_cross_entropy`` (logits) or Keras' clipped ``-(t log p + (1 - t) log(1 - p))``,
    with Keras' smoothing ``t (1 - s) + s / 2``; mean over the last axis per example."""
    p = jnp.asarray(predictions)
    t = jnp.asarray(targets, p.dtype)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        per = optax.sigmoid_binary_cross_entropy(p, t)
    else:
        q = jnp.clip(p, EPSILON, 1 - EPSILON)
        per = -(t * jnp.log(q) + (1 - t) * jnp.log1p(-q))
    return _reduce("binary_cross_entropy", _per_example_mean(per), reduction)


def mse(predictions, targets, reduction: str = "mean"):
    """``optax.squared_error`` averaged over the last axis, then reduced over examples."""
    p = jnp.asarray(predictions)
    return _reduce("mse", _per_example_mean(optax.squared_error(p, jnp.asarray(targets, p.dtype))), reduction)


def mae(predictions, targets, reduction: str = "mean"):
    """``mean |p - t|`` over the last axis, then reduced over examples."""
    p = jnp.asarray(predictions)
    return _reduce("mae", _per_example_mean(jnp.abs(p - jnp.asarray(targets, p.dtype))), reduction)


def huber(predictions, targets, delta: float = 1.0, reduction: str = "mean"):
    """``optax.huber_loss(p, t, delta)`` averaged over the last axis, then reduced over examples."""
    p = jnp.asarray(predictions)
    per = optax.huber_loss(p, jnp.asarray(targets, p.dtype), delta=delta)
    return _reduce("huber", _per_example_mean(per), reduction)


def kl_div(predictions, targets, reduction: str = "mean", log_predictions: bool = False):
    """``optax.kl_divergence(log q, t)`` summed over the last axis; probabilities (``log_predictions=False``,
    Keras' ``kl_divergence``) are clipped to [1e-7, 1] on both sides first."""
    p = jnp.asarray(predictions)
    t = jnp.asarray(targets, p.dtype)
    if not log_predictions:
        t = jnp.clip(t, EPSILON, 1.0)
        p = jnp.log(jnp.clip(p, EPSILON, 1.0))
    if not p.ndim:
        return _reduce("kl_div", optax.kl_divergence(p[None], t[None]), reduction)
    return _reduce("kl_div", optax.kl_divergence(p, t), reduction)


def hinge(predictions, targets, reduction: str = "mean"):
    """``optax.hinge_loss`` averaged over the last axis; 0/1 targets are first mapped to -1/1 (Keras)."""
    p = jnp.asarray(predictions)
    t = jnp.asarray(targets, p.dtype)
    t = jnp.where(jnp.all((t == 0) | (t == 1)), 2 * t - 1, t)
    return _reduce("hinge", _per_example_mean(optax.hinge_loss(p, t)), reduction)


# -- names: the engine's registry (tinygrad_cnn.nn.losses.LOSSES), one list for both sides -----------------------

def _match_targets(kind, out, y):
    """``(targets, outputs)`` as the engine's loss classes match them (``nn.losses.Loss.targets``), on JAX arrays."""
    y = jnp.asarray(y)
    if kind == "sparse":
        y = y[..., 0] if y.ndim == out.ndim and y.shape[-1] == 1 else y
        return (y.astype(jnp.int32) if jnp.issubdtype(y.dtype, jnp.floating) else y), out
    if kind == "categorical":
        return y.astype(out.dtype), out
    if kind == "same" and y.ndim == out.ndim + 1 and y.shape[-1] == 1:  # Keras' squeeze_or_expand_to_same_rank
        return (y, out[..., None]) if out.ndim == 1 else (y[..., 0], out)
    if kind == "same" and out.ndim == y.ndim + 1 and out.shape[-1] == 1:
        return (y[..., None], out) if y.ndim == 1 else (y, out[..., 0])
    return y, out


def loss_function(loss):
    """The JAX ``(outputs, targets) -> scalar`` for a loss of the engine's registry (a name such as
    ``"cross_entropy"`` or ``"sparse_categorical_crossentropy"``, a Keras class name, a config dict or an
    ``nn.losses.Loss``: the same function of this module with the same arguments), or a JAX callable as is."""
    from tinygrad_cnn.nn import losses
    if callable(loss) and not isinstance(loss, (losses.Loss, type)):
        return loss
    engine = losses.get(loss, "jax_ref", "loss")
    fn, kwargs = globals()[engine.function], engine.function_kwargs()

    def apply(out, y):
        y, out = _match_targets(engine.targets, jnp.asarray(out), y)
        return fn(out, y, **kwargs)

    return apply


def engine_loss_function(loss):
    """The engine's ``(outputs, targets)`` loss for the same registry entry (``model.compile``'s resolution)."""
    from tinygrad_cnn.nn.training import get_loss
    if callable(loss) and not hasattr(loss, "get_config"):
        raise TypeError("jax_ref: a callable loss is JAX-only; give a loss name to compare with the engine")
    return get_loss(loss)
