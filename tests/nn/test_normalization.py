"""BatchNormalization, LayerNormalization, GroupNormalization against Keras 3 itself (forward in training and
inference, the moving statistics, weight order) and against finite differences (gradients through the batch
statistics, to second order)."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.gradcheck import gradcheck

os.environ.setdefault("KERAS_BACKEND", "jax")
jax.config.update("jax_enable_x64", True)  # Keras' float64 layers compute in float64 only with x64 on
keras = pytest.importorskip("keras")

R = np.random.default_rng(0)

CASES = [
    ("BatchNormalization", dict(), (5, 4, 4, 3)),
    ("BatchNormalization", dict(axis=1, momentum=0.9, epsilon=1e-5), (4, 3, 5)),
    ("BatchNormalization", dict(center=False), (6, 2)),
    ("LayerNormalization", dict(), (3, 4, 5)),
    ("LayerNormalization", dict(axis=(1, 2), scale=False), (3, 4, 5)),
    ("GroupNormalization", dict(groups=2), (2, 3, 3, 4)),
    ("GroupNormalization", dict(groups=4, axis=1), (2, 4, 5)),
    ("GroupNormalization", dict(groups=1), (2, 5, 6)),
]


def _pair(name, kwargs, shape):
    ours = getattr(nn, name)(dtype="float64", **kwargs)
    theirs = getattr(keras.layers, name)(dtype="float64", **kwargs)
    ours.build((None,) + shape[1:])
    theirs.build((None,) + shape[1:])
    weights = [R.standard_normal(w.shape) if "variance" not in n else R.uniform(0.5, 2.0, w.shape)
               for n, w in zip(ours.weight_names, ours.weights, strict=True)]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize("name, kwargs, shape", CASES, ids=lambda c: str(c))
def test_forward_and_moving_statistics_match_keras(name, kwargs, shape):
    ours, theirs = _pair(name, kwargs, shape)
    assert ours.weight_names == [w.path.split("/")[-1] for w in theirs.weights]  # Keras' weight order
    x = R.standard_normal(shape) * 2.0 + 0.5
    for training in (True, False, True):
        # Keras' float64 normalization layers carry float32 rounding (7e-8 off the exact formula even in
        # inference), so they are matched to 1e-6; the float64 formula itself is checked exactly below
        np.testing.assert_allclose(ours(x, training=training).data,
                                   np.asarray(theirs(x, training=training)), rtol=1e-6, atol=1e-6)
        for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # moving statistics updated alike


def _reference(name, kwargs, x, weights, training):
    """Keras' documented formula in float64 NumPy: (x - mean) / sqrt(var + eps) * gamma + beta."""
    eps = kwargs.get("epsilon", 1e-3)
    w = dict(weights)
    ndim = x.ndim
    if name == "BatchNormalization":
        axis = kwargs.get("axis", -1) % ndim
        shape = [1] * ndim
        shape[axis] = x.shape[axis]
        axes = tuple(i for i in range(ndim) if i != axis)
        mu, var = ((x.mean(axes), x.var(axes)) if training else (w["moving_mean"], w["moving_variance"]))
        y = (x - mu.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    elif name == "LayerNormalization":
        axes = tuple(a % ndim for a in np.atleast_1d(kwargs.get("axis", -1)))
        shape = [x.shape[i] if i in axes else 1 for i in range(ndim)]
        y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    else:
        axis, groups = kwargs.get("axis", -1) % ndim, kwargs["groups"]
        shape = [1] * ndim
        shape[axis] = x.shape[axis]
        xg = x.reshape(x.shape[:axis] + (groups, x.shape[axis] // groups) + x.shape[axis + 1:])
        axes = tuple(i for i in range(1, xg.ndim) if i != axis)
        y = ((xg - xg.mean(axes, keepdims=True)) / np.sqrt(xg.var(axes, keepdims=True) + eps)).reshape(x.shape)
    if "gamma" in w:
        y = y * w["gamma"].reshape(shape)
    return y + w["beta"].reshape(shape) if "beta" in w else y


@pytest.mark.parametrize("name, kwargs, shape", CASES, ids=lambda c: str(c))
def test_forward_is_kerass_formula_in_float64(name, kwargs, shape):
    ours, _ = _pair(name, kwargs, shape)
    x = R.standard_normal(shape) * 2.0 + 0.5
    for training in (False, True):
        weights = list(zip(ours.weight_names, ours.get_weights(), strict=True))
        np.testing.assert_allclose(ours(x, training=training).data, _reference(name, kwargs, x, weights, training),
                                   rtol=1e-12, atol=1e-13)


def test_a_frozen_batch_normalization_runs_in_inference_mode_as_in_keras():
    ours, theirs = _pair("BatchNormalization", {}, (4, 3))
    ours.trainable = theirs.trainable = False
    x = R.standard_normal((4, 3))
    before = ours.get_weights()
    np.testing.assert_allclose(ours(x, training=True).data, np.asarray(theirs(x, training=True)), rtol=1e-6)
    for a, b in zip(before, ours.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert ours.trainable_weights == [] and len(ours.non_trainable_weights) == 4


@pytest.mark.parametrize("name, kwargs, shape", CASES, ids=lambda c: str(c))
def test_gradients_through_the_statistics_pass_gradcheck(name, kwargs, shape):
    layer = getattr(nn, name)(dtype="float64", **kwargs)
    x = R.standard_normal(shape)
    layer.build((None,) + shape[1:])
    trainable = [w for w in layer.weights if w.requires_grad]
    report = gradcheck(lambda t: layer(t, training=True), [x], params=trainable)
    assert report.passed, report


def test_second_order_through_batch_statistics():
    layer = nn.BatchNormalization(dtype="float64")

    def gradient(t):  # d/dx sum(BN(x)^3), recorded so that gradcheck can differentiate it again
        with tg.enable_grad():  # gradcheck's finite differences run under no_grad: they need a fresh leaf
            leaf = t if t.requires_grad else tg.Tensor(t.data, requires_grad=True)
            return tg.grad((layer(leaf, training=True) ** 3).sum(), [leaf], create_graph=True)[0]

    report = gradcheck(gradient, [R.standard_normal((6, 3))])
    assert report.passed, report


def test_negative_control_statistics_treated_as_constants_are_caught():
    layer = nn.BatchNormalization(dtype="float64", center=False, scale=False)
    x = R.standard_normal((6, 3))

    def detached(t):  # the classic mistake: mu and s2 outside the graph
        mu = t.data.mean(0, keepdims=True)
        s2 = t.data.var(0, keepdims=True)
        return (t - mu) * ((s2 + layer.epsilon) ** -0.5)

    np.testing.assert_allclose(detached(tg.Tensor(x)).data, layer(x, training=True).data, rtol=1e-12)
    assert not gradcheck(detached, [x]).passed


def test_batch_normalization_in_a_residual_graph_trains():
    x = nn.Input((6, 6, 2))
    h = nn.BatchNormalization(name="bn")(nn.Conv2D(2, 3, padding="same")(x))
    h = nn.Add()([x, nn.ReLU()(h)])
    model = nn.Model(x, nn.Dense(2)(nn.Flatten()(h)))
    model.compile("adam", loss=tg.functional.cross_entropy)
    xs = R.standard_normal((32, 6, 6, 2)).astype(np.float32)
    ys = (xs[..., 0].mean(axis=(1, 2)) > 0).astype(np.int64)
    history = model.fit(xs, ys, epochs=6, batch_size=8, seed=0, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert [w.shape for w in model.get_layer("bn").weights] == [(2,)] * 4
    assert model.count_params() == 2 * 3 * 3 * 2 + 2 + 4 * 2 + 72 * 2 + 2


@pytest.mark.parametrize("bad, match", [
    (lambda: nn.BatchNormalization(momentum=1.5), r"momentum must be in \[0.0, 1.0\]; got 1.5"),
    (lambda: nn.BatchNormalization(axis=0).build((None, 3)), "axis=0 must be a feature axis"),
    (lambda: nn.GroupNormalization(groups=3).build((None, 4, 4)), "must split into groups=3 equal groups"),
    (lambda: nn.LayerNormalization(epsilon=-1.0), r"epsilon must be in \[0.0, inf\); got -1.0"),
])
def test_bad_arguments(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()


def test_batchnorm_training_on_an_empty_batch_is_refused_naming_the_layer_and_keeps_its_statistics():
    layer = nn.BatchNormalization(name="bn_empty")
    layer(np.ones((2, 3), np.float32), training=True)
    before = [w.copy() for w in layer.get_weights()]
    with pytest.raises(ValueError, match=r"bn_empty.*at least one value per channel.*\(0, 3\)"):
        layer(np.zeros((0, 3), np.float32), training=True)
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights(), strict=True))
    assert layer(np.zeros((0, 3), np.float32), training=False).shape == (0, 3)  # inference: the moving statistics
