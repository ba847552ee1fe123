"""Keras' loss classes and loss names, and the one registry of names (``LOSSES``) that ``model.compile`` and the
JAX twin (``jax_ref.losses``) both resolve.

A loss object is called as Keras calls it, ``loss(y_true, y_pred)``, and returns the reduced loss; ``forward
(outputs, targets)`` is the same in the engine's order (what ``compile`` and ``jax_ref.parity`` call). Each class
is its functional loss (``F.cross_entropy``, ``F.binary_cross_entropy``, ...) with Keras' arguments and Keras'
target handling: a trailing axis of size 1 on one side is added or dropped to match the other
(``squeeze_or_expand_to_same_rank``), sparse labels are class ids, categorical labels one-hot rows, and a
mismatch (integer ids given to ``categorical_crossentropy``, one-hot rows to the sparse one) raises. A Keras
string name has Keras' meaning: the class with its defaults, so the cross-entropies expect *probabilities*
(``from_logits=False``: a softmax / sigmoid output; logits raise a ValueError). For a model that ends in
logits pass an object, ``SparseCategoricalCrossentropy(from_logits=True)``, or the name ``"cross_entropy"``
(``F.cross_entropy`` on logits, either label kind).

``reduction``: Keras' names (``"sum_over_batch_size"`` (default), ``"mean"`` and ``"mean_with_sample_weight"``: the
mean over the examples; ``"sum"``; ``"none"`` or ``None``: per example). Not supported: sample weights, ``axis``
other than -1, ``dtype``.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import functional as F
from tinygrad_cnn import ops, validation
from tinygrad_cnn.nn import _serial
from tinygrad_cnn.tensor import Tensor, as_tensor

__all__ = ["LOSSES", "BinaryCrossentropy", "CategoricalCrossentropy", "CrossEntropy", "Hinge", "Huber",
           "KLDivergence", "Loss", "MeanAbsoluteError", "MeanSquaredError", "SparseCategoricalCrossentropy", "get",
           "serialize"]

_KERAS_REDUCTIONS = {"sum_over_batch_size": "mean", "mean": "mean", "mean_with_sample_weight": "mean", "sum": "sum",
                     "none": "none", None: "none"}  # without sample weights Keras' three means are one


def _values(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def same_rank(y_true, y_pred: Tensor):
    """Keras' ``squeeze_or_expand_to_same_rank``: when the ranks differ by one and the longer side ends in a size-1
    axis, a rank-1 side gains a trailing axis, otherwise the longer side loses it. Returns (y_true, y_pred)."""
    t_rank, p_rank = np.ndim(_values(y_true)), y_pred.ndim
    if t_rank == p_rank + 1 and np.shape(_values(y_true))[-1] == 1:
        if p_rank == 1:
            return y_true, ops.reshape(y_pred, y_pred.shape + (1,))
        return np.squeeze(_values(y_true), -1), y_pred
    if p_rank == t_rank + 1 and y_pred.shape[-1] == 1:
        if t_rank == 1:
            return np.expand_dims(_values(y_true), -1), y_pred
        return y_true, ops.reshape(y_pred, y_pred.shape[:-1])
    return y_true, y_pred


class Loss(_serial.Configurable):
    """Base class: ``loss(y_true, y_pred)`` -> the loss reduced by ``reduction``; ``forward(outputs, targets)``.

    A subclass names its functional loss (``function``, a name in ``tinygrad_cnn.functional`` and in
    ``jax_ref.losses``) and the keyword arguments it passes (``function_kwargs``); ``targets`` says how
    ``y_true`` is matched to ``y_pred``: ``"same"`` (Keras' same-rank rule), ``"sparse"`` (class ids),
    ``"categorical"`` (one-hot rows) or ``"any"`` (either label kind).
    """

    function = ""
    targets = "same"
    default_name = ""
    options: tuple[str, ...] = ()  # constructor arguments kept in the config and passed to the function
    renamed: dict[str, str] = {}  # a Keras argument name -> the functional loss' name for it

    def __init__(self, reduction="sum_over_batch_size", name=None):
        if reduction not in _KERAS_REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction={reduction!r} is not one of "
                             f"{', '.join(repr(r) for r in _KERAS_REDUCTIONS)}")
        self.reduction = reduction
        self.name = self.default_name if name is None else str(name)

    def function_kwargs(self) -> dict:
        """The functional loss' keyword arguments (reduction in the functional names mean/sum/none)."""
        return {"reduction": _KERAS_REDUCTIONS[self.reduction],
                **{self.renamed.get(k, k): getattr(self, k) for k in self.options}}

    def match_targets(self, y_true, y_pred: Tensor):
        """``(targets, outputs)`` as the functional loss takes them (see the class docstring)."""
        return same_rank(y_true, y_pred)

    def __call__(self, y_true, y_pred):
        y_pred = y_pred if isinstance(y_pred, Tensor) else as_tensor(np.asarray(y_pred))
        targets, outputs = self.match_targets(y_true, y_pred)
        return getattr(F, self.function)(outputs, targets, **self.function_kwargs())

    def forward(self, outputs, targets):
        """``self(targets, outputs)``: the engine's argument order (``compile``'s loss callables)."""
        return self(targets, outputs)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction, **{k: getattr(self, k) for k in self.options}}


def _flags(loss: Loss, from_logits, label_smoothing=0.0, ignore_class=None) -> None:
    """Check and keep the cross-entropy arguments (as attributes named like Keras' arguments)."""
    cls = type(loss).__name__
    loss.from_logits = validation.boolean(cls, "from_logits", from_logits)
    loss.label_smoothing = validation.number_in(cls, "label_smoothing", label_smoothing, 0.0, 1.0)
    if ignore_class is not None and not validation.is_int(ignore_class):
        raise TypeError(f"{cls}: ignore_class must be an int class id or None; got {ignore_class!r}")
    loss.ignore_class = ignore_class


class CrossEntropy(Loss):
    """``F.cross_entropy`` as a loss object (the name ``"cross_entropy"``): logits by default, class ids or
    one-hot rows. Not a Keras class; ``CategoricalCrossentropy`` and ``SparseCategoricalCrossentropy`` are it
    with Keras' defaults and one label kind each."""

    function = "cross_entropy"
    targets = "any"
    default_name = "cross_entropy"
    options = ("from_logits", "label_smoothing", "ignore_class")
    renamed = {"ignore_class": "ignore_index"}

    def __init__(self, from_logits=True, label_smoothing=0.0, ignore_class=None, reduction="sum_over_batch_size",
                 name=None):
        super().__init__(reduction, name)
        _flags(self, from_logits, label_smoothing, ignore_class)

    def match_targets(self, y_true, y_pred):
        return y_true, y_pred


class CategoricalCrossentropy(CrossEntropy):
    """Keras' ``CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, reduction, name)``: one-hot (or
    soft) rows shaped like ``y_pred``; integer class ids raise (use ``SparseCategoricalCrossentropy``)."""

    targets = "categorical"
    default_name = "categorical_crossentropy"
    options = ("from_logits", "label_smoothing")

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size", name=None):
        super().__init__(from_logits, label_smoothing, None, reduction, name)

    def match_targets(self, y_true, y_pred):
        y = _values(y_true)
        if y.shape != y_pred.shape:
            hint = (" (one class id per example): those are sparse labels; use 'sparse_categorical_crossentropy' "
                    "or one-hot rows" if y.shape == y_pred.shape[:-1] else "")
            raise ValueError(f"{self.name}: labels have shape {y.shape} but categorical cross-entropy needs one-hot "
                             f"rows shaped like the outputs, {y_pred.shape}{hint}")
        if not np.issubdtype(y.dtype, np.floating):
            y_true = y.astype(y_pred.dtype)
        return y_true, y_pred


class SparseCategoricalCrossentropy(CrossEntropy):
    """Keras' ``SparseCategoricalCrossentropy(from_logits=False, ignore_class=None, reduction, name)``: one class
    id per example (a trailing axis of 1 is dropped; floats holding whole numbers are cast, as Keras); one-hot rows
    raise (use ``CategoricalCrossentropy``). ``ignore_class``: those examples give 0 and are not counted."""

    targets = "sparse"
    default_name = "sparse_categorical_crossentropy"
    options = ("from_logits", "ignore_class")

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", name=None):
        super().__init__(from_logits, 0.0, ignore_class, reduction, name)

    def match_targets(self, y_true, y_pred):
        y = _values(y_true)
        if y.ndim == y_pred.ndim and y.ndim and y.shape[-1] == 1:
            y = y[..., 0]
        if y.shape != y_pred.shape[:-1]:
            hint = (": those are one-hot rows; use 'categorical_crossentropy' or class ids"
                    if y.shape == y_pred.shape else "")
            raise ValueError(f"{self.name}: labels have shape {y.shape} but sparse categorical cross-entropy needs "
                             f"one class id per example, shape {y_pred.shape[:-1]}{hint}")
        if not np.issubdtype(y.dtype, np.integer):
            if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
                raise ValueError(f"{self.name}: labels must be integer class ids; got dtype {y.dtype} with "
                                 f"non-integer values")
            y = y.astype(np.int64)
        return y, y_pred


class BinaryCrossentropy(Loss):
    """Keras' ``BinaryCrossentropy(from_logits=False, label_smoothing=0.0, reduction, name)``:
    ``F.binary_cross_entropy``, the mean over the last axis per example."""

    function = "binary_cross_entropy"
    default_name = "binary_crossentropy"
    options = ("from_logits", "label_smoothing")

    def __init__(self, from_logits=False, label_smoothing=0.0, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        _flags(self, from_logits, label_smoothing)


def _plain(cls_name: str, function: str, default_name: str, what: str) -> type:
    """A Keras loss class whose only arguments are ``reduction`` and ``name``."""
    doc = f"Keras' ``{cls_name}(reduction, name)``: ``F.{function}``{what}."
    return type(cls_name, (Loss,), {"__doc__": doc, "__module__": __name__, "function": function,
                                    "default_name": default_name})


MeanSquaredError = _plain("MeanSquaredError", "mse", "mean_squared_error", "")
MeanAbsoluteError = _plain("MeanAbsoluteError", "mae", "mean_absolute_error", "")
KLDivergence = _plain("KLDivergence", "kl_div", "kl_divergence", " on probabilities (both clipped to [1e-7, 1])")
Hinge = _plain("Hinge", "hinge", "hinge", " (labels -1/1, or 0/1 mapped to -1/1)")


class Huber(Loss):
    """Keras' ``Huber(delta=1.0, reduction, name)``: ``F.huber``."""

    function = "huber"
    default_name = "huber_loss"
    options = ("delta",)

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        self.delta = validation.number_in("Huber", "delta", delta, 0.0, float("inf"))


# The one list of loss names: compile(loss=...), jax_ref's twin and compare/parity resolve these (and the class
# names, case-insensitively). A name gives the class with its defaults (Keras' meaning).
LOSSES = {
    "cross_entropy": CrossEntropy,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber,
    "kl_divergence": KLDivergence, "kld": KLDivergence,
    "hinge": Hinge,
}
_CLASSES = {cls.__name__: cls for cls in LOSSES.values()}


def get(identifier, where: str = "losses.get", arg: str = "identifier") -> Loss:
    """A ``Loss`` from a registry name, a class name, a config dict ``{"class_name", "config"}`` or a Loss."""
    if isinstance(identifier, Loss):
        return identifier
    if identifier is None:
        raise ValueError(f"{where}: {arg} is None; expected a loss name such as 'sparse_categorical_crossentropy'")
    return _serial.lookup(where, arg, identifier, LOSSES, _CLASSES, "loss", allow_callable=False)


def serialize(loss: Loss) -> dict:
    """``{"class_name": ..., "config": loss.get_config()}`` (``get`` inverts it)."""
    return _serial.serialize(loss)
