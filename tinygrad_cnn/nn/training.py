"""compile / fit / evaluate / predict for every model (Keras' meaning of the loss and metric names and of the fit
arguments).

Losses: a name of the one registry ``nn.losses.LOSSES`` with Keras' meaning
(``sparse_categorical_crossentropy`` (class ids) and ``categorical_crossentropy``
(one-hot) expect *probabilities*, a softmax output; ``"cross_entropy"`` takes
logits), a ``nn.losses`` object such as ``SparseCategoricalCrossentropy(from_logits=True)``,
or a callable ``loss(outputs, targets) -> scalar Tensor`` used as is. ``fit`` minimises
loss + sum(model.losses) (the regularization penalties) and reports that total.

Weighted examples (``sample_weight``, ``class_weight``, or weights in the batches), as Keras' ``Loss``: with
``l_i`` the per-example loss and ``w_i`` its weight, the batch loss is ``sum(w_i l_i) / n`` (the loss'
``reduction`` ``"sum_over_batch_size"``/``"mean"``), ``sum(w_i l_i)`` (``"sum"``) or ``sum(w_i l_i) / sum(w_i)``
(``"mean_with_sample_weight"``). It needs per-example losses: a loss name, an ``nn.losses`` object, or a
function taking ``reduction="none"`` (the functional losses such as ``F.cross_entropy``). Compiled metrics are
not weighted (Keras' ``metrics``, not ``weighted_metrics``). The epoch's loss and metrics are the means over its
batches weighted by batch size, as Keras' trackers.

The loop (Keras 3's, hooks in ``nn.callbacks.base``): ``on_train_begin``; per epoch from ``initial_epoch``:
``on_epoch_begin``, per batch ``on_train_batch_begin`` / one step / ``on_train_batch_end`` (stopping after the
batch when ``model.stop_training`` is set), then on validation epochs (``validation_freq``: every that many
epochs, or the 1-based epochs listed) ``evaluate`` (``val_*`` logs), ``on_epoch_end``, and a stop if
``model.stop_training``; ``on_train_end``. Data: ``nn.data_adapter``.
"""

from __future__ import annotations

import numbers

import numpy as np

from tinygrad_cnn import optim, validation
from tinygrad_cnn.modes import no_grad
from tinygrad_cnn.nn import data_adapter as da
from tinygrad_cnn.nn.callbacks import CallbackList, History
from tinygrad_cnn.nn.compile_utils import get_loss, get_metric, weighted_loss
from tinygrad_cnn.ops.random import rng as make_rng
from tinygrad_cnn.threads import ThreadTuner

__all__ = ["History", "ModelBase", "get_loss", "get_metric", "weighted_loss"]


def _verbose(fn: str, verbose) -> int:
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, (str, float)) or verbose not in (0, 1, 2):  # Keras' values (True/False are 1/0)
        raise ValueError(f"{fn}: verbose must be 0, 1, 2 or 'auto'; got {verbose!r}")
    return int(verbose)


def _optional_count(fn: str, arg: str, value):
    return None if value is None else validation.positive_int(fn, arg, value)


def _validation_freq(value):
    if validation.is_int(value) and value >= 1:
        return int(value)
    if isinstance(value, (list, tuple, set)) and value and all(validation.is_int(v) and v >= 1 for v in value):
        return {int(v) for v in value}
    raise ValueError(f"fit: validation_freq must be an integer >= 1 (validate every that many epochs) or a list of "
                     f"1-based epoch numbers; got {value!r}")


class ModelBase:
    """The base class of the models: Keras' training API (compile, fit, evaluate, predict) on top of the model's
    ``__call__``, ``parameters()``, ``losses`` and ``apply_constraints``."""

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.metrics: list[tuple[str, object]] = []
        self.compiled = False
        self.history = None
        self._optimizer_factory = None  # the name or class given to compile (None for an instance)
        self._compiled_trainable = None  # ids of the trainable weights an optimizer instance was compiled with
        self._weighted_loss = None
        self.stop_training = False  # set by a callback (or by you, from one) to end fit after the current batch

    def compile(self, optimizer="adam", loss=None, metrics=None) -> None:
        """Choose the optimizer, the loss and the metrics that ``fit`` and ``evaluate`` use (Keras' ``compile``).

        Args:
            optimizer: an ``optim`` instance (e.g. ``optim.Adam(model.parameters(), learning_rate=1e-3)``), an
                optimizer class, or a name of ``optim.OPTIMIZERS`` (``"sgd"``, ``"adam"``, ``"adamw"``,
                ``"rmsprop"``), built at ``fit`` with the class' default learning rate (Keras'). Default ``"adam"``.
            loss: required: a callable ``(output, y) -> scalar Tensor`` or a Keras name such as
                ``"sparse_categorical_crossentropy"``, ``"categorical_crossentropy"``, ``"mse"``; a loss object
                (``nn.losses.SparseCategoricalCrossentropy(from_logits=True)``) for logits.
            metrics: a list of names (``"accuracy"``, ...) or callables ``(output, y) -> float``, default None.

        Raises:
            ValueError: no ``loss``, or an unknown name.
            TypeError: ``optimizer`` or ``metrics`` of the wrong kind (``metrics="accuracy"`` must be a list).

        Freezing or releasing layers (``layer.trainable``) between ``fit`` calls: with a name or a class, ``fit``
        builds the optimizer over ``parameters()`` and, when that list has changed since the last ``fit``,
        rebuilds it over the new list, keeping the step count and the state (moments) of the weights still
        trained (newly trainable weights start from zero state, like new slots of a Keras optimizer; Keras itself
        asks for compile again). An optimizer instance updates exactly the tensors it was built with, so ``fit``
        refuses to run when the set of trainable weights differs from the one at ``compile``: compile again (with
        an instance over ``model.parameters()``, or a name or class).
        """
        if loss is None:
            raise ValueError(f"{self.name}: compile needs a loss (a callable or a name such as "
                             f"'sparse_categorical_crossentropy')")
        if isinstance(optimizer, str):
            optim.get(optimizer, "compile")
        elif not (isinstance(optimizer, optim.Optimizer) or callable(optimizer)):
            raise TypeError(f"compile: optimizer must be an optimizer, an optimizer class or a name; got {optimizer!r}")
        if isinstance(metrics, (str, dict)) or (metrics is not None and not isinstance(metrics, (list, tuple))):
            raise TypeError(f"compile: metrics must be a list of metric names or callables (as Keras'); got "
                            f"{metrics!r} of type {type(metrics).__name__}: pass metrics=[{metrics!r}]")
        resolved = get_loss(loss), weighted_loss(loss), [get_metric(m) for m in (metrics or [])]  # checked, then set
        self.loss, self._weighted_loss, self.metrics = resolved
        self.optimizer = optimizer
        is_instance = isinstance(optimizer, optim.Optimizer)
        self._optimizer_factory = None if is_instance else optimizer
        self._compiled_trainable = self._trainable_ids() if is_instance and self.built else None
        self.compiled = True

    def _trainable_ids(self) -> frozenset:
        return frozenset(id(p) for p in self.parameters())

    def _weight_label(self, tensor_id: int) -> str:
        for layer in getattr(self, "_layers", ()):
            for name, t in zip(layer.weight_names, layer.weights, strict=True):
                if id(t) == tensor_id:
                    return f"{layer.name}/{name}"
        return "a weight no longer in the model"

    def _make_optimizer(self):
        """The optimizer ``fit`` steps, over the current trainable weights (the rules are in ``compile``)."""
        params = self.parameters()
        ids = self._trainable_ids()
        opt = self.optimizer
        if self._optimizer_factory is None:
            if self._compiled_trainable is None:
                self._compiled_trainable = ids
            elif ids != self._compiled_trainable:
                frozen = sorted(self._weight_label(i) for i in self._compiled_trainable - ids)
                released = sorted(self._weight_label(i) for i in ids - self._compiled_trainable)
                change = "; ".join(f"{what}: {', '.join(names)}" for what, names in
                                   (("frozen", frozen), ("newly trainable", released)) if names)
                raise ValueError(f"{self.name}: the trainable weights changed since compile ({change}); the "
                                 f"optimizer instance given to compile updates only the tensors it was built with: "
                                 f"call compile again with an optimizer over model.parameters(), or with an "
                                 f"optimizer name or class (fit then follows trainable changes)")
            return opt
        if isinstance(opt, optim.Optimizer) and [id(p) for p in opt.params] == [id(p) for p in params]:
            return opt
        if not params:
            raise ValueError(f"{self.name}: fit has nothing to train: no layer has trainable weights (set "
                             f"layer.trainable = True on a layer with weights)")
        factory = self._optimizer_factory
        new = (optim.get(factory, "compile") if isinstance(factory, str) else factory)(params)
        if isinstance(opt, optim.Optimizer) and type(new) is type(opt):
            kept = {id(p): state for p, state in zip(opt.params, opt.state, strict=True)}
            new.state = [kept.get(id(p), state) for p, state in zip(params, new.state, strict=True)]
            new.count = opt.count
            new.learning_rate = opt.learning_rate  # as a callback (ReduceLROnPlateau, ...) left it
        self.optimizer = new
        return new

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        dtype = self._layers[0].dtype if getattr(self, "_layers", None) else "float32"
        return x.astype(dtype, copy=False) if np.issubdtype(x.dtype, np.number) else x

    def _total_loss(self, outputs, targets, sample_weight=None):
        if sample_weight is None:
            loss = self.loss(outputs, targets)
        elif self._weighted_loss is None:
            raise ValueError(self._unweightable())
        else:
            loss = self._weighted_loss(outputs, targets, sample_weight)
        for penalty in self.losses:
            loss = loss + penalty
        return loss

    def _unweightable(self) -> str:
        return (f"{self.name}: sample weights (sample_weight, class_weight or weights in the batches) need a loss "
                f"that gives per-example values: compile with a loss name, an nn.losses object or a function "
                f"taking reduction='none' (such as F.cross_entropy); the compiled loss {self.loss!r} takes none")

    def _check_input(self, where: str, x: np.ndarray) -> None:
        """A ValueError when the model is built for another input shape than ``x``'s."""
        if not self.built or len(getattr(self, "inputs", [None])) != 1:
            return
        expected = tuple(self.input_shape)
        if x.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected[1:], x.shape[1:],
                                                                                   strict=True)):
            shown = "(None, " + ", ".join(str(d) for d in expected[1:]) + ")"
            raise ValueError(f"{where}: x has shape {x.shape} but {self.name!r} expects inputs of shape {shown}")

    def _n_classes(self):
        try:
            shape = self.output_shape if self.built else None
        except (ValueError, AttributeError):
            return None
        if not isinstance(shape, tuple) or not shape or not validation.is_int(shape[-1]):
            return None
        return shape[-1] if shape[-1] > 1 else 2


    def train_step(self, xb: np.ndarray, yb: np.ndarray, opt, sample_weight=None) -> tuple[float, np.ndarray]:
        """One update: zero_grad, forward (training=True), loss + penalties, backward, step, constraints."""
        opt.zero_grad()
        outputs = self(xb, training=True)
        loss = self._total_loss(outputs, yb, sample_weight)
        loss.backward()
        opt.step()
        self.apply_constraints()
        return float(loss.item()), outputs.data

    # -- fit -------------------------------------------------------------------------------------------------
    def _fit_data(self, x, y, batch_size, shuffle, class_weight, sample_weight, validation_split, validation_data,
                  validation_batch_size, rng):
        """The training data (``ArrayData`` / ``IterableData``) and the validation data, all checked."""
        cw = (None if class_weight is None else da.check_class_weight("fit", class_weight, self._n_classes()))
        if class_weight is not None and sample_weight is not None:
            raise ValueError("fit: give class_weight or sample_weight, not both (Keras' rule)")
        if da.is_batch_iterable(x) and y is None:
            if validation_split:
                raise ValueError("fit: validation_split needs array inputs (it takes the last fraction of them); x is "
                                 "an iterable of batches: pass validation_data instead")
            if sample_weight is not None:
                raise ValueError("fit: sample_weight goes with array inputs; with an iterable of batches put the "
                                 "weights in each batch, (x, y, sample_weight)")
            if not self.built:
                raise ValueError(f"fit: {self.name!r} is not built; with an iterable of batches start the model with "
                                 f"nn.Input or call build(input_shape) first")
            data = da.IterableData("fit", x, class_weight=cw, check_x=self._check_input)
        else:
            if y is None:
                raise ValueError("fit: y is None; give the targets y, or x as an iterable of (x, y) batches")
            x, y = da.paired_arrays("fit", x, y)
            x = self._inputs(x)
            self._check_input("fit", x)
            sw = None if sample_weight is None else da.sample_weights("fit", sample_weight, len(x))
            if validation_split and validation_data is None:
                (x, y, sw), validation_data = da.split_validation("fit", validation_split, x, y, sw)
            if cw is not None:
                sw = da.class_weights_to_sample_weights(y, cw)
            if sw is not None and self._weighted_loss is None:
                raise ValueError(self._unweightable())
            data = da.ArrayData(x, y, sw, batch_size, shuffle, rng)
        return data, self._eval_data("fit", "validation_data", validation_data, validation_batch_size)

    def _eval_data(self, where: str, arg: str, data, batch_size, sample_weight=None, y=None, needs_targets=True):
        """``ArrayData`` for ``(x, y[, sample_weight])`` arrays, ``IterableData`` for an iterable of batches."""
        if data is None:
            return None
        if da.is_batch_iterable(data) and y is None:
            return da.IterableData(where, data, needs_targets=needs_targets, check_x=self._check_input)
        if arg == "validation_data":
            if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
                raise ValueError(f"{where}: validation_data must be (x_val, y_val), (x_val, y_val, sample_weight) or "
                                 f"an iterable of (x, y) batches; got {type(data).__name__}")
            data, y, sample_weight = (list(data) + [None])[:3]
        if needs_targets and y is None:
            raise ValueError(f"{where}: y is None; give the targets y, or x as an iterable of (x, y) batches")
        x, y = da.paired_arrays(where, data, y)
        x = self._inputs(x)
        self._check_input(where, x)
        sw = None if sample_weight is None else da.sample_weights(where, sample_weight, len(x))
        if sw is not None and self._weighted_loss is None:
            raise ValueError(self._unweightable())
        return da.ArrayData(x, y, sw, batch_size)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1, seed=None):
        """Train for epochs ``initial_epoch .. epochs - 1`` with the compiled optimizer and loss (Keras' ``fit``).

        Each step: ``loss = compiled_loss(model(xb, training=True), yb) + penalties``, ``loss.backward()``,
        ``optimizer.step()``, then the weight constraints are applied. Every argument is checked before
        anything changes.

        Args:
            x: inputs, an array ``(examples, *input_shape)`` (a list of arrays for several inputs), or an
                iterable of ``(x, y[, sample_weight])`` batches (then ``y=None``); see ``nn.data_adapter``.
            y: targets, an array with one row per example (class ids for the sparse losses).
            batch_size: positive int, default 32.
            epochs: int >= 0, default 1: the index after the last epoch (counted from 0, not from
                ``initial_epoch``).
            verbose: 0 (silent), 1 (progress bar), 2 (one line per epoch) or ``"auto"`` (default, = 1).
            callbacks: a list of ``nn.callbacks`` objects (``EarlyStopping``, ``ModelCheckpoint``, ...).
            validation_split: fraction in [0, 1), default 0: the last fraction of the arrays (taken before
                shuffling) is held out and evaluated after each epoch as ``val_*``.
            validation_data: ``(x, y[, sample_weight])`` or an iterable of batches; wins over
                ``validation_split``.
            shuffle: bool, default True: reshuffle the arrays at each epoch.
            class_weight: ``{class id: weight}``, weighting each example's loss by its class.
            sample_weight: one weight per example (the loss is the weighted mean, as Keras).
            initial_epoch: int, default 0: the epoch to start from (to resume a run).
            steps_per_epoch, validation_steps: caps on the batches per epoch / per validation.
            validation_batch_size: default ``batch_size``.
            validation_freq: int (validate every n epochs) or a collection of epoch numbers (1-based), default 1.
            seed: int or None: fixes the shuffling and every Dropout mask, so the same seed and initial
                weights give bit-identical training (None: reproducible after ``nn.set_random_seed``).

        Returns:
            The ``History`` callback (``history.history["loss"]`` etc., one value per epoch); also
            ``model.history``.

        Raises:
            RuntimeError: the model was not compiled.
            ValueError, TypeError: an argument out of range or of the wrong kind, named in the message.
        """
        if not self.compiled:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss, metrics) before fit")
        batch_size = validation.positive_int("fit", "batch_size", 32 if batch_size is None else batch_size)
        epochs = validation.positive_int("fit", "epochs", epochs, minimum=0)
        verbose = _verbose("fit", verbose)
        initial_epoch = validation.positive_int("fit", "initial_epoch", initial_epoch, minimum=0)
        if initial_epoch > epochs:
            raise ValueError(f"fit: initial_epoch={initial_epoch} is after the last epoch (epochs={epochs} means "
                             f"epochs {initial_epoch}..{epochs - 1} would run: none); epochs counts from 0, not from "
                             f"initial_epoch")
        steps_per_epoch = _optional_count("fit", "steps_per_epoch", steps_per_epoch)
        validation_steps = _optional_count("fit", "validation_steps", validation_steps)
        validation_batch_size = validation.positive_int("fit", "validation_batch_size",
                                                        validation_batch_size or batch_size)
        validation_freq = _validation_freq(validation_freq)
        if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real) or not (
                0.0 <= validation_split < 1.0):
            raise ValueError(f"fit: validation_split must be a fraction in [0, 1) (the share of the examples kept "
                             f"for validation); got {validation_split!r}")
        validation.seed("fit", "seed", seed, allow_generator=False)
        shuffle = validation.boolean("fit", "shuffle", shuffle)
        rng = make_rng(seed)  # seed=None: reproducible after nn.set_random_seed, fresh entropy otherwise
        data, val_data = self._fit_data(x, y, batch_size, shuffle, class_weight, sample_weight, validation_split,
                                        validation_data, validation_batch_size, rng)
        epoch_iterator = da.Epochs(data, steps_per_epoch)
        callbacks = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose,
                                 epochs=epochs, steps=epoch_iterator.steps, batch_size=batch_size)
        if not self.built:
            self.build((None,) + data.x.shape[1:])
        previous = self.optimizer, self._compiled_trainable
        opt = self._make_optimizer()
        count = opt.count
        try:
            for layer in self._layers:  # fit(seed) reseeds every random layer; seed=None only the unseeded ones
                if hasattr(layer, "reseed") and (seed is not None or getattr(layer, "seed", None) is None):
                    layer.reseed(np.random.default_rng(rng.integers(2 ** 63)))
            callbacks.set_model(self)
            self.stop_training = False
            callbacks.on_train_begin()
            training_logs, tuner = {}, ThreadTuner()
            for epoch in range(initial_epoch, epochs):
                callbacks.on_epoch_begin(epoch)
                sums, seen = {"loss": 0.0, **{name: 0.0 for name, _ in self.metrics}}, 0
                for step, (xb, yb, wb) in epoch_iterator.epoch():
                    callbacks.on_train_batch_begin(step)
                    with tuner.step(len(xb)):
                        loss, out = self.train_step(xb, yb, opt, wb)
                    seen += len(xb)
                    sums["loss"] += loss * len(xb)
                    for name, fn in self.metrics:
                        sums[name] += fn(out, yb) * len(xb)
                    callbacks.on_train_batch_end(step, {k: v / seen for k, v in sums.items()})
                    if self.stop_training:
                        break
                if epoch_iterator.ran_out:  # the data gave no batch this epoch (Keras warned): training is over
                    break
                logs = {k: v / seen for k, v in sums.items()}
                if val_data is not None and (epoch + 1 in validation_freq if isinstance(validation_freq, set)
                                             else (epoch + 1) % validation_freq == 0):
                    val = self._evaluate(val_data, validation_steps, callbacks)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                callbacks.on_epoch_end(epoch, logs)
                training_logs = logs
                if self.stop_training:
                    break
        except BaseException:  # refused before the first update (labels the loss rejects, ...): nothing changed
            if opt.count == count:
                self.optimizer, self._compiled_trainable = previous
            raise
        callbacks.on_train_end(training_logs)
        self.history = callbacks.history
        return self.history

    # -- evaluate / predict ------------------------------------------------------------------------------
    def _evaluate(self, data, steps, callbacks) -> dict:
        """Mean loss (with penalties, weighted as in fit) and metrics over ``data``, with the ``on_test_*`` hooks."""
        callbacks.on_test_begin()
        sums, seen, tuner = {"loss": 0.0, **{name: 0.0 for name, _ in self.metrics}}, 0, ThreadTuner()
        with no_grad():
            for step, (xb, yb, wb) in da.Epochs(data, steps).epoch():
                callbacks.on_test_batch_begin(step)
                with tuner.step(len(xb)):
                    out = self(xb, training=False)
                sums["loss"] += float(self._total_loss(out, yb, wb).item()) * len(xb)
                for name, fn in self.metrics:
                    sums[name] += fn(out.data, yb) * len(xb)
                seen += len(xb)
                callbacks.on_test_batch_end(step, {k: v / seen for k, v in sums.items()})
        if not seen:
            raise ValueError(f"{self.name}: evaluate got no batch from its input")
        logs = {k: v / seen for k, v in sums.items()}
        callbacks.on_test_end(logs)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None, steps=None, callbacks=None,
                 return_dict=False):
        """Mean loss (with penalties) and metrics over (x, y), batched, without recording a graph (Keras').

        The model runs with ``training=False`` (Dropout off, BatchNormalization on its moving statistics).

        Args:
            x: inputs (as in ``fit``), or an iterable of ``(x, y[, sample_weight])`` batches (then ``y=None``).
            y: targets.
            batch_size: positive int, default 32.
            verbose: 0 (default, silent), 1, 2 or ``"auto"``.
            sample_weight: one weight per example, weighting the loss as in ``fit``.
            steps: cap on the number of batches, default None (all).
            callbacks: ``nn.callbacks`` objects receiving the ``on_test_*`` hooks.
            return_dict: bool, default False.

        Returns:
            The mean loss (float), or ``[loss, *metrics]`` when metrics were compiled, or ``{name: value}`` with
            ``return_dict=True`` (Keras' forms).

        Raises:
            RuntimeError: the model was not compiled.
        """
        if not self.compiled:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss, metrics) before evaluate")
        batch_size = validation.positive_int("evaluate", "batch_size", 32 if batch_size is None else batch_size)
        verbose = _verbose("evaluate", verbose)
        steps = _optional_count("evaluate", "steps", steps)
        data = self._eval_data("evaluate", "x", x, batch_size, sample_weight, y)
        callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                 steps=steps or data.num_batches)
        logs = self._evaluate(data, steps, callbacks)
        if return_dict:
            return logs
        return logs["loss"] if not self.metrics else list(logs.values())

    def predict(self, x, batch_size=None, verbose=0, steps=None, callbacks=None) -> np.ndarray:
        """The model's outputs for ``x``, computed in batches with ``training=False`` and no graph (Keras').

        Args:
            x: an array ``(examples, *input_shape)`` (a list for several inputs), or an iterable of batches
                ``x`` / ``(x, ...)``.
            batch_size: positive int, default 32.
            verbose: 0 (default), 1, 2 or ``"auto"``.
            steps: cap on the number of batches, default None (all).
            callbacks: ``nn.callbacks`` objects receiving the ``on_predict_*`` hooks.

        Returns:
            A NumPy array ``(examples, *output_shape)``: logits or probabilities, whatever the last layer gives.
        """
        batch_size = validation.positive_int("predict", "batch_size", 32 if batch_size is None else batch_size)
        verbose = _verbose("predict", verbose)
        steps = _optional_count("predict", "steps", steps)
        if da.is_batch_iterable(x):
            data = da.IterableData("predict", x, needs_targets=False, check_x=self._check_input)
        else:
            x, _ = da.paired_arrays("predict", x)
            x = self._inputs(x)
            self._check_input("predict", x)
            data = da.ArrayData(x, None, None, batch_size)
        callbacks = CallbackList(callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1,
                                 steps=steps or data.num_batches)
        callbacks.on_predict_begin()
        outs, tuner = [], ThreadTuner()
        with no_grad():
            for step, (xb, _, _) in da.Epochs(data, steps).epoch():
                callbacks.on_predict_batch_begin(step)
                xb = self._inputs(xb)
                with tuner.step(len(xb)):
                    outs.append(self(xb, training=False).data)
                callbacks.on_predict_batch_end(step, {"outputs": outs[-1]})
        callbacks.on_predict_end()
        if not outs:
            raise ValueError(f"{self.name}: predict got no batch from its input")
        return np.concatenate(outs, axis=0)
