"""Keras 3 (JAX backend) parity: same weights and inputs give the same outputs, shapes and parameter counts."""

import os

os.environ["KERAS_BACKEND"] = "jax"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another test imported keras with another backend
    pytest.skip("keras was imported with a non-JAX backend", allow_module_level=True)

from tinygrad_cnn import nn  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RNG = np.random.default_rng(0)

# (class name, kwargs, input shape without batch)
CASES = [
    ("Conv1D", dict(filters=4, kernel_size=3), (11, 3)),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="same", strides=2), (11, 3)),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2), (11, 3)),
    ("Conv1D", dict(filters=4, kernel_size=2, groups=2, padding="same"), (9, 4)),
    ("Conv2D", dict(filters=5, kernel_size=(3, 3)), (9, 8, 3)),
    ("Conv2D", dict(filters=5, kernel_size=3, strides=2), (9, 8, 3)),
    ("Conv2D", dict(filters=5, kernel_size=(3, 2), padding="same", strides=(2, 1)), (9, 8, 3)),
    ("Conv2D", dict(filters=5, kernel_size=3, padding="same", dilation_rate=2, activation="relu"), (9, 8, 3)),
    ("Conv2D", dict(filters=6, kernel_size=3, groups=3, use_bias=False), (7, 7, 3)),
    ("Conv2D", dict(filters=4, kernel_size=3, padding="same", data_format="channels_first"), (3, 7, 6)),
    ("Conv3D", dict(filters=3, kernel_size=2, padding="same", strides=2), (5, 4, 6, 2)),
    ("Conv3D", dict(filters=3, kernel_size=(2, 3, 2)), (5, 4, 6, 2)),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2), (8, 7, 3)),
    ("DepthwiseConv2D", dict(kernel_size=3, padding="same", strides=2), (8, 7, 3)),
    ("DepthwiseConv2D", dict(kernel_size=3, dilation_rate=2, depth_multiplier=3, activation="relu"), (8, 7, 2)),
    ("Conv1DTranspose", dict(filters=4, kernel_size=3, strides=2), (6, 3)),
    ("Conv1DTranspose", dict(filters=4, kernel_size=3, strides=2, padding="same"), (6, 3)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2), (5, 4, 3)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=(3, 2), strides=2, padding="same"), (5, 4, 3)),
    ("Conv2DTranspose", dict(filters=4, kernel_size=3, strides=2, output_padding=1), (5, 4, 3)),
    ("MaxPooling1D", dict(pool_size=2), (9, 3)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (9, 3)),
    ("MaxPooling2D", dict(), (7, 6, 3)),
    ("MaxPooling2D", dict(pool_size=(3, 2), strides=(2, 1), padding="same"), (7, 6, 3)),
    ("AveragePooling1D", dict(pool_size=3, strides=2, padding="same"), (9, 3)),
    ("AveragePooling1D", dict(pool_size=2), (9, 3)),
    ("AveragePooling2D", dict(pool_size=2), (7, 6, 3)),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (7, 6, 3)),
    ("AveragePooling2D", dict(pool_size=2, data_format="channels_first"), (3, 7, 6)),
    ("GlobalMaxPooling2D", dict(), (5, 4, 3)),
    ("GlobalMaxPooling2D", dict(keepdims=True), (5, 4, 3)),
    ("GlobalAveragePooling2D", dict(), (5, 4, 3)),
    ("GlobalAveragePooling2D", dict(data_format="channels_first"), (3, 5, 4)),
    ("Dense", dict(units=7, activation="tanh"), (5,)),
    ("Dense", dict(units=7, activation="softmax"), (4, 5)),
    ("Flatten", dict(), (3, 4, 2)),
    ("Flatten", dict(data_format="channels_first"), (3, 4, 2)),
    ("Activation", dict(activation="softplus"), (6,)),
    ("Activation", dict(activation="sigmoid"), (6,)),
    ("Activation", dict(activation="leaky_relu"), (6,)),
    ("ReLU", dict(), (6,)),
    ("ReLU", dict(max_value=0.5, negative_slope=0.1, threshold=0.2), (6,)),
    ("ReLU", dict(threshold=0.3), (6,)),
    ("Dropout", dict(rate=0.5), (6,)),
]


def _init_args(name):
    import inspect
    return inspect.signature(getattr(keras.layers, name).__init__).parameters


def _ids(case):
    name, kw, shape = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_layer_matches_keras(case):
    name, kwargs, shape = case
    x = RNG.standard_normal((2, *shape)).astype(np.float32)
    fast = {k: "zeros" for k in ("kernel_initializer", "depthwise_initializer") if k in _init_args(name)}
    kl = getattr(keras.layers, name)(**kwargs, **fast)  # zeros: no per-shape compile of a random initializer
    kl.build((None, *shape))
    ours = getattr(nn, name)(**kwargs)
    ours.build((None, *shape))
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in kl.get_weights()]
    assert ours.count_params() == kl.count_params()
    weights = [RNG.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()]
    kl.set_weights(weights)
    ours.set_weights(weights)
    expected = np.asarray(kl(x))
    got = ours(x).numpy()
    assert got.shape == expected.shape
    assert ours.compute_output_shape((None, *shape)) == tuple(kl.compute_output_shape((None, *shape)))
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


def test_sequential_weights_and_outputs_match_keras(tmp_path):
    """A small CNN: Keras' get_weights() order sets our weights unchanged (in memory and from an .npz)."""
    def layers(lib, **init):
        return [lib.Conv2D(4, 3, padding="same", activation="relu", **init), lib.MaxPooling2D(),
                lib.Conv2D(6, 3, activation="relu", **init), lib.Flatten(), lib.Dense(10, activation="softmax", **init)]

    km = keras.Sequential([keras.Input((8, 8, 1)), *layers(keras.layers, kernel_initializer="zeros")])
    ours = nn.Sequential([nn.Input((8, 8, 1)), *layers(nn)])
    assert ours.output_shape == km.output_shape
    assert ours.count_params() == km.count_params()
    x = RNG.standard_normal((3, 8, 8, 1)).astype(np.float32)
    km.set_weights([RNG.standard_normal(w.shape).astype(np.float32) * 0.3 for w in km.get_weights()])
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours(x).numpy(), np.asarray(km(x)), rtol=1e-5, atol=1e-6)
    path = tmp_path / "keras_order.npz"
    np.savez(path, *km.get_weights())
    fresh = nn.Sequential([nn.Input((8, 8, 1)), *layers(nn)])
    fresh.load_weights(path)
    np.testing.assert_allclose(fresh(x).numpy(), np.asarray(km(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal"])
def test_initializer_statistics_match_keras(name):
    """Same distribution (Keras' fan rule for a conv kernel): std and range agree within sampling error."""
    shape = (3, 3, 16, 32)
    ours = nn.initializers.get(name)(shape)
    theirs = np.asarray(keras.initializers.get(name)(shape))
    assert ours.dtype == np.float32 and ours.shape == shape
    assert abs(ours.std() / theirs.std() - 1) < 0.05
    assert abs(np.abs(ours).max() / np.abs(theirs).max() - 1) < 0.1
    assert abs(ours.mean()) < 0.05 * theirs.std() + 1e-3


@pytest.mark.parametrize("make", [
    lambda lib: lib.MaxNorm(1.5), lambda lib: lib.MaxNorm(1.0, axis=[0, 1, 2]), lambda lib: lib.NonNeg(),
    lambda lib: lib.UnitNorm(), lambda lib: lib.MinMaxNorm(0.5, 1.0, rate=0.7)])
def test_constraints_match_keras(make):
    w = RNG.standard_normal((3, 3, 2, 4)).astype(np.float32)
    np.testing.assert_allclose(make(nn.constraints)(w), np.asarray(make(keras.constraints)(w)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda lib: lib.L1(0.03), lambda lib: lib.L2(0.02),
                                  lambda lib: lib.L1L2(0.01, 0.02)])
def test_regularizers_match_keras(make):
    w = RNG.standard_normal((4, 5)).astype(np.float32)
    assert float(make(nn.regularizers)(w).item()) == pytest.approx(
        float(make(keras.regularizers)(w)), rel=1e-5)
