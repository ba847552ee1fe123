"""Callbacks: the monitor rules fed the same value sequences as Keras 3's own callbacks (stopped epoch, best epoch,
restored weights, learning rates, CSV rows), and the hooks inside fit (order, stop_training, checkpoints, NaN)."""

import os

import numpy as np
import pytest

from tinygrad_cnn import nn, optim
from tinygrad_cnn.nn import callbacks as cb

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")


class FakeOptimizer:
    def __init__(self, lr):
        self.learning_rate = lr


class FakeModel:
    """What the callbacks touch: stop_training, get/set_weights (the epoch they were taken at), metrics, optimizer."""

    def __init__(self, lr=0.1):
        self.stop_training = False
        self.epoch = -1
        self.restored = None
        self.metrics = []
        self.optimizer = FakeOptimizer(lr)

    def get_weights(self):
        return [np.array(self.epoch)]

    def set_weights(self, weights):
        self.restored = int(weights[0])


def _drive(callback, values, monitor="val_loss", lr=0.1):
    """Feed ``values`` as the monitored quantity epoch by epoch; the stop epoch, restored epoch and rates seen."""
    model = FakeModel(lr)
    callback.set_model(model)
    callback.on_train_begin()
    stopped, rates = None, []
    for epoch, v in enumerate(values):
        model.epoch = epoch
        callback.on_epoch_begin(epoch, {})
        callback.on_epoch_end(epoch, {monitor: float(v)})
        rates.append(float(model.optimizer.learning_rate))
        if model.stop_training:
            stopped = epoch
            break
    callback.on_train_end({})
    return stopped, model.restored, rates


VALUES = np.array([1.0, 0.8, 0.81, 0.79, 0.795, 0.9, 0.7, 0.71, 0.72, 0.705, 0.73, 0.74, 0.75, 0.6, 0.61, 0.62])
EARLY = [
    dict(patience=0),
    dict(patience=2),
    dict(patience=2, min_delta=0.02),
    dict(patience=3, min_delta=-0.02, restore_best_weights=True),  # min_delta's sign is ignored (abs), as Keras
    dict(patience=1, baseline=0.75, restore_best_weights=True),
    dict(patience=2, baseline=0.5, restore_best_weights=True),  # nothing beats the baseline: best epoch restored
    dict(patience=1, start_from_epoch=4, restore_best_weights=True),
    dict(patience=2, mode="max", monitor="val_accuracy"),
]


@pytest.mark.parametrize("kwargs", EARLY, ids=[str(k) for k in EARLY])
def test_early_stopping_stops_and_restores_as_keras(kwargs):
    monitor = kwargs.get("monitor", "val_loss")
    values = 1 - VALUES if monitor == "val_accuracy" else VALUES
    ours = _drive(cb.EarlyStopping(**kwargs), values, monitor)
    theirs = _drive(keras.callbacks.EarlyStopping(**kwargs), values, monitor)
    assert ours[:2] == theirs[:2]


def test_negative_control_early_stopping_differs_when_patience_differs():
    assert _drive(cb.EarlyStopping(patience=1), VALUES)[0] != _drive(keras.callbacks.EarlyStopping(patience=3),
                                                                     VALUES)[0]


PLATEAU = [dict(patience=1), dict(patience=2, factor=0.5, cooldown=2), dict(patience=1, factor=0.5, min_lr=0.02),
           dict(patience=1, min_delta=0.05, cooldown=1), dict(patience=2, mode="max", factor=0.3)]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_lr_on_plateau_gives_keras_rates(kwargs):
    ours = _drive(cb.ReduceLROnPlateau(**kwargs), VALUES)[2]
    theirs = _drive(keras.callbacks.ReduceLROnPlateau(**kwargs), VALUES)[2]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert len(set(ours)) > 1


def test_learning_rate_scheduler_gives_keras_rates_and_logs_them():
    def schedule(epoch, lr):
        return lr if epoch < 3 else lr * 0.5

    ours = _drive(cb.LearningRateScheduler(schedule), VALUES[:6])[2]
    theirs = _drive(keras.callbacks.LearningRateScheduler(schedule), VALUES[:6])[2]
    assert ours == pytest.approx(theirs) and ours[-1] == pytest.approx(0.1 * 0.5 ** 3)
    one_arg = _drive(cb.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1)), VALUES[:3])[2]
    assert one_arg == pytest.approx([0.01, 0.02, 0.03])
    with pytest.raises(ValueError, match=r"schedule\(0, lr\) gave -1"):
        _drive(cb.LearningRateScheduler(lambda epoch, lr: -1), VALUES[:2])


def test_csv_logger_writes_keras_rows(tmp_path):
    rows = [{"loss": 0.5, "accuracy": 0.25}, {"loss": 0.25, "accuracy": 0.5}]
    for name, make in (("ours", cb.CSVLogger), ("keras", keras.callbacks.CSVLogger)):
        for append in (False, True):
            logger = make(str(tmp_path / f"{name}.csv"), append=append)
            logger.set_model(FakeModel())
            logger.on_train_begin()
            for epoch, logs in enumerate(rows):
                logger.on_epoch_end(epoch, dict(logs))
            logger.on_train_end()
    ours, theirs = ((tmp_path / f"{n}.csv").read_text() for n in ("ours", "keras"))
    assert ours == theirs
    assert ours.splitlines()[0] == "epoch,accuracy,loss,val_accuracy,val_loss" and len(ours.splitlines()) == 5


def _model(seed=0):
    nn.set_random_seed(seed)
    model = nn.Sequential([nn.Input((4,)), nn.Dense(8, activation="tanh"), nn.Dense(3)])
    model.compile(optim.SGD(model.parameters(), 0.2), "cross_entropy", ["accuracy"])
    return model


_RNG = np.random.default_rng(0)
X, Y = _RNG.standard_normal((48, 4)).astype(np.float32), _RNG.integers(0, 3, 48)


def test_hooks_run_in_keras_order_and_stop_training_ends_after_the_batch():
    events = []

    def record(name):
        return lambda *args: events.append((name, *[a for a in args if isinstance(a, int)]))

    hooks = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
             "on_train_batch_end", "on_test_begin", "on_test_end"]
    spy = cb.LambdaCallback(**{h: record(h) for h in hooks})
    model = _model()
    model.fit(X[:16], Y[:16], batch_size=8, epochs=2, validation_data=(X[:8], Y[:8]), verbose=0, callbacks=[spy])
    epoch = lambda e: [("on_epoch_begin", e), ("on_train_batch_begin", 0), ("on_train_batch_end", 0),  # noqa: E731
                       ("on_train_batch_begin", 1), ("on_train_batch_end", 1), ("on_test_begin",),
                       ("on_test_end",), ("on_epoch_end", e)]
    assert events == [("on_train_begin",)] + epoch(0) + epoch(1) + [("on_train_end",)]

    def stop_at_batch_1(batch, logs):
        if batch == 1:
            model.stop_training = True

    seen = []
    history = model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=[
        cb.LambdaCallback(on_train_batch_end=stop_at_batch_1), cb.LambdaCallback(
            on_train_batch_end=lambda batch, logs: seen.append(batch))])
    assert seen == [0, 1] and history.epoch == [0] and set(history.history) == {"loss", "accuracy"}


def test_early_stopping_in_fit_restores_the_best_epochs_weights():
    model = _model()
    model.compile(optim.SGD(model.parameters(), 3.0), "cross_entropy")  # too large a step: val_loss goes up
    weights = []
    keep = cb.LambdaCallback(on_epoch_end=lambda epoch, logs: weights.append((logs["val_loss"], model.get_weights())))
    stop = cb.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(X, Y, batch_size=4, epochs=30, validation_split=0.25, verbose=0, callbacks=[keep, stop],
                        seed=0)
    losses = history.history["val_loss"]
    assert len(losses) < 30 and stop.stopped_epoch == len(losses) - 1
    best = int(np.argmin(losses))
    assert stop.best_epoch == best
    for w, ref in zip(model.get_weights(), weights[best][1], strict=True):
        np.testing.assert_array_equal(w, ref)


def test_model_checkpoint_saves_the_best_epochs_with_templated_names(tmp_path):
    model = _model()
    weights = {}
    keep = cb.LambdaCallback(on_epoch_end=lambda epoch, logs: weights.__setitem__(epoch, model.get_weights()))
    path = str(tmp_path / "ckpt" / "w-{epoch:02d}-{val_loss:.3f}.npz")
    check = cb.ModelCheckpoint(path, save_best_only=True, save_weights_only=True)
    history = model.fit(X, Y, batch_size=8, epochs=4, validation_data=(X, Y), verbose=0, callbacks=[keep, check])
    losses = history.history["val_loss"]
    improved = [e for e, v in enumerate(losses) if v < min(losses[:e], default=np.inf)]
    names = sorted(os.listdir(tmp_path / "ckpt"))
    assert names == [f"w-{e + 1:02d}-{losses[e]:.3f}.npz" for e in improved]
    other = _model(seed=1)
    other.load_weights(tmp_path / "ckpt" / names[-1])
    for w, ref in zip(other.get_weights(), weights[improved[-1]], strict=True):
        np.testing.assert_array_equal(w, ref)
    with pytest.raises(KeyError, match=r"'val_acc' is not logged"):
        model.fit(X, Y, epochs=1, verbose=0, validation_data=(X, Y),
                  callbacks=[cb.ModelCheckpoint(str(tmp_path / "{val_acc}.npz"), save_weights_only=True)])


def test_model_checkpoint_saves_the_whole_model_by_default(tmp_path):
    model = _model()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[cb.ModelCheckpoint(str(tmp_path / "m-{epoch}.keras"))])
    again = nn.load_model(str(tmp_path / "m-2.keras"))
    for w, ref in zip(again.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(w, ref)


def test_model_checkpoint_without_model_save_asks_for_weights_only(tmp_path, monkeypatch):
    model = _model()
    owner = next(c for c in type(model).__mro__ if "save" in vars(c))
    monkeypatch.delattr(owner, "save")  # a model class of the user's without the whole-model format
    before = model.get_weights()
    with pytest.raises(ValueError, match="save_weights_only=True"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[cb.ModelCheckpoint(str(tmp_path / "m.keras"))])
    for w, ref in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, ref)


def test_terminate_on_nan_stops_after_the_bad_batch():
    x = X.copy()
    x[20] = np.nan  # batch 2 of 8-example batches
    seen = []
    model = _model()
    history = model.fit(x, Y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[
        cb.TerminateOnNaN(), cb.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))])
    assert seen == [0, 1, 2] and history.epoch == [0] and np.isnan(history.history["loss"][0])
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        _model().fit(x, Y, batch_size=8, shuffle=False, verbose=0, callbacks=[cb.TerminateOnNaN(raise_error=True)])


def test_reduce_lr_in_fit_lowers_the_optimizers_rate_and_logs_it():
    model = _model()
    model.compile("sgd", "cross_entropy")  # a name: fit builds the optimizer, the callback then sets its rate
    history = model.fit(X, Y, epochs=4, verbose=0, callbacks=[
        cb.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0, factor=0.5)])
    # logged before the epoch's decision: the first epoch is an improvement, every later one a plateau
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.01, 0.005, 0.0025])
    assert model.optimizer.learning_rate == pytest.approx(0.00125)
    model.compile(optim.SGD(model.parameters(), optim.schedules.constant_schedule(0.1)), "cross_entropy")
    with pytest.raises(TypeError, match="learning_rate is a schedule"):
        model.fit(X, Y, verbose=0, callbacks=[cb.ReduceLROnPlateau()])


@pytest.mark.parametrize("make,match", [
    (lambda: cb.EarlyStopping(mode="maximum"), r"mode='maximum' is not one of 'auto', 'min', 'max'"),
    (lambda: cb.EarlyStopping(patience=-1), "patience must be an integer >= 0"),
    (lambda: cb.ReduceLROnPlateau(factor=1.0), r"factor must be in \[0.0, 1.0\)"),
    (lambda: cb.ModelCheckpoint("x.npz", save_freq="batch"), "save_freq"),
    (lambda: cb.LambdaCallback(on_epoch_stop=print), "not callback hooks"),
    (lambda: _model().fit(X, Y, verbose=0, callbacks=[print]), r"callbacks\[0\] must be an nn.callbacks.Callback"),
    (lambda: _drive(cb.EarlyStopping(monitor="val_f1"), VALUES, "val_f1"), "pass mode='min' or mode='max'"),
])
def test_bad_callback_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_a_missing_monitor_warns_with_the_logged_names():
    with pytest.warns(UserWarning, match="'val_loss', which is not in the logs; the logged quantities are loss"):
        _model().fit(X, Y, verbose=0, callbacks=[cb.EarlyStopping()])
