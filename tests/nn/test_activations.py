"""Activations by Keras 3 name: same values as keras.activations (JAX backend), layers that use them serialize and
rebuild, their gradients through jax_ref.from_engine match, bad arguments are named."""

import os

os.environ["KERAS_BACKEND"] = "jax"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another test imported keras with another backend
    pytest.skip("keras was imported with a non-JAX backend", allow_module_level=True)

import jax_ref  # noqa: E402
import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import functional as F  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402
from tinygrad_cnn.nn import activations  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Keras 3's names; each is looked up in both registries by that name.
NAMES = ["relu", "softplus", "sigmoid", "tanh", "softmax", "linear", "leaky_relu", "gelu", "silu", "swish", "elu",
         "selu", "celu", "softsign", "hard_sigmoid", "hard_silu", "hard_swish", "mish", "relu6", "log_sigmoid",
         "log_softmax", "exponential"]
# Every kink and tie point (0, +-3, 6) and both tails, plus random values.
X = np.concatenate([[-1000.0, -30.0, -6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0, 30.0],
                    np.random.default_rng(0).standard_normal(14) * 3]).reshape(4, 6)


@pytest.mark.parametrize("name", NAMES)
def test_values_match_keras_activations(name):
    ours = activations.get(name)(tg.Tensor(X)).numpy()
    theirs = np.asarray(keras.activations.get(name)(X))
    tol = 1e-12 if theirs.dtype == np.float64 else 1e-6  # keras' tanh computes in float32 even for float64 input
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=1e-300)


@pytest.mark.parametrize("name, default", [("gelu", {"approximate": False}), ("elu", {"alpha": 1.0}),
                                           ("celu", {"alpha": 1.0}), ("leaky_relu", {"negative_slope": 0.2})])
def test_defaults_are_keras_defaults(name, default):
    import inspect
    for fn in (getattr(activations, name), getattr(keras.activations, name)):
        params = inspect.signature(fn).parameters
        assert {k: params[k].default for k in default} == default


def test_hard_sigmoid_is_keras_3s_not_keras_2s():
    """Keras 3 (and jax.nn, PyTorch): relu6(x + 3) / 6; Keras 2 used clip(0.2 x + 0.5, 0, 1): they differ at 1."""
    y = F.hard_sigmoid(tg.Tensor(np.array([-3.0, 1.0, 3.0]))).numpy()
    np.testing.assert_allclose(y, [0.0, 4.0 / 6.0, 1.0], rtol=1e-15)
    assert y[1] != np.clip(0.2 * 1.0 + 0.5, 0, 1)


@pytest.mark.parametrize("alias, name", [("swish", "silu"), ("hard_swish", "hard_silu")])
def test_aliases_serialize_as_keras_3_does(alias, name):
    assert activations.serialize(activations.get(alias)) == name
    assert keras.activations.serialize(keras.activations.get(alias)) == name


@pytest.mark.parametrize("name", ["gelu", "hard_silu", "mish", "selu", "log_sigmoid", "swish"])
def test_dense_with_activation_serializes_and_rebuilds(name):
    model = nn.Sequential([nn.Input((3,)), nn.Dense(4, activation=name)])
    config = model.layers[-1].get_config()
    assert config["activation"] == activations.serialize(activations.get(name))
    rebuilt = nn.Dense.from_config(config)
    assert rebuilt.activation is activations.get(name)


@pytest.mark.parametrize("layers", [
    [nn.Dense(5, activation="gelu"), nn.Dense(3, activation="mish")],
    [nn.Dense(5, activation="selu"), nn.Dense(4, activation="hard_silu"), nn.Dense(3, activation="log_sigmoid")],
], ids=["gelu-mish", "selu-hard_silu-log_sigmoid"])
def test_dense_model_gradients_match_the_twin(layers):
    model = nn.Sequential([nn.Input((4,)), *layers])
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    jax_ref.assert_gradients_match(model, x, np.array([0, 1, 2, 0, 1, 2]))


def test_conv_model_gradients_match_the_twin():
    model = nn.Sequential([nn.Input((6, 6, 2)), nn.Conv2D(3, 3, activation="silu"),
                           nn.Conv2D(3, 3, activation="elu"), nn.Flatten(), nn.Dense(2, activation="softsign")])
    x = np.random.default_rng(2).standard_normal((2, 6, 6, 2)).astype(np.float32)
    jax_ref.assert_gradients_match(model, x, np.array([0, 1]))


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: F.celu(np.zeros(2), 0.0), ValueError, r"celu: alpha must be > 0"),
    (lambda: F.celu(np.zeros(2), -1.0), ValueError, r"celu: alpha must be in"),
    (lambda: F.elu(np.zeros(2), "1"), TypeError, r"elu: alpha must be a number"),
    (lambda: F.gelu(np.zeros(2), "yes"), TypeError, r"gelu: approximate must be True or False"),
    (lambda: F.prelu(np.zeros((2, 3)), np.ones(4)), ValueError, r"prelu: alpha with shape \(4,\) must broadcast"),
    (lambda: F.prelu(np.zeros(3), np.ones((2, 3))), ValueError, r"without growing x"),
    (lambda: F.silu(np.zeros(2, np.int64)), TypeError, r"silu: x must have a floating dtype"),
    (lambda: tg.Tensor(np.zeros(2)).round(1.5), TypeError, r"round: decimals must be an int"),
    (lambda: nn.Dense(2, activation="gleu"), ValueError, r"did you mean 'gelu'"),
])
def test_bad_arguments_are_named(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
