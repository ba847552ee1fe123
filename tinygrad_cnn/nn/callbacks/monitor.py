"""Callbacks that watch a logged quantity or drive the learning rate: ``EarlyStopping``, ``ReduceLROnPlateau``,
``ModelCheckpoint`` and ``LearningRateScheduler``, with Keras 3's arguments and rules.

Improvement (Keras' ``MonitorCallback``): with ``d = |min_delta|``, a value ``v`` improves on the best ``b`` when
``v - d > b`` (``mode="max"``) or ``v + d < b`` (``mode="min"``); the first value always improves.
``mode="auto"`` minimises ``loss`` / ``val_loss`` and the compiled metrics that fall (``mse``, ``mae``) and
maximises those that rise (``accuracy``); any other name needs an explicit mode (a ValueError at the first epoch
end, as Keras). A monitored name missing from the logs gives a warning listing the logged names, and the callback
does nothing that epoch (Keras' behaviour).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.nn.callbacks.base import Callback

__all__ = ["EarlyStopping", "LearningRateScheduler", "ModelCheckpoint", "MonitorCallback", "ReduceLROnPlateau"]

_DIRECTIONS = {"loss": "min", "accuracy": "max", "mse": "min", "mae": "min"}


def _optimizer(cb: Callback, what: str):
    """The model's optimizer instance and a check that its learning rate can be set."""
    opt = getattr(cb.model, "optimizer", None)
    if opt is None or not hasattr(opt, "learning_rate") or isinstance(opt, (str, type)):
        raise ValueError(f"{what}: the model has no optimizer instance with a learning_rate yet (compile it first)")
    if callable(opt.learning_rate):
        raise TypeError(f"{what}: the optimizer's learning_rate is a schedule ({opt.learning_rate!r}), so it cannot "
                        f"be set per epoch; give the optimizer a number as learning_rate to use {what}")
    return opt


def _count(where: str, arg: str, value) -> int:
    return validation.positive_int(where, arg, value, minimum=0)


class MonitorCallback(Callback):
    """Base class of the callbacks that track the best value of ``monitor`` (see the module docstring).

    Args:
        monitor: str, default ``"val_loss"``: the logged quantity.
        mode: ``"auto"`` (default: min for the losses and falling metrics, max otherwise; see the module
            docstring), ``"min"`` or ``"max"``.
        baseline: number or None (default): a value to beat before anything counts as an improvement.
        min_delta: number >= 0, default 0: the smallest change that counts as an improvement.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        where = type(self).__name__
        if not isinstance(monitor, str):
            raise TypeError(f"{where}: monitor must be the name of a logged quantity such as 'val_loss'; got "
                            f"{monitor!r}")
        self.monitor = monitor
        self.mode = validation.choice(where, "mode", mode, ("auto", "min", "max"))
        if baseline is not None:
            baseline = validation.number_in(where, "baseline", baseline, -math.inf, math.inf)
        self.best = baseline
        self.min_delta = abs(validation.number_in(where, "min_delta", min_delta, -math.inf, math.inf))
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        mode = self.mode
        if mode == "auto":
            name = self.monitor.removeprefix("val_")
            compiled = {n for n, _ in getattr(self.model, "metrics", ())} | {"loss"}
            mode = _DIRECTIONS.get(name) if name in compiled else None
            if mode is None:
                raise ValueError(f"{type(self).__name__}: cannot tell whether monitor={self.monitor!r} should be "
                                 f"minimised or maximised; pass mode='min' or mode='max'")
        self.monitor_op = np.less if mode == "min" else np.greater
        if mode == "min":
            self.min_delta = -self.min_delta

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))

    def _monitored(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__} is conditioned on {self.monitor!r}, which is not in the logs; the "
                          f"logged quantities are {', '.join(logs) or 'none'}", stacklevel=3)
        return value


class EarlyStopping(MonitorCallback):
    """``EarlyStopping(monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
    restore_best_weights=False, start_from_epoch=0)``: stop when ``monitor`` has not improved for ``patience``
    epochs (Keras 3's rule, epoch by epoch: epochs before ``start_from_epoch`` are ignored; ``wait`` counts epochs
    since the last improvement, reset only by an improvement that also beats ``baseline``; training stops at the
    first epoch > 0 with ``wait >= patience``). ``restore_best_weights``: at the end of training (stopped early
    or not) the weights of the best epoch are set back, even if none beat the baseline. ``stopped_epoch`` and
    ``best_epoch`` are 0-based.

    Args:
        monitor: the logged name to watch, default ``"val_loss"`` (needs validation data in ``fit``).
        mode: ``"auto"`` (default), ``"min"`` or ``"max"`` (see the module docstring).
        min_delta: number, default 0: the smallest change that counts as an improvement.
        patience: int >= 0, default 0: epochs without improvement before stopping.
        verbose: 0 (default) or 1: print when stopping.
        baseline: number or None (default): a value the monitor must beat to reset ``wait``.
        restore_best_weights: bool, default False.
        start_from_epoch: int >= 0, default 0: epochs to ignore at the start (warm-up).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, baseline, min_delta)
        self.patience = _count("EarlyStopping", "patience", patience)
        self.verbose = verbose
        self.baseline = self.best  # checked by MonitorCallback; ``best`` restarts at None in on_train_begin
        self.restore_best_weights = validation.boolean("EarlyStopping", "restore_best_weights",
                                                       restore_best_weights)
        self.start_from_epoch = _count("EarlyStopping", "start_from_epoch", start_from_epoch)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self._monitored(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(MonitorCallback):
    """``ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
    cooldown=0, min_lr=0.0)``: Keras 3's rule at every epoch end: log ``learning_rate``; in cooldown, count it down
    and reset ``wait``; an improvement resets ``wait``; otherwise (out of cooldown) ``wait += 1`` and at
    ``wait >= patience`` the rate becomes ``max(lr * factor, min_lr)`` if ``lr > float32(min_lr)``, starting a
    cooldown of ``cooldown`` epochs.

    Args:
        monitor: the logged name to watch, default ``"val_loss"`` (needs validation data in ``fit``).
        mode: ``"auto"`` (default), ``"min"`` or ``"max"`` (see the module docstring).
        factor: float in [0, 1), default 0.1: the rate's multiplier.
        patience: int >= 0, default 10.
        verbose: 0 (default) or 1: print each reduction.
        min_delta: number, default 1e-4.
        cooldown: int >= 0, default 0: epochs to wait after a reduction.
        min_lr: float >= 0, default 0: the rate's floor.

    Raises:
        TypeError: (at training start) the optimizer's learning rate is a schedule, which cannot be set per epoch.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.factor = validation.number_in("ReduceLROnPlateau", "factor", factor, 0.0, 1.0, high_open=True)
        self.min_lr = validation.number_in("ReduceLROnPlateau", "min_lr", min_lr, 0.0, math.inf)
        self.patience = _count("ReduceLROnPlateau", "patience", patience)
        self.cooldown = _count("ReduceLROnPlateau", "cooldown", cooldown)
        self.verbose = verbose
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        _optimizer(self, "ReduceLROnPlateau")  # refused before training when the rate cannot be set
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        opt = _optimizer(self, "ReduceLROnPlateau")
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(opt.learning_rate)
        current = self._monitored(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(opt.learning_rate)
                if old > np.float32(self.min_lr):
                    opt.learning_rate = max(old * self.factor, self.min_lr)
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                              f"{opt.learning_rate}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """``LearningRateScheduler(schedule, verbose=0)``: at every epoch start the optimizer's rate becomes
    ``schedule(epoch, lr)`` (or ``schedule(epoch)`` for a one-argument function, as Keras); the rate is logged as
    ``learning_rate`` at the epoch end. A result that is not a finite number >= 0 raises.

    Args:
        schedule: a function ``(epoch, lr) -> lr`` or ``epoch -> lr`` (epoch counted from 0).
        verbose: 0 (default) or 1: print each new rate.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function (epoch, lr) -> lr; got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        _optimizer(self, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        opt = _optimizer(self, "LearningRateScheduler")
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:  # Keras' old one-argument form
            lr = self.schedule(epoch)
        if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"LearningRateScheduler: schedule({epoch}, lr) gave {lr!r}; expected a finite number "
                             f">= 0")
        opt.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(_optimizer(self, "LearningRateScheduler").learning_rate)


class ModelCheckpoint(MonitorCallback):
    """``ModelCheckpoint(filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
    mode="auto", save_freq="epoch", initial_value_threshold=None)``: save after every epoch (or every
    ``save_freq`` batches) to ``filepath.format(epoch=epoch + 1, **logs)`` (``"ckpt-{epoch:02d}-{val_loss:.2f}"``;
    ``{batch}`` too when saving per batch), creating its directory. ``save_best_only``: only when ``monitor``
    improved on the best so far (starting from ``initial_value_threshold``). ``save_weights_only=True`` writes
    ``model.save_weights(path)``; otherwise ``model.save(path)``, refused before training when the model has no
    ``save``.

    Args:
        filepath: a path, possibly with ``{epoch}``, ``{batch}`` and logged names as format fields.
        monitor: the logged name to watch, default ``"val_loss"`` (needs validation data in ``fit``).
        mode: ``"auto"`` (default), ``"min"`` or ``"max"`` (see the module docstring).
        verbose: 0 (default) or 1: print each save.
        save_best_only: bool, default False.
        save_weights_only: bool, default False.
        save_freq: ``"epoch"`` (default) or a positive int: save every that many batches.
        initial_value_threshold: number or None (default): the best value to start from.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = validation.boolean("ModelCheckpoint", "save_best_only", save_best_only)
        self.save_weights_only = validation.boolean("ModelCheckpoint", "save_weights_only", save_weights_only)
        if save_freq != "epoch":
            save_freq = validation.positive_int("ModelCheckpoint", "save_freq ('epoch' or a batch count)", save_freq)
        self.save_freq = save_freq
        self._batches_since_save = 0
        self._current_epoch = 0

    def on_train_begin(self, logs=None):
        if not self.save_weights_only and not callable(getattr(self.model, "save", None)):
            raise ValueError(f"ModelCheckpoint: save_weights_only=False saves the whole model with model.save, which "
                             f"{type(self.model).__name__} does not have; pass save_weights_only=True (weights with "
                             f"model.save_weights)")
        self._batches_since_save = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _path(self, epoch, batch, logs) -> str:
        fields = dict(logs or {}, epoch=epoch + 1)
        if batch is not None:
            fields.setdefault("batch", batch + 1)
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError) as exc:
            raise KeyError(f"ModelCheckpoint: cannot fill filepath {self.filepath!r}: {exc} is not logged; the "
                           f"fields are {sorted(fields)}") from exc

    def _save(self, epoch, batch, logs) -> None:
        path = self._path(epoch, batch, logs)
        if self.save_best_only:
            current = (logs or {}).get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint: can save the best model only with {self.monitor!r} in the logs "
                              f"(logged: {', '.join(logs or {}) or 'none'}); saving anyway", stacklevel=3)
            elif not self._is_improvement(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            else:
                if self.verbose > 0:
                    best = "None" if self.best is None else f"{self.best:.5f}"
                    print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, saving model "
                          f"to {path}")
                self.best = current
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(f"ModelCheckpoint: {path!r} is a directory; give a file path")
        (self.model.save_weights if self.save_weights_only else self.model.save)(path)
        if self.verbose > 0 and not self.save_best_only:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
