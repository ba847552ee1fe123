"""Loss functions, re-exported by ``tinygrad_cnn.functional`` (``F.cross_entropy``, ``F.binary_cross_entropy``, ...).

Every loss first computes one value per example and then reduces: ``reduction`` is ``"mean"`` (over the
examples), ``"sum"`` or ``"none"`` (the per-example values). An "example" is everything but the last axis:
as in Keras, element-wise losses (``mse``, ``mae``, ``huber``, ``binary_cross_entropy``, ``hinge``) take the
mean over the last axis, the distribution losses (``cross_entropy``, ``nll_loss``, ``kl_div``) the sum over
it (the class axis). A rank-0 input is one example of one element. With ``ignore_index`` the ignored
examples give 0 and ``"mean"`` divides by the number of examples not ignored (as PyTorch; 0 when every
example is ignored, as Keras, where PyTorch gives NaN; likewise 0 for a batch of no examples).

Inputs that cannot be what the loss expects raise instead of training silently on nonsense: a
probability loss (``from_logits=False``) fed negative values (logits) and a binary one fed values above 1.
Probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before the log, as Keras does, so the gradient is 0
where a probability is clipped.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops, validation
from tinygrad_cnn.softmax import log_softmax
from tinygrad_cnn.tensor import Tensor, as_float_tensor, as_tensor

__all__ = ["EPSILON", "binary_cross_entropy", "cross_entropy", "hinge", "huber", "kl_div", "mae", "mse",
           "nll_loss", "one_hot_targets"]

EPSILON = 1e-7  # Keras' backend.epsilon(): probabilities are clipped to [EPSILON, 1 - EPSILON]
_REDUCTIONS = ("mean", "sum", "none")


def _reduce(fn: str, per_example: Tensor, reduction: str, count: int | None = None) -> Tensor:
    """``"mean"`` (the sum divided by ``count`` examples when given, by all of them otherwise; 0 for none),
    ``"sum"`` or ``"none"``."""
    reduction = validation.choice(fn, "reduction", reduction, _REDUCTIONS)
    if reduction == "mean":
        count = per_example.size if count is None else count
        return ops.sum(per_example) / float(max(count, 1))
    if reduction == "sum":
        return ops.sum(per_example)
    return per_example


def _feature_mean(values: Tensor) -> Tensor:
    """Keras' per-example value of an element-wise loss: the mean over the last axis (none for rank 0)."""
    return ops.mean(values, -1) if values.ndim else values


def _pair(fn: str, predictions, targets) -> tuple[Tensor, Tensor]:
    p = as_float_tensor(fn, "predictions", predictions)
    t = as_tensor(targets, like=p)
    if p.shape != t.shape:
        raise ValueError(f"{fn}: predictions have shape {p.shape} but targets have shape {t.shape}")
    if not np.issubdtype(t.dtype, np.floating):
        t = ops.constant(t.data.astype(p.dtype))
    return p, t


def _probabilities(fn: str, arg: str, x: Tensor, at_most_one: bool) -> None:
    """Raise when ``x`` cannot be probabilities: a negative value (or one above 1 when ``at_most_one``)."""
    low = float(x.data.min()) if x.size else 0.0
    high = float(x.data.max()) if x.size else 0.0
    if low < 0 or (at_most_one and high > 1):
        bad = low if low < 0 else high
        span = "[0, 1] (e.g. a sigmoid output)" if at_most_one else ">= 0 (e.g. a softmax output)"
        raise ValueError(f"{fn}: from_logits=False expects {arg} to be probabilities in {span}, but it has the "
                         f"value {bad:.4g}: these look like logits; pass from_logits=True (Keras: "
                         f"from_logits=True in the loss class) or end the model with the activation")


def one_hot_targets(fn: str, labels, num_classes: int, batch_shape, dtype) -> np.ndarray:
    """Integer class ids (shape ``batch_shape``) or one-hot rows (``batch_shape + (classes,)``) as one-hot.

    Float rows are used as given, as Keras' ``categorical_crossentropy`` and optax's
    ``softmax_cross_entropy`` do: soft labels need not be one-hot, and a row summing to s scales that
    example's loss by s (rows are not renormalised; normalise them first if they should sum to 1)."""
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
        if y.shape == tuple(batch_shape) and y.size and np.array_equal(y, np.round(y)):
            raise TypeError(f"{fn}: labels must be integer class ids (or float one-hot rows of shape "
                            f"{tuple(batch_shape) + (num_classes,)}); got float class ids of shape {y.shape} "
                            f"(dtype {y.dtype}): pass labels.astype(int)")
        if y.shape != tuple(batch_shape) + (num_classes,):
            raise ValueError(f"{fn}: one-hot labels have shape {y.shape} but the predictions have shape "
                             f"{tuple(batch_shape) + (num_classes,)}")
        return y.astype(dtype, copy=False)
    raise TypeError(f"{fn}: labels must be integer class ids or float one-hot rows; got dtype {y.dtype}")


def _negative_log_likelihood(fn: str, log_p: Tensor, labels, label_smoothing, ignore_index, reduction) -> Tensor:
    """``-sum_c y_c log_p_c`` per example: the one path of ``cross_entropy`` and ``nll_loss``."""
    validation.choice(fn, "reduction", reduction, _REDUCTIONS)
    smoothing = validation.number_in(fn, "label_smoothing", label_smoothing, 0.0, 1.0)
    classes = log_p.shape[-1]
    keep = None
    if ignore_index is not None:
        y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
        if not validation.is_int(ignore_index):
            raise TypeError(f"{fn}: ignore_index must be an int class id or None; got {ignore_index!r}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{fn}: ignore_index={ignore_index} needs integer class ids as labels; got labels "
                             f"of dtype {y.dtype}")
        keep = y != ignore_index
        labels = np.where(keep, y, 0)
    target = one_hot_targets(fn, labels, classes, log_p.shape[:-1], log_p.dtype)
    if isinstance(labels, Tensor) and labels.requires_grad:  # soft labels in a graph: differentiate them too
        target = labels
    if smoothing:
        target = target * (1.0 - smoothing) + smoothing / classes
    if keep is not None:
        target = target * keep[..., None].astype(log_p.dtype)
    per_example = -ops.sum(log_p * target, -1)
    return _reduce(fn, per_example, reduction, None if keep is None else int(keep.sum()))


def cross_entropy(logits, labels, from_logits: bool = True, reduction: str = "mean", label_smoothing: float = 0.0,
                  ignore_index: int | None = None):
    """Softmax cross-entropy, ``-sum_c y_c log p_c`` over the last (class) axis, one value per example.

    ``labels``: integer class ids (sparse categorical) or one-hot / soft rows (categorical), used as given: a
    row summing to s scales its example's loss by s (Keras and optax do not renormalise either); float class
    ids are refused. A float Tensor that requires a gradient receives one (``-log p``, as optax).
    ``from_logits=True``: ``log p = log_softmax(logits)``; ``False``: the inputs are probabilities (>= 0, else
    ValueError), renormalised to sum to 1 and clipped to ``[1e-7, 1 - 1e-7]`` before the log (Keras).
    ``label_smoothing`` s: ``y <- y (1 - s) + s / classes`` (Keras, optax.smooth_labels, PyTorch). ``ignore_index``:
    examples whose class id equals it give 0 and are not counted by ``"mean"``. vjp (logits): ``(softmax - y) * g``.

    Args:
        logits: ``(batch, ..., classes)`` scores (or probabilities with ``from_logits=False``).
        labels: int class ids ``(batch, ...)``, or rows ``(batch, ..., classes)``.
        from_logits: bool, default True.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).
        label_smoothing: float in [0, 1], default 0.
        ignore_index: int or None (default): a class id whose examples are skipped.

    Returns:
        A scalar Tensor (``"mean"``/``"sum"``) or one value per example (``"none"``).

    Raises:
        ValueError: labels whose shape or class ids do not fit the logits, or negative probabilities.
    """
    fn = "cross_entropy"
    from_logits = validation.boolean(fn, "from_logits", from_logits)
    logits = as_float_tensor(fn, "logits", logits)
    if logits.ndim < 1:
        raise ValueError(f"{fn}: logits must have a class axis; got shape {logits.shape}")
    if from_logits:
        log_p = log_softmax(logits, -1)
    else:
        _probabilities(fn, "logits", logits, at_most_one=False)
        p = logits / ops.sum(logits, -1, True)
        log_p = ops.log(ops.clip(p, EPSILON, 1 - EPSILON))
    return _negative_log_likelihood(fn, log_p, labels, label_smoothing, ignore_index, reduction)


def nll_loss(log_probs, labels, ignore_index: int | None = None, reduction: str = "mean"):
    """Negative log-likelihood ``-log_probs[..., label]`` per example (PyTorch's ``nll_loss``, class axis last).

    ``log_probs``: log-probabilities (e.g. ``log_softmax``), used as given; ``labels`` class ids (or one-hot
    rows: ``-sum_c y_c log_probs_c``). ``cross_entropy(x, y) == nll_loss(log_softmax(x), y)``.
    vjp: ``-one_hot(labels) * g``.

    Args:
        log_probs: ``(batch, ..., classes)``.
        labels: int class ids ``(batch, ...)`` or rows ``(batch, ..., classes)``.
        ignore_index: int or None (default): a class id whose examples give 0 and are not counted.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).

    Returns:
        A scalar Tensor (``"mean"``/``"sum"``) or one value per example (``"none"``).
    """
    log_probs = as_float_tensor("nll_loss", "log_probs", log_probs)
    if log_probs.ndim < 1:
        raise ValueError(f"nll_loss: log_probs must have a class axis; got shape {log_probs.shape}")
    return _negative_log_likelihood("nll_loss", log_probs, labels, 0.0, ignore_index, reduction)


def binary_cross_entropy(predictions, targets, from_logits: bool = False, label_smoothing: float = 0.0,
                         reduction: str = "mean"):
    """Binary cross-entropy, element-wise, then the mean over the last axis per example (Keras).

    ``from_logits=False``: ``-(t log q + (1 - t) log(1 - q))`` with ``q = clip(p, 1e-7, 1 - 1e-7)``; ``p`` must
    be in [0, 1]. ``from_logits=True`` (x = logits), without overflow for any x:
    ``t softplus(-x) + (1 - t) softplus(x)`` (= -t log sigmoid(x) - (1 - t) log sigmoid(-x));
    vjp ``(sigmoid(x) - t) * g``. ``label_smoothing`` s: ``t <- t (1 - s) + s / 2``.

    Args:
        predictions: probabilities in [0, 1] (or logits with ``from_logits=True``), ``(batch, ..., features)``.
        targets: the same shape, in [0, 1].
        from_logits: bool, default False.
        label_smoothing: float in [0, 1], default 0.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).

    Returns:
        A scalar Tensor (``"mean"``/``"sum"``) or one value per example (``"none"``).
    """
    fn = "binary_cross_entropy"
    from_logits = validation.boolean(fn, "from_logits", from_logits)
    smoothing = validation.number_in(fn, "label_smoothing", label_smoothing, 0.0, 1.0)
    validation.choice(fn, "reduction", reduction, _REDUCTIONS)
    p, t = _pair(fn, predictions, targets)
    if smoothing:
        t = t * (1.0 - smoothing) + 0.5 * smoothing
    if from_logits:
        per = t * ops.softplus(-p) + (1.0 - t) * ops.softplus(p)
    else:
        _probabilities(fn, "predictions", p, at_most_one=True)
        q = ops.clip(p, EPSILON, 1 - EPSILON)
        per = -(t * ops.log(q) + (1.0 - t) * ops.log(1.0 - q))
    return _reduce(fn, _feature_mean(per), reduction)


def mse(predictions, targets, reduction: str = "mean"):
    """Mean squared error over the last axis, ``mean_j (p_j - t_j)^2``, then reduced over examples.

    The vjp is ``2 (p - t) / features * g``.

    Args:
        predictions: ``(batch, ..., features)``.
        targets: the same shape.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).

    Returns:
        A scalar Tensor, or one value per example.
    """
    p, t = _pair("mse", predictions, targets)
    diff = p - t
    return _reduce("mse", _feature_mean(diff * diff), reduction)


def mae(predictions, targets, reduction: str = "mean"):
    """Mean absolute error over the last axis, ``mean_j |p_j - t_j|``; ``abs'(0) = 1`` (as jnp.abs).

    Args:
        predictions: ``(batch, ..., features)``.
        targets: the same shape.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).

    Returns:
        A scalar Tensor, or one value per example.
    """
    p, t = _pair("mae", predictions, targets)
    return _reduce("mae", _feature_mean(ops.abs(p - t)), reduction)


def huber(predictions, targets, delta: float = 1.0, reduction: str = "mean"):
    """Huber loss, mean over the last axis of ``e^2 / 2`` for ``|e| <= delta``, ``delta (|e| - delta / 2)`` beyond.

    ``e = p - t``; computed as ``q^2 / 2 + delta (|e| - q)`` with ``q = min(|e|, delta)``, so its vjp is
    ``clip(e, -delta, delta) * g`` and its second derivative 1 inside, 0 outside (Keras, optax.huber_loss).

    Args:
        predictions: ``(batch, ..., features)``.
        targets: the same shape.
        delta: float > 0, default 1.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).

    Returns:
        A scalar Tensor (``"mean"``/``"sum"``) or one value per example (``"none"``).
    """
    delta = validation.number_in("huber", "delta", delta, 0.0, float("inf"))
    if delta == 0:
        raise ValueError("huber: delta must be > 0 (where the loss turns from quadratic to linear); got 0")
    p, t = _pair("huber", predictions, targets)
    a = ops.abs(p - t)
    q = ops.clip(a, None, delta)
    return _reduce("huber", _feature_mean(0.5 * q * q + delta * (a - q)), reduction)


def kl_div(predictions, targets, reduction: str = "mean", log_predictions: bool = False):
    """Kullback-Leibler divergence ``KL(t || q) = sum_c t_c (log t_c - log q_c)`` over the last axis, per example.

    ``log_predictions=False`` (Keras' ``kl_divergence``/``KLDivergence``): ``predictions`` and ``targets`` are
    probabilities, both clipped to ``[1e-7, 1]``. ``log_predictions=True`` (PyTorch's ``kl_div`` input and optax's
    ``kl_divergence``): ``predictions`` are log-probabilities, ``targets`` probabilities (>= 0) with
    ``0 log 0 = 0``, nothing clipped. Argument order is (predictions, targets), as every loss here (PyTorch's
    ``kl_div(input, target)``; Keras' functions take ``(y_true, y_pred)``). ``"mean"`` is over examples, i.e.
    PyTorch's ``"batchmean"``. vjp (predictions): ``-t / q * g`` (``-t * g`` in log mode).

    Args:
        predictions: probabilities (or log-probabilities), ``(batch, ..., classes)``.
        targets: probabilities, the same shape.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).
        log_predictions: bool, default False (see above).

    Returns:
        A scalar Tensor (``"mean"``/``"sum"``) or one value per example (``"none"``).
    """
    fn = "kl_div"
    log_predictions = validation.boolean(fn, "log_predictions", log_predictions)
    validation.choice(fn, "reduction", reduction, _REDUCTIONS)
    p, t = _pair(fn, predictions, targets)
    if log_predictions:
        if t.size and float(t.data.min()) < 0:
            raise ValueError(f"kl_div: targets must be probabilities (>= 0); got the value {float(t.data.min()):.4g}")
        zero = ops.constant((t.data == 0).astype(p.dtype))
        per = t * (ops.log(t + zero) - p)  # log(t + [t == 0]) = log t, or 0 where t = 0
    else:
        t = ops.clip(t, EPSILON, 1.0)
        per = t * (ops.log(t) - ops.log(ops.clip(p, EPSILON, 1.0)))
    return _reduce(fn, ops.sum(per, -1) if per.ndim else per, reduction)


def hinge(predictions, targets, reduction: str = "mean"):
    """Hinge loss, mean over the last axis of ``max(1 - t p, 0)`` (Keras' ``hinge``).

    ``targets`` are -1/1; when every target is 0 or 1 they are first mapped to ``2 t - 1`` (as Keras).
    vjp: ``-t [1 - t p > 0] * g / n`` (0 at the kink, as relu).

    Args:
        predictions: scores ``(batch, ..., features)``.
        targets: -1/1 (or 0/1) labels, the same shape.
        reduction: ``"mean"`` (default, over examples), ``"sum"`` or ``"none"`` (one value per example).

    Returns:
        A scalar Tensor (``"mean"``/``"sum"``) or one value per example (``"none"``).
    """
    p, t = _pair("hinge", predictions, targets)
    if np.all((t.data == 0) | (t.data == 1)):
        t = 2.0 * t - 1.0
    return _reduce("hinge", _feature_mean(ops.relu(1.0 - t * p)), reduction)
