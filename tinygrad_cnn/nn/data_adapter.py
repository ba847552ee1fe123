"""What ``fit`` / ``evaluate`` / ``predict`` iterate over, with Keras' rules: arrays cut into batches, or batches from
an iterable, with per-example weights; the validation split and the class weights.

- Arrays ``(x, y, sample_weight)``: a pass is ``ceil(n / batch_size)`` batches in a permutation drawn from the
  fit's generator (``shuffle=True``, a new one every pass) or in order.
- An iterable ``x`` of batches (``y=None``): each item is ``(x, y)`` or ``(x, y, sample_weight)`` (``predict``
  also takes bare ``x``). A re-iterable (a list, a class with ``__iter__``) starts a new pass every epoch; a
  generator or iterator is one stream that all epochs share.
- ``steps_per_epoch`` (``Epochs``): an epoch takes that many batches from the current pass and the next epoch
  continues it (Keras 3's ``EpochIterator``); a pass of known length that ends starts a new one at the next epoch;
  when the data runs out inside an epoch the epoch ends there with Keras' warning, and a stream that gives no
  batch at all ends training.
- ``validation_split`` takes the *last* fraction of the arrays before any shuffling
  (``split_at = floor(n * (1 - validation_split))``, both parts non-empty).
- ``class_weight`` ``{class id: weight}`` becomes per-example weights from ``y`` (class ids; one-hot rows by
  their argmax; a trailing axis of 1 dropped; rounded), 1 for classes it does not name (Keras' array rule).
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from tinygrad_cnn.tensor import Tensor

__all__ = ["ArrayData", "Epochs", "IterableData", "class_weights_to_sample_weights", "is_batch_iterable",
           "paired_arrays", "split_validation", "to_array"]


def to_array(where: str, arg: str, value) -> np.ndarray:
    """``value`` as an ndarray with a non-empty batch axis (Tensors give their data)."""
    a = np.asarray(value.data if isinstance(value, Tensor) else value)
    if a.ndim < 1 or len(a) == 0:
        raise ValueError(f"{where}: {arg} must be a non-empty array with a batch axis; got shape {a.shape}")
    return a


def paired_arrays(where: str, x, y=None, several_x: bool = False, several_y: bool = False):
    """``(x, y)`` as arrays (``to_array``) that share one batch length; ``y=None`` stays None.

    ``several_x`` (``several_y``): ``x`` (``y``) is a list or tuple of arrays, one per model input (output), each
    checked and all of the same length (the JAX twin's form for graph models; the engine's ``fit`` takes one)."""
    def checked(arg, value, several):
        if not several:
            return [to_array(where, arg, value)]
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{where}: {arg} must be a list of arrays, one per model "
                             f"{'input' if arg == 'x' else 'output'}; got {type(value).__name__}")
        return [to_array(where, f"{arg}[{i}]", v) for i, v in enumerate(value)]

    xs = checked("x", x, several_x)
    ys = [] if y is None else checked("y", y, several_y)
    n = len(xs[0])
    labelled = [(f"x[{i}]", a) for i, a in enumerate(xs)] if several_x else [("x", xs[0])]
    labelled += [(f"y[{i}]", a) for i, a in enumerate(ys)] if several_y else [("y", a) for a in ys]
    for arg, a in labelled[1:]:
        if len(a) != n:
            raise ValueError(f"{where}: {labelled[0][0]} has {n} examples but {arg} has {len(a)}; every input and "
                             f"target needs one entry per example")
    pick = lambda arrays, several: arrays if several else arrays[0]  # noqa: E731
    return pick(xs, several_x), (None if y is None else pick(ys, several_y))


def is_batch_iterable(x) -> bool:
    """True for an iterable of batches (a generator, an iterator, a list of tuples, a class with ``__iter__``),
    False for array data (an ndarray, a Tensor, or a list / tuple of numbers)."""
    if isinstance(x, (np.ndarray, Tensor, str, bytes, numbers.Number)) or x is None:
        return False
    if isinstance(x, (list, tuple)):
        return bool(x) and all(isinstance(item, (tuple, list)) and len(item) in (1, 2, 3)
                               and not isinstance(item[0], numbers.Number) for item in x)
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def sample_weights(where: str, weights, n: int) -> np.ndarray:
    """Per-example weights: a finite, non-negative 1-d array of ``n`` numbers (a trailing axis of 1 is dropped)."""
    w = np.asarray(weights.data if isinstance(weights, Tensor) else weights)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape != (n,) or not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
        raise ValueError(f"{where}: sample_weight must hold one number per example, shape ({n},); got shape "
                         f"{w.shape} and dtype {w.dtype}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{where}: sample_weight must be finite and >= 0; got values from {w.min()} to {w.max()}")
    return w.astype(np.float64)


def check_class_weight(where: str, class_weight, n_classes: int | None) -> dict[int, float]:
    """``class_weight`` as ``{int class id: float weight}``, every id in ``[0, n_classes)`` and every weight a
    finite number >= 0."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise TypeError(f"{where}: class_weight must be a non-empty dict {{class id: weight}}; got {class_weight!r}")
    out = {}
    for k, v in class_weight.items():
        ok_key = isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 0
        if not ok_key or (n_classes is not None and k >= n_classes):
            classes = f"0..{n_classes - 1} (the model has {n_classes} classes)" if n_classes else "integers >= 0"
            raise ValueError(f"{where}: class_weight names class {k!r}, which does not exist; class ids are "
                             f"{classes}")
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{where}: class_weight[{k}] must be a finite number >= 0; got {v!r}")
        out[int(k)] = float(v)
    return out


def class_weights_to_sample_weights(y: np.ndarray, class_weight: dict[int, float]) -> np.ndarray:
    """Keras' ``class_weight_to_sample_weights``: each example's weight is its class' (1 if not named)."""
    y = np.asarray(y)
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
    ids = np.round(y).astype(np.int64).reshape(len(y))
    table = np.ones(max(max(class_weight), int(ids.max(initial=0))) + 1)
    for k, v in class_weight.items():
        table[k] = v
    return table[np.clip(ids, 0, None)]


def split_validation(where: str, validation_split: float, *arrays):
    """``(train arrays, validation arrays)``: the last ``validation_split`` of every array (None stays None)."""
    n = len(arrays[0])
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(f"{where}: validation_split={validation_split} leaves {split_at} of the {n} examples for "
                         f"training and {n - split_at} for validation; both must be non-empty (more data or "
                         f"another fraction)")
    train = tuple(None if a is None else a[:split_at] for a in arrays)
    val = tuple(None if a is None else a[split_at:] for a in arrays)
    return train, val


class ArrayData:
    """Arrays cut into batches (see the module docstring); ``new_pass()`` yields ``(x, y, sample_weight)``."""

    one_shot = False

    def __init__(self, x, y, sample_weight, batch_size: int, shuffle: bool = False, rng=None):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = rng
        self.num_batches = -(-len(x) // batch_size)

    def new_pass(self):
        n = len(self.x)
        order = self.rng.permutation(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            yield (self.x[idx], None if self.y is None else self.y[idx],
                   None if self.sample_weight is None else self.sample_weight[idx])


class IterableData:
    """Batches from an iterable (see the module docstring); every batch is checked (``check_batch``) and given
    as ``(x, y, sample_weight)`` arrays."""

    def __init__(self, where: str, source, needs_targets: bool = True, class_weight=None, check_x=None):
        self.where = where
        self.source = source
        self.one_shot = iter(source) is source
        self.num_batches = len(source) if hasattr(source, "__len__") else None
        self.needs_targets = needs_targets
        self.class_weight = class_weight
        self.check_x = check_x  # (where, x array) -> None: the model's input-shape check
        self._index = 0

    def new_pass(self):
        for batch in self.source:
            yield self.check_batch(batch)

    def check_batch(self, batch):
        """``(x, y, sample_weight)`` from one item, with a ValueError naming the batch if it is malformed."""
        where = f"{self.where}: batch {self._index} of the input iterable"
        self._index += 1
        if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
            items = list(batch) + [None] * (3 - len(batch))
        elif not self.needs_targets:
            items = [batch, None, None]
        else:
            raise ValueError(f"{where} must be a tuple (x, y) or (x, y, sample_weight); got "
                             f"{type(batch).__name__}{f' of length {len(batch)}' if hasattr(batch, '__len__') else ''}")
        x = to_array(where, "x", items[0])
        y = None if items[1] is None else to_array(where, "y", items[1])
        if self.needs_targets and y is None:
            raise ValueError(f"{where} has no targets; each batch must be (x, y) or (x, y, sample_weight)")
        if y is not None and len(y) != len(x):
            raise ValueError(f"{where} has {len(x)} inputs but {len(y)} targets")
        if self.check_x is not None:
            self.check_x(where, x)
        w = None if items[2] is None else sample_weights(where, items[2], len(x))
        if self.class_weight is not None:
            if w is not None:
                raise ValueError(f"{where} carries sample weights, and fit got class_weight; give one of the two")
            w = class_weights_to_sample_weights(y, self.class_weight)
        return x, y, w


class Epochs:
    """Keras 3's epoch iterator over ``data`` (``ArrayData`` or ``IterableData``) with ``steps_per_epoch``."""

    def __init__(self, data, steps_per_epoch=None):
        self.data = data
        self.steps_per_epoch = steps_per_epoch
        self._pass = None  # the pass being consumed (kept across epochs with steps_per_epoch)
        self._taken = 0  # batches taken from it
        self.ran_out = False  # an epoch got no batch: training ends

    @property
    def steps(self):
        """Batches per epoch when known (``steps_per_epoch``, or the length of a pass)."""
        return self.steps_per_epoch or self.data.num_batches

    def epoch(self):
        """Yield ``(step, (x, y, sample_weight))`` for one epoch."""
        limit = self.steps_per_epoch
        if limit is None or self._pass is None:
            self._pass, self._taken = self.data.new_pass(), 0
        step = 0
        while limit is None or step < limit:
            try:
                batch = next(self._pass)
            except StopIteration:
                self._pass = None
                if limit is not None or step == 0:
                    self._interrupted(step)
                break
            self._taken += 1
            yield step, batch
            step += 1
            if limit is not None and self._taken == self.data.num_batches:  # the pass is over: a new one next time
                self._pass = None
                if step < limit:
                    self._interrupted(step)
                break
        if step == 0:
            self.ran_out = True

    @staticmethod
    def _interrupted(step) -> None:
        warnings.warn(f"Your input ran out of data after {step} batches of this epoch; interrupting "
                      f"{'training' if step == 0 else 'the epoch'}. Make sure that your dataset or generator can "
                      f"generate at least steps_per_epoch * epochs batches.", stacklevel=4)
