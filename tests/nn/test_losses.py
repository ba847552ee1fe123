"""Keras' loss classes and names (``tinygrad_cnn.nn.losses``) against Keras 3 itself (forward values of float64
inputs for every class, configuration, reduction and target-shape rule; to 1e-6, as Keras' ``ops.mean`` computes in
float32 even for float64 inputs), the one registry of names (``LOSSES``) as
``compile`` and the JAX twin resolve it, configs, label-kind errors, and the README model trained with a Keras
loss name."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import jax_ref
import jax_ref.losses as J
from tinygrad_cnn import data, nn, optim
from tinygrad_cnn.nn import losses

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

R = np.random.default_rng(5)
B, C = 6, 4


def probabilities(shape):
    return R.dirichlet(np.ones(shape[-1]), shape[:-1]) if len(shape) > 1 else R.uniform(0.02, 0.98, shape)


# name -> list of (config, y_true, y_pred) covering Keras' target-shape rules and every flag
ONE_HOT = np.eye(C)[R.integers(0, C, B)]
IDS = R.integers(0, C, B)
BINARY = (R.random((B, 3)) < 0.5).astype(float)
CASES = {
    "BinaryCrossentropy": [
        ({}, BINARY, R.uniform(0.0, 1.0, (B, 3))),
        ({"from_logits": True, "label_smoothing": 0.2}, BINARY, R.standard_normal((B, 3)) * 5),
        ({"label_smoothing": 0.1}, R.random(B), R.uniform(0.02, 0.98, (B, 1))),  # (B,) targets, (B, 1) outputs
        ({"from_logits": True}, R.random((B, 1)), R.standard_normal(B)),
    ],
    "CategoricalCrossentropy": [
        ({}, ONE_HOT, probabilities((B, C))),
        ({"from_logits": True, "label_smoothing": 0.1}, R.dirichlet(np.ones(C), B), R.standard_normal((B, C)) * 3),
        ({"label_smoothing": 0.3}, ONE_HOT.astype(int), R.uniform(0.0, 2.0, (B, C))),  # renormalised rows
    ],
    "SparseCategoricalCrossentropy": [
        ({}, IDS, probabilities((B, C))),
        ({"from_logits": True}, IDS[:, None], R.standard_normal((B, C)) * 3),  # (B, 1) labels
        ({"from_logits": True, "ignore_class": 2}, IDS, R.standard_normal((B, C))),
        ({"ignore_class": -1}, np.where(IDS == 0, -1, IDS).astype(float), probabilities((B, C))),  # float ids
    ],
    "MeanSquaredError": [({}, R.standard_normal((B, 3)), R.standard_normal((B, 3))),
                         ({}, R.standard_normal(B), R.standard_normal((B, 1)))],
    "MeanAbsoluteError": [({}, R.standard_normal((B, 3)), R.standard_normal((B, 3))),
                          ({}, R.standard_normal((B, 1, 1)), R.standard_normal((B, 1)))],
    "Huber": [({}, R.standard_normal((B, 3)) * 2, R.standard_normal((B, 3))),
              ({"delta": 0.3}, R.standard_normal((B, 2)), R.standard_normal((B, 2)))],
    "KLDivergence": [({}, probabilities((B, C)), probabilities((B, C))),
                     ({}, ONE_HOT, np.where(ONE_HOT > 0, 0.0, 0.4))],  # zeros on both sides: clipped
    "Hinge": [({}, BINARY, R.standard_normal((B, 3))), ({}, 2 * BINARY - 1, R.standard_normal((B, 3))),
              ({}, R.uniform(-1, 1, (B, 3)), R.standard_normal((B, 3)))],  # not binary: used as given
}
REDUCTIONS = ["sum_over_batch_size", "sum", "none", None, "mean", "mean_with_sample_weight"]


@pytest.mark.parametrize("cls", sorted(CASES))
def test_classes_match_keras(cls):
    compared = 0
    for config, y_true, y_pred in CASES[cls]:
        for reduction in REDUCTIONS:
            ours = getattr(losses, cls)(reduction=reduction, **config)
            ref = getattr(keras.losses, cls)(reduction=reduction, dtype="float64", **config)
            np.testing.assert_allclose(ours(y_true, y_pred).data, np.asarray(ref(y_true, y_pred)), rtol=1e-6,
                                       atol=1e-7, err_msg=f"{cls}({config}, reduction={reduction!r})")
            compared += 1
    assert compared == len(CASES[cls]) * len(REDUCTIONS)


def _first_case(cls_name):
    return CASES[cls_name][0]


@pytest.mark.parametrize("name", sorted(set(losses.LOSSES) - {"cross_entropy"}))
def test_every_registry_name_has_keras_meaning(name):
    """A registry name is Keras' name for the same loss: the same values as keras.losses.get(name)."""
    ours = losses.get(name)
    _, y_true, y_pred = _first_case(type(ours).__name__)
    ref = keras.losses.get(name)
    values = np.asarray(ref(y_true, y_pred))
    np.testing.assert_allclose(ours(y_true, y_pred).data, values.mean() if values.ndim else values, rtol=1e-6)
    assert losses.get(type(ours).__name__).get_config() == ours.get_config()  # the class name resolves too


def test_cross_entropy_name_is_the_functional_loss_on_logits():
    ours = losses.get("cross_entropy")
    x = R.standard_normal((B, C))
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")
    for labels in (IDS, np.eye(C)[IDS]):  # either label kind
        np.testing.assert_allclose(ours(labels, x).data, np.asarray(ref(IDS, x)), rtol=1e-6)


@pytest.mark.parametrize("cls", sorted(CASES))
def test_configs_round_trip_and_accept_keras_configs(cls):
    config = dict(CASES[cls][-1][0], reduction="sum", name="mine")
    ours = getattr(losses, cls)(**config)
    assert type(ours).from_config(ours.get_config()).get_config() == ours.get_config()
    assert losses.get(losses.serialize(ours)).get_config() == ours.get_config()
    keras_config = getattr(keras.losses, cls)(**config).get_config()
    keras_config.pop("axis", None)
    assert set(keras_config) <= set(ours.get_config())
    assert {k: ours.get_config()[k] for k in keras_config} == keras_config
    missing = set(ours.get_config()) - set(keras_config)
    assert missing == ({"delta"} if cls == "Huber" else set())  # Keras' Huber config drops delta; ours keeps it
    _, y_true, y_pred = CASES[cls][-1]
    rebuilt = getattr(losses, cls).from_config({**keras_config, **{k: ours.get_config()[k] for k in missing}})
    np.testing.assert_allclose(rebuilt(y_true, y_pred).data, ours(y_true, y_pred).data, rtol=0)


def test_label_kind_mismatches_raise_clearly():
    p = probabilities((B, C))
    with pytest.raises(ValueError, match=r"categorical_crossentropy: labels have shape \(6,\) but categorical "
                                         r"cross-entropy needs one-hot rows .*use 'sparse_categorical_crossentropy'"):
        losses.get("categorical_crossentropy")(IDS, p)
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy: labels have shape \(6, 4\) .*those are "
                                         r"one-hot rows; use 'categorical_crossentropy'"):
        losses.get("sparse_categorical_crossentropy")(ONE_HOT, p)
    with pytest.raises(ValueError, match=r"labels must be integer class ids; got dtype float64"):
        losses.get("sparse_categorical_crossentropy")(IDS + 0.5, p)
    with pytest.raises(ValueError, match=r"from_logits=False expects logits to be probabilities .*look like logits"):
        losses.get("sparse_categorical_crossentropy")(IDS, R.standard_normal((B, C)) - 3)
    with pytest.raises(ValueError, match=r"Huber: reduction='avg' is not one of 'sum_over_batch_size'"):
        losses.Huber(reduction="avg")
    with pytest.raises(ValueError, match=r"losses.get: identifier='hubber' is not one of .*did you mean 'huber'"):
        losses.get("hubber")
    with pytest.raises(TypeError, match=r"compile: loss must be a loss name, a config dict"):
        nn.Sequential([nn.Input((3,)), nn.Dense(2)]).compile("sgd", loss=3)


# -- compile and the twin resolve the same registry ---------------------------------------------------------------
def _softmax_model():
    nn.set_random_seed(3)
    model = nn.Sequential([nn.Input((8, 8, 1)), nn.Flatten(), nn.Dense(C, activation="softmax")])
    model.build((None, 8, 8, 1))
    return model


def _targets(name, y):
    kind = losses.get(name).targets
    return y if kind in ("sparse", "any") else np.eye(C)[y]


@pytest.mark.parametrize("loss", [name for name in losses.LOSSES] + [losses.Huber(delta=0.05),
                                                                      losses.BinaryCrossentropy(label_smoothing=0.1)])
def test_compile_and_compare_gradients_take_every_registry_name(loss):
    model = _softmax_model()
    x, y = data.load_digits()[0][:12], data.load_digits()[1][:12] % C
    y = _targets(loss, y)
    report = jax_ref.compare_gradients(model, x, y, loss=loss)
    assert report.passed, str(report)
    model.compile("sgd", loss)
    ours = model.evaluate(x, y, batch_size=12)
    np.testing.assert_allclose(ours, losses.get(loss)(y, model.predict(x)).item(), rtol=1e-6)


def test_the_twin_has_no_name_list_of_its_own():
    with pytest.raises(ValueError, match=r"jax_ref: loss='hinj' is not one of 'cross_entropy', .*'hinge'"):
        J.loss_function("hinj")
    assert not [k for k, v in vars(J).items() if isinstance(v, dict) and "mse" in v]


def test_parity_trains_with_a_keras_name_on_both_sides():
    x, y = data.load_digits()[0][:64], data.load_digits()[1][:64] % C
    run = jax_ref.parity(_softmax_model(), x, np.eye(C)[y], optimizer="sgd", learning_rate=0.5, steps=4,
                         batch_size=16, loss="binary_crossentropy", dtype=np.float64)
    assert run.max_rel_loss_deviation < 1e-9 and run.engine_losses[-1] < run.engine_losses[0]


# -- the README model with a Keras loss name ---------------------------------------------------------------------
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _readme_model(softmax: bool):
    """The README's model (a Dense(10) of logits), or the same ending in a softmax."""
    assert 'nn.Flatten(), nn.Dense(10),' in README
    nn.set_random_seed(0)
    return nn.Sequential([
        nn.Input((8, 8, 1)),
        nn.Conv2D(8, 3, padding="same", activation="relu"), nn.MaxPooling2D(2),
        nn.Flatten(), nn.Dense(10, activation="softmax" if softmax else None),
    ])


def _fit_losses(model, loss, y):
    x_train = data.load_digits()[0][:256]
    model.compile(optimizer=optim.Adam(model.parameters(), learning_rate=1e-2), loss=loss)
    return model.fit(x_train, y, batch_size=32, epochs=3, seed=0, verbose=0).history["loss"]


def test_readme_model_trains_with_keras_loss_names():
    y = data.load_digits()[1][:256]
    assert re.search(r"loss=nn\.losses\.SparseCategoricalCrossentropy\(from_logits=True\)", README)
    for model, loss, labels in [
        (_readme_model(False), losses.SparseCategoricalCrossentropy(from_logits=True), y),  # as the README says
        (_readme_model(True), "sparse_categorical_crossentropy", y),  # the name on a softmax output
        (_readme_model(True), "categorical_crossentropy", np.eye(10, dtype=np.float32)[y]),
    ]:
        history = _fit_losses(model, loss, labels)
        assert history[-1] < 0.75 * history[0], (loss, history)  # chance level is log 10 = 2.3


def test_readme_model_with_a_mismatched_keras_name_raises_instead_of_not_training():
    y = data.load_digits()[1][:256]
    with pytest.raises(ValueError, match=r"from_logits=False expects logits to be probabilities .*pass "
                                         r"from_logits=True"):
        _fit_losses(_readme_model(False), "sparse_categorical_crossentropy", y)  # logits into a probability loss
    with pytest.raises(ValueError, match=r"use 'sparse_categorical_crossentropy'"):
        _fit_losses(_readme_model(True), "categorical_crossentropy", y)  # class ids into the one-hot loss
