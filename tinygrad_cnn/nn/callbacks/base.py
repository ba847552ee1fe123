"""Keras' callback protocol: ``Callback`` (every hook a no-op), ``CallbackList`` (calls them in order), ``History``
(what ``fit`` returns) and ``LambdaCallback``.

Hooks, with Keras' names and arguments, as ``fit`` / ``evaluate`` / ``predict`` call them:
``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``, ``on_train_batch_begin(batch, logs)``,
``on_train_batch_end(batch, logs)`` (logs: the running means of loss and metrics over the epoch so far),
``on_epoch_end(epoch, logs)`` (logs: the epoch's means, with ``val_*`` entries on validation epochs),
``on_train_end(logs)`` (the last epoch's logs), the ``on_test_*`` hooks around ``evaluate`` (also the
validation inside ``fit``) and the ``on_predict_*`` hooks around ``predict``. ``on_train_batch_begin/end``
call ``on_batch_begin/end`` unless overridden (Keras' backwards-compatible aliases). ``epoch`` and ``batch`` are
0-based. A callback stops training by setting ``self.model.stop_training = True`` (checked after every batch
and every epoch).
"""

from __future__ import annotations

__all__ = ["Callback", "CallbackList", "History", "LambdaCallback"]

_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_test_begin", "on_test_end",
          "on_predict_begin", "on_predict_end", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
          "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end", "on_batch_begin", "on_batch_end")


class Callback:
    """Base class: ``params`` (``verbose``, ``epochs``, ``steps``) and ``model`` are set by ``fit`` before
    ``on_train_begin``; override the hooks you need (see the module docstring)."""

    def __init__(self):
        self.params = None
        self.model = None

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self.model = model

    def on_batch_begin(self, batch, logs=None):
        """Keras' alias of ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """Keras' alias of ``on_train_batch_end``."""

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of every epoch."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of every epoch with the epoch's logs."""

    def on_train_begin(self, logs=None):
        """Called once before the first epoch."""

    def on_train_end(self, logs=None):
        """Called once after the last epoch (also after an early stop)."""

    def on_test_begin(self, logs=None):
        """Called at the start of ``evaluate`` (and of each validation in ``fit``)."""

    def on_test_end(self, logs=None):
        """Called at the end of ``evaluate`` with its logs."""

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each ``evaluate`` batch."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after each ``evaluate`` batch with the running means."""

    def on_predict_begin(self, logs=None):
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs=None):
        """Called at the end of ``predict``."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before each ``predict`` batch."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after each ``predict`` batch (logs: ``{"outputs": the batch's outputs}``)."""


class CallbackList(Callback):
    """``CallbackList(callbacks=None, add_history=False, add_progbar=False, model=None, **params)``: calls every
    hook on each callback in order. ``add_history`` appends a ``History`` unless one is given, ``add_progbar`` a
    ``ProgbarLogger`` (Keras' order: both after the user's callbacks).

    Args:
        callbacks: a sequence of ``Callback`` objects or None (default).
        add_history: bool, default False.
        add_progbar: bool, default False.
        model: the ``Model`` given to every callback (``set_model``), default None.
        **params: the run's parameters given to every callback (``set_params``: epochs, steps, verbose).
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        super().__init__()
        from tinygrad_cnn.nn.callbacks.loggers import ProgbarLogger  # the loggers build on this module

        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of nn.callbacks.Callback objects; got {callbacks!r}")
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}] must be an nn.callbacks.Callback (subclass Callback or use "
                                f"LambdaCallback for plain functions); got {cb!r} of type {type(cb).__name__}")
        self.callbacks = list(callbacks)
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def set_params(self, params):
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_model(self, model):
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)


def _dispatch(name: str):
    def hook(self, *args, **kwargs):
        for cb in self.callbacks:
            getattr(cb, name)(*args, **kwargs)

    hook.__name__ = name
    hook.__doc__ = f"Call ``{name}`` on every callback, in order."
    return hook


for _name in _HOOKS:
    setattr(CallbackList, _name, _dispatch(_name))


class History(Callback):
    """Records the epoch logs: ``history`` (name -> list, one value per epoch), ``epoch`` (the epoch indices),
    ``params``. ``fit`` adds one and returns it (also as ``model.history``)."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


class LambdaCallback(Callback):
    """``LambdaCallback(on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
    on_train_batch_begin=None, on_train_batch_end=None, **kwargs)``: plain functions as hooks, with the hooks'
    positional arguments (``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ...); ``kwargs`` may name
    any other hook.

    Args:
        on_epoch_begin, on_epoch_end: ``fn(epoch, logs)`` or None.
        on_train_begin, on_train_end: ``fn(logs)`` or None.
        on_train_batch_begin, on_train_batch_end: ``fn(batch, logs)`` or None.
        **kwargs: any other hook by name (``on_test_end=fn``, ...).
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(_HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback: {unknown} are not callback hooks; the hooks are {list(_HOOKS)}")
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be a function; got {fn!r}")
            setattr(self, name, _positional(fn, 1 if name.endswith(("_begin", "_end")) and "batch" not in name
                                            and "epoch" not in name else 2))


def _positional(fn, arity: int):
    """The hook, handing ``fn`` its ``arity`` arguments positionally (``logs`` last, given by keyword or not)."""
    def hook(*args, logs=None):
        return fn(*(args if len(args) >= arity else args + (logs,)))

    return hook
