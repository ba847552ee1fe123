"""compile / fit / evaluate / predict for ``Sequential`` (Keras' meaning of the loss and metric names).

Losses: a name of the one registry ``nn.losses.LOSSES`` with Keras' meaning
(``sparse_categorical_crossentropy`` (class ids) and ``categorical_crossentropy``
(one-hot) expect *probabilities*, a softmax output; ``"cross_entropy"`` takes
logits), a ``nn.losses`` object such as ``SparseCategoricalCrossentropy(from_logits=True)``,
or a callable ``loss(outputs, targets) -> scalar Tensor`` used as is. ``fit`` minimises
loss + sum(model.losses) (the regularization penalties) and reports that total.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from tinygrad_cnn import optim, validation
from tinygrad_cnn.modes import no_grad
from tinygrad_cnn.nn import losses
from tinygrad_cnn.ops.random import rng as make_rng
from tinygrad_cnn.tensor import Tensor

__all__ = ["History", "ModelBase", "get_loss", "get_metric"]


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


class History:
    """What ``fit`` returns: ``history`` (metric name -> list per epoch), ``epoch``, ``params``."""

    def __init__(self, params: dict):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = params

    def _append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


def _arrays(fn: str, x, y=None):
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError(f"{fn}: x must be a non-empty array with a batch axis; got shape {x.shape}")
    if y is None:
        return x, None
    y = np.asarray(y.data if isinstance(y, Tensor) else y)
    if len(y) != len(x):
        raise ValueError(f"{fn}: x has {len(x)} examples but y has {len(y)}")
    return x, y


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

    def compile(self, optimizer="adam", loss=None, metrics=None) -> None:
        """Choose the optimizer (instance, class or a name of ``optim.OPTIMIZERS``, built with its class' default
        learning rate, Keras'), the loss (callable or Keras name) and metrics (names such as ``"accuracy"`` or
        callables).

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
        self.loss = get_loss(loss)
        self.metrics = [get_metric(m) for m in (metrics or [])]
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
        self.optimizer = new
        return new

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        dtype = self._layers[0].dtype if getattr(self, "_layers", None) else "float32"
        return x.astype(dtype, copy=False) if np.issubdtype(x.dtype, np.number) else x

    def _total_loss(self, outputs, targets):
        loss = self.loss(outputs, targets)
        for penalty in self.losses:
            loss = loss + penalty
        return loss

    def train_step(self, xb: np.ndarray, yb: np.ndarray, opt) -> tuple[float, np.ndarray]:
        """One update: zero_grad, forward (training=True), loss + penalties, backward, step, constraints."""
        opt.zero_grad()
        outputs = self(xb, training=True)
        loss = self._total_loss(outputs, yb)
        loss.backward()
        opt.step()
        self.apply_constraints()
        return float(loss.item()), outputs.data

    def fit(self, x, y, batch_size=32, epochs=1, validation_data=None, shuffle=True, seed=None, verbose=1):
        """Train for ``epochs`` passes over (x, y) in mini-batches; returns a History.

        ``seed`` fixes the shuffling and every Dropout mask: the same seed and
        the same initial weights give bit-identical training.
        """
        if not self.compiled:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss, metrics) before fit")
        if y is None:
            raise ValueError("fit: y is None; fit needs the targets y (one per example of x) for the loss")
        x, y = _arrays("fit", x, y)
        batch_size = validation.positive_int("fit", "batch_size", batch_size)
        epochs = validation.positive_int("fit", "epochs", epochs, minimum=0)
        validation.seed("fit", "seed", seed, allow_generator=False)
        shuffle = validation.boolean("fit", "shuffle", shuffle)
        if verbose not in (0, 1, 2, "auto"):  # Keras' values (True/False are 1/0)
            raise ValueError(f"fit: verbose must be 0, 1, 2 or 'auto'; got {verbose!r}")
        if validation_data is not None and (not isinstance(validation_data, (tuple, list))
                                            or len(validation_data) != 2):
            raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
        x = self._inputs(x)
        if not self.built:
            self.build((None,) + x.shape[1:])
        opt = self._make_optimizer()
        rng = make_rng(seed)  # seed=None: reproducible after nn.set_random_seed, fresh entropy otherwise
        for layer in self._layers:  # fit(seed) reseeds every random layer; seed=None only the unseeded ones
            if hasattr(layer, "reseed") and (seed is not None or getattr(layer, "seed", None) is None):
                layer.reseed(np.random.default_rng(rng.integers(2 ** 63)))
        n = len(x)
        steps = -(-n // batch_size)
        history = History({"epochs": epochs, "steps": steps, "batch_size": batch_size, "verbose": verbose})
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else np.arange(n)
            sums = {"loss": 0.0, **{name: 0.0 for name, _ in self.metrics}}
            seen = 0
            bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", disable=not verbose, unit="batch",
                       leave=True, dynamic_ncols=True)
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                loss, out = self.train_step(x[idx], y[idx], opt)
                k = len(idx)
                seen += k
                sums["loss"] += loss * k
                for name, fn in self.metrics:
                    sums[name] += fn(out, y[idx]) * k
                bar.update(1)
                bar.set_postfix({k_: f"{v / seen:.4f}" for k_, v in sums.items()}, refresh=False)
            logs = {k_: v / seen for k_, v in sums.items()}
            if validation_data is not None:
                val = self.evaluate(validation_data[0], validation_data[1], batch_size=batch_size, verbose=0,
                                    return_dict=True)
                logs.update({f"val_{k_}": v for k_, v in val.items()})
            bar.set_postfix({k_: f"{v:.4f}" for k_, v in logs.items()})
            bar.close()
            history._append(epoch, logs)
        self.history = history
        return history

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False):
        """Mean loss (with penalties) and metrics over (x, y), batched, without recording a graph.

        Returns the loss, or ``[loss, *metrics]`` when metrics were compiled (a dict with ``return_dict``)."""
        if not self.compiled:
            raise RuntimeError(f"{self.name}: call compile(optimizer, loss, metrics) before evaluate")
        if y is None:
            raise ValueError("evaluate: y is None; evaluate needs the targets y (one per example of x) for the loss")
        x, y = _arrays("evaluate", x, y)
        batch_size = validation.positive_int("evaluate", "batch_size", batch_size)
        x = self._inputs(x)
        sums = {"loss": 0.0, **{name: 0.0 for name, _ in self.metrics}}
        with no_grad():
            for start in tqdm(range(0, len(x), batch_size), desc="evaluate", disable=not verbose, unit="batch"):
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                out = self(xb, training=False)
                sums["loss"] += float(self._total_loss(out, yb).item()) * len(xb)
                for name, fn in self.metrics:
                    sums[name] += fn(out.data, yb) * len(xb)
        logs = {k: v / len(x) for k, v in sums.items()}
        if return_dict:
            return logs
        return logs["loss"] if not self.metrics else list(logs.values())

    def predict(self, x, batch_size=32, verbose=0) -> np.ndarray:
        """The model's outputs for x, computed in batches without recording a graph."""
        x, _ = _arrays("predict", x)
        batch_size = validation.positive_int("predict", "batch_size", batch_size)
        x = self._inputs(x)
        outs = []
        with no_grad():
            for start in tqdm(range(0, len(x), batch_size), desc="predict", disable=not verbose, unit="batch"):
                outs.append(self(x[start:start + batch_size], training=False).data)
        return np.concatenate(outs, axis=0)
