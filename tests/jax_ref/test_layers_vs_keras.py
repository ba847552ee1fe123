"""The twin's layers are written from Keras' specification, so they are checked against Keras itself (JAX backend):
ReLU values and gradients at its kinks, Dropout masks bit for bit for the same key, Flatten and global pooling in
both data formats; and the twin covers the engine's one layer registry."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another test imported keras with another backend
    pytest.skip("keras was imported with a non-JAX backend", allow_module_level=True)

from jax_ref import _layers  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402


def _twin(layer):
    return _layers.build(type(layer).__name__, layer.get_config())


def test_the_twin_covers_the_engine_registry(monkeypatch):
    """The engine's one registry (``nn.LAYER_CLASSES``): the twin has a builder for each class a model runs
    (InputLayer is only the declared input shape) and none for a class the engine lacks; a missing one is named,
    with the reason for one the twin cannot build yet."""
    assert set(_layers.BUILDERS) == set(nn.LAYER_CLASSES) - {"InputLayer"} - set(_layers.NOT_YET)
    monkeypatch.setitem(_layers.NOT_YET, "Later", "it waits for something")
    with pytest.raises(NotImplementedError, match="'bn' of class Later has no JAX twin yet: it waits for something"):
        _layers.build("Later", {"name": "bn"})
    with pytest.raises(NotImplementedError, match="layer 'x' of class Squash has no JAX twin"):
        _layers.build("Squash", {"name": "x"})


RELU_CONFIGS = [dict(), dict(max_value=6.0), dict(max_value=4.0, negative_slope=0.2), dict(negative_slope=0.1),
                dict(threshold=0.5), dict(max_value=6.0, negative_slope=0.1, threshold=0.5)]


@pytest.mark.parametrize("config", RELU_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_relu_matches_keras_at_its_kinks(config):
    """Values and gradients at -1, 0, the threshold, max_value and between; the one documented difference is
    Keras' relu6 shortcut (max_value=6, threshold 0), whose gradient at 6 is 0 where jnp.minimum's tie gives 0.5."""
    t, top = config.get("threshold", 0.0), config.get("max_value", 2.0)
    x = jnp.asarray([-1.0, 0.0, t, t + 0.3, top, top + 1.0], jnp.float32)
    fn = _twin(nn.ReLU(**config))
    ours = lambda v: fn({}, v, False, None)  # noqa: E731
    theirs = lambda v: keras.activations.relu(v, **config)  # noqa: E731
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(theirs(x)))
    g_ours = np.array(jax.vmap(jax.grad(ours))(x))
    g_theirs = np.asarray(jax.vmap(jax.grad(theirs))(x))
    if config.get("max_value") == 6.0 and not t:
        assert (g_ours[4], g_theirs[4]) == (0.5, 0.0)
        g_ours[4] = g_theirs[4]
    np.testing.assert_array_equal(g_ours, g_theirs)


@pytest.mark.parametrize("noise_shape", [None, (None, 1, 5)])
def test_dropout_is_keras_dropout_for_the_same_key(noise_shape):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 5)), jnp.float32)
    key = jax.random.key(7)
    fn = _twin(nn.Dropout(0.4, noise_shape=noise_shape))
    ours = np.asarray(fn({}, x, True, key))
    np.testing.assert_array_equal(ours, np.asarray(keras.random.dropout(x, 0.4, noise_shape=noise_shape, seed=key)))
    assert not np.array_equal(ours, np.asarray(fn({}, x, True, jax.random.key(8))))  # the key decides the mask
    np.testing.assert_array_equal(np.asarray(fn({}, x, False, None)), np.asarray(x))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_flatten_and_global_pooling_match_keras(data_format):
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype(np.float32)
    pairs = [(nn.Flatten(data_format=data_format), keras.layers.Flatten(data_format=data_format)),
             (nn.GlobalAveragePooling2D(data_format=data_format, keepdims=True),
              keras.layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True)),
             (nn.GlobalMaxPooling2D(data_format=data_format), keras.layers.GlobalMaxPooling2D(data_format=data_format))]
    for engine_layer, keras_layer in pairs:
        np.testing.assert_allclose(np.asarray(_twin(engine_layer)({}, jnp.asarray(x), False, None)),
                                   np.asarray(keras_layer(x)), rtol=1e-6, err_msg=type(engine_layer).__name__)
