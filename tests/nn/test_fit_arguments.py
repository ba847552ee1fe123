"""fit's Keras arguments: class_weight / sample_weight / validation_split / steps_per_epoch against Keras 3 on a tiny
model, iterables of batches, validation_freq, initial_epoch, evaluate / predict forms, progress output, bad
arguments (refused before anything changes)."""

import os
import sys
import warnings

import numpy as np
import pytest

from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, optim
from tinygrad_cnn.nn import callbacks as cb

os.environ.setdefault("KERAS_BACKEND", "jax")

_RNG = np.random.default_rng(0)
X, Y = _RNG.standard_normal((40, 4)).astype(np.float32), _RNG.integers(0, 3, 40)
W = _RNG.uniform(0.0, 2.0, 40).astype(np.float32)


def _pair(keras):
    """A Keras softmax classifier and the engine's copy of it (same weights), both compiled with SGD(0.1)."""
    keras.utils.set_random_seed(0)
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"),
                               keras.layers.Dense(3, activation="softmax")])
    theirs.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ours = nn.Sequential([nn.Input((4,)), nn.Dense(5, activation="tanh"), nn.Dense(3, activation="softmax")])
    ours.set_weights(theirs.get_weights())
    ours.compile(optim.SGD(ours.parameters(), 0.1), "sparse_categorical_crossentropy", ["accuracy"])
    return ours, theirs


@pytest.mark.parametrize("kwargs", [
    # 30 training examples in batches of 10: epochs of 2 batches, then 1 (the pass ends), then 2, as Keras
    dict(class_weight={0: 1.0, 1: 3.0, 2: 0.5}, validation_split=0.25, batch_size=10, steps_per_epoch=2),
    dict(sample_weight=W, validation_data=(X[:12], Y[:12], W[:12])),
], ids=["class_weight+validation_split+steps_per_epoch", "sample_weight+weighted_validation"])
def test_fit_equals_keras(kwargs):
    keras = pytest.importorskip("keras")
    ours, theirs = _pair(keras)
    kwargs = {"batch_size": 8, "epochs": 3, "shuffle": False, "verbose": 0, **kwargs}
    counts = {"ours": [], "keras": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras' (and our) "ran out of data" warning for the short epoch
        h_theirs = theirs.fit(X, Y, callbacks=[keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda e, logs: counts["keras"].append(0),
            on_train_batch_end=lambda b, logs: counts["keras"].__setitem__(-1, counts["keras"][-1] + 1))], **kwargs)
        h_ours = ours.fit(X, Y, callbacks=[cb.LambdaCallback(
            on_epoch_begin=lambda e, logs: counts["ours"].append(0),
            on_train_batch_end=lambda b, logs: counts["ours"].__setitem__(-1, counts["ours"][-1] + 1))], **kwargs)
    assert counts["ours"] == counts["keras"]
    assert counts["ours"] == ([2, 1, 2] if "steps_per_epoch" in kwargs else [5, 5, 5])
    assert set(h_ours.history) == set(h_theirs.history)
    for key, values in h_theirs.history.items():
        np.testing.assert_allclose(h_ours.history[key], values, rtol=2e-5, atol=1e-6, err_msg=key)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    if "sample_weight" in kwargs:
        evaluated = ours.evaluate(X, Y, sample_weight=W, return_dict=True)
        expected = theirs.evaluate(X, Y, sample_weight=W, return_dict=True, verbose=0)
        assert evaluated["loss"] == pytest.approx(expected["loss"], rel=1e-5)


def test_negative_control_class_weight_changes_training():
    plain = nn.Sequential([nn.Input((4,)), nn.Dense(3)])
    weighted = nn.Sequential([nn.Input((4,)), nn.Dense(3)])
    weighted.set_weights(plain.get_weights())
    for model, cw in ((plain, None), (weighted, {1: 5.0})):
        model.compile(optim.SGD(model.parameters(), 0.1), F.cross_entropy)
        model.fit(X, Y, batch_size=8, shuffle=False, verbose=0, class_weight=cw)
    assert not np.allclose(plain.get_weights()[0], weighted.get_weights()[0])


def _model(seed=0):
    nn.set_random_seed(seed)
    model = nn.Sequential([nn.Input((4,)), nn.Dense(3)])
    model.compile(optim.Adam(model.parameters(), 1e-2), F.cross_entropy, ["accuracy"])
    return model


def _batches(n_batches, batch_size=8):
    return [(X[i * batch_size:(i + 1) * batch_size], Y[i * batch_size:(i + 1) * batch_size])
            for i in range(n_batches)]


def test_an_iterable_of_batches_trains_like_the_arrays_and_a_generator_is_one_stream():
    a, b = _model(), _model()
    a.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    b.fit(_batches(5), epochs=2, verbose=0)  # a list: a new pass every epoch
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)

    def forever():
        while True:
            yield from _batches(5)

    history = _model().fit(forever(), epochs=3, steps_per_epoch=2, verbose=0)
    assert history.epoch == [0, 1, 2] and history.params["steps"] == 2
    with pytest.warns(UserWarning, match="ran out of data"):  # a finite generator: the second epoch gets nothing
        history = _model().fit(iter(_batches(5)), epochs=3, verbose=0)
    assert history.epoch == [0]
    weighted = _model().fit([(xb, yb, np.ones(len(xb))) for xb, yb in _batches(5)], verbose=0)
    assert weighted.history["loss"][0] == pytest.approx(_model().fit(_batches(5), verbose=0).history["loss"][0])


def test_validation_freq_initial_epoch_and_history():
    model = _model()
    history = model.fit(X, Y, epochs=5, validation_data=(X, Y), validation_freq=2, verbose=0, initial_epoch=1)
    assert history.epoch == [1, 2, 3, 4] and len(history.history["loss"]) == 4
    assert len(history.history["val_loss"]) == 2  # epochs 2 and 4 (1-based)
    history = model.fit(X, Y, epochs=3, validation_data=_batches(2), validation_freq=[1, 3], verbose=0)
    assert len(history.history["val_accuracy"]) == 2 and model.history is history


def test_evaluate_and_predict_forms():
    model = _model()
    loss, acc = model.evaluate(X, Y)
    logs = model.evaluate(X, Y, batch_size=7, return_dict=True)
    assert logs == pytest.approx({"loss": loss, "accuracy": acc}, rel=1e-6)
    assert model.evaluate(_batches(5), return_dict=True) == pytest.approx(logs, rel=1e-6)
    out = model.predict(X, batch_size=7)
    np.testing.assert_allclose(out, model(X).numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.predict(iter([xb for xb, _ in _batches(5)])), out, rtol=1e-6)
    np.testing.assert_allclose(model.predict(_batches(5), steps=2), out[:16], rtol=1e-6)


def test_progress_is_one_line_per_epoch_in_a_pipe_and_a_live_bar_on_a_terminal(capsys, monkeypatch):
    model = _model()
    for verbose in (1, 2):
        model.fit(X, Y, batch_size=8, epochs=2, validation_data=(X, Y), verbose=verbose)
        lines = capsys.readouterr().out
        assert "\r" not in lines
        assert [line.split(" - ")[0] for line in lines.splitlines()] == ["Epoch 1/2", "Epoch 2/2"]
        assert " - 5/5 - " in lines and " - loss: " in lines and " - val_accuracy: " in lines
    model.fit(X, Y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=1)
    assert "\r" in capsys.readouterr().out  # tqdm's live bar


def _unchanged(model, before):
    for w, ref in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, ref)
    assert model.optimizer.count == 0


def _wrong_shapes():
    yield X[:8], Y[:8]
    yield X[:8, :3], Y[:8]


@pytest.mark.parametrize("kwargs,match", [
    (dict(validation_split=1.5), r"validation_split must be a fraction in \[0, 1\) .*; got 1.5"),
    (dict(validation_split=0.999), "leaves 0 of the 40 examples for training and 40 for validation"),
    (dict(class_weight={3: 2.0}), r"class_weight names class 3, which does not exist; class ids are 0..2"),
    (dict(class_weight={0: -1.0}), r"class_weight\[0\] must be a finite number >= 0"),
    (dict(class_weight={0: 1.0}, sample_weight=W), "class_weight or sample_weight, not both"),
    (dict(sample_weight=W[:10]), r"sample_weight must hold one number per example, shape \(40,\)"),
    (dict(steps_per_epoch=0), "steps_per_epoch must be an integer >= 1; got 0"),
    (dict(validation_freq=0), "validation_freq must be an integer >= 1"),
    (dict(initial_epoch=3, epochs=2), "initial_epoch=3 is after the last epoch"),
    (dict(verbose=3), "verbose must be 0, 1, 2 or 'auto'; got 3"),
    (dict(validation_data=(X,)), r"validation_data must be \(x_val, y_val\)"),
    (dict(validation_data=(X[:, :3], Y)), r"x has shape \(40, 3\) but .* expects inputs of shape \(None, 4\)"),
    (dict(x=X[:, :3]), r"x has shape \(40, 3\) but .* expects inputs of shape \(None, 4\)"),
    (dict(y=None), "y is None; give the targets y, or x as an iterable"),
    (dict(x=_batches(2), y=None, validation_split=0.2), "validation_split needs array inputs"),
])
def test_bad_fit_arguments_are_refused_before_anything_changes(kwargs, match):
    model = _model()
    before = model.get_weights()
    args = {"x": X, "y": Y, "verbose": 0, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        model.fit(**args)
    _unchanged(model, before)


def test_bad_batches_name_the_batch_and_unweightable_losses_are_refused():
    model = _model()
    with pytest.raises(ValueError, match=r"batch 1 of the input iterable: x has shape \(8, 3\) but .* \(None, 4\)"):
        model.fit(_wrong_shapes(), verbose=0)
    with pytest.raises(ValueError, match="batch 0 of the input iterable must be a tuple"):
        model.fit(iter([X[:8]]), verbose=0)  # bare inputs: no targets
    with pytest.raises(ValueError, match=r"batch 0 of the input iterable has 8 inputs but 5 targets"):
        model.fit([(X[:8], Y[:5])], verbose=0)
    model = _model()
    model.compile("sgd", lambda out, y: F.cross_entropy(out, y))
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="need a loss that gives per-example values"):
        model.fit(X, Y, sample_weight=W, verbose=0)
    for w, ref in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(w, ref)
