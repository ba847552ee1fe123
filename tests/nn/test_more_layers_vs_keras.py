"""The rest of Keras' CNN layer set against Keras 3 itself (JAX backend): for each configuration the same weights
give the same weight shapes, parameter count, output shape, output and input gradient (a random cotangent), and
the layer round-trips through its config and runs the same inside a Sequential and a graph model."""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another test imported keras with another backend
    pytest.skip("keras was imported with a non-JAX backend", allow_module_level=True)

import tinygrad_cnn  # noqa: E402
from tinygrad_cnn import functional as F  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

WORST = {"out": 0.0, "grad": 0.0, "cases": 0}
LONG = os.environ.get("TINYGRAD_LONG_TESTS") == "1"  # every configuration; CI runs one or two per class


def same(name, shapes, **kwargs):
    """The engine's and Keras' layer of the same class name and arguments."""
    return (name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items()), lambda: getattr(nn, name)(**kwargs),
            lambda: getattr(keras.layers, name)(**kwargs), shapes)


def long(case):
    return pytest.param(case, id=case[0], marks=pytest.mark.skipif(not LONG, reason="TINYGRAD_LONG_TESTS=1 only"))


def keras_seq(*layers):
    return lambda: keras.Sequential([layer() for layer in layers])


CASES = [
    long(same("Maximum", [(4, 3), (4, 3)])), same("Maximum", [(3, 2, 2), (3, 2, 2), (3, 2, 2)]),
    same("Minimum", [(4, 3), (4, 3)]),
    same("Reshape", [(6, 4)], target_shape=(-1, 4, 2)), long(same("Reshape", [(2, 3, 4)], target_shape=(24,))),
    long(same("Permute", [(3, 5)], dims=(2, 1))), same("Permute", [(2, 3, 4)], dims=(3, 1, 2)),
    same("RepeatVector", [(5,)], n=3),
    long(same("ZeroPadding1D", [(5, 2)], padding=2)), same("ZeroPadding1D", [(5, 2)], padding=(1, 3)),
    same("ZeroPadding2D", [(4, 3, 2)], padding=((1, 0), (2, 1))),
    long(same("ZeroPadding2D", [(2, 4, 3)], padding=1, data_format="channels_first")),
    same("ZeroPadding3D", [(3, 2, 2, 2)], padding=(1, 0, 2)),
    same("Cropping1D", [(7, 2)], cropping=(1, 2)), same("Cropping2D", [(6, 5, 2)], cropping=((1, 0), (2, 1))),
    long(same("Cropping2D", [(2, 5, 4)], cropping=1, data_format="channels_first")),
    same("Cropping3D", [(4, 3, 4, 2)], cropping=((1, 0), (0, 1), (1, 1))),
    same("UpSampling1D", [(4, 3)], size=3), long(same("UpSampling2D", [(3, 4, 2)], size=(2, 3))),
    long(same("UpSampling2D", [(3, 4, 2)], size=2, interpolation="bilinear")),
    same("UpSampling2D", [(2, 3, 4)], size=(3, 2), interpolation="bilinear", data_format="channels_first"),
    same("UpSampling3D", [(2, 3, 2, 2)], size=(2, 1, 2)),
    long(same("Rescaling", [(4, 3)], scale=1 / 255, offset=-0.5)),
    same("Rescaling", [(2, 2, 3)], scale=[0.5, 2.0, 3.0]),
    ("Lambda-leaky_relu", lambda: nn.Lambda(F.leaky_relu, arguments={"negative_slope": 0.1}),
     lambda: keras.layers.Lambda(lambda x: keras.ops.leaky_relu(x, 0.1)), [(4, 3)]),
    long(same("MaxPooling3D", [(4, 4, 4, 2)], pool_size=2)),
    same("MaxPooling3D", [(5, 4, 5, 2)], pool_size=(2, 3, 2), strides=(1, 2, 1), padding="same"),
    long(same("AveragePooling3D", [(5, 4, 5, 2)], pool_size=2, padding="same")),
    same("AveragePooling3D", [(2, 4, 4, 4)], pool_size=(2, 1, 2), data_format="channels_first"),
    long(same("GlobalMaxPooling1D", [(5, 3)])), same("GlobalMaxPooling1D", [(5, 3)], keepdims=True),
    same("GlobalAveragePooling1D", [(5, 3)]), same("GlobalAveragePooling3D", [(3, 2, 4, 3)]),
    same("GlobalMaxPooling3D", [(3, 3, 2, 4)], data_format="channels_first"),
    long(same("Conv3DTranspose", [(3, 2, 3, 2)], filters=3, kernel_size=2, strides=2)),
    same("Conv3DTranspose", [(3, 2, 3, 2)], filters=2, kernel_size=(2, 3, 2), strides=(1, 2, 1), padding="same"),
    same("SeparableConv1D", [(9, 3)], filters=4, kernel_size=3, depth_multiplier=2, padding="same", strides=2),
    long(same("SeparableConv2D", [(8, 7, 3)], filters=5, kernel_size=3, dilation_rate=2, activation="relu")),
    same("SeparableConv2D", [(3, 7, 6)], filters=4, kernel_size=(3, 2), strides=2, use_bias=False,
         data_format="channels_first"),
    long(same("DepthwiseConv1D", [(9, 3)], kernel_size=3, depth_multiplier=2)),
    same("DepthwiseConv1D", [(3, 9)], kernel_size=3, strides=2, padding="same", data_format="channels_first"),
    long(same("SpatialDropout1D", [(5, 3)], rate=0.5)), same("SpatialDropout2D", [(3, 3, 2)], rate=0.5),
    long(same("SpatialDropout3D", [(2, 2, 2, 2)], rate=0.5)), same("GaussianNoise", [(4,)], stddev=0.3),
    same("GaussianDropout", [(4,)], rate=0.3),
    long(same("LeakyReLU", [(6,)])), same("LeakyReLU", [(6,)], negative_slope=0.1),
    long(same("PReLU", [(4, 3)])), same("PReLU", [(3, 4, 2)], shared_axes=[1, 2]),
    long(same("ELU", [(6,)])), same("ELU", [(6,)], alpha=0.5),
    long(same("Softmax", [(3, 4)])), long(same("Softmax", [(3, 4)], axis=1)), same("Softmax", [(3, 4, 2)], axis=[1, 2]),
    # explicit padding (PyTorch's): the same as Keras' zero padding then a valid conv, or a valid transposed conv
    # then cropping
    ("Conv2D-padding=((1,2),(0,1))", lambda: nn.Conv2D(4, 3, padding=((1, 2), (0, 1))),
     keras_seq(lambda: keras.layers.ZeroPadding2D(((1, 2), (0, 1))), lambda: keras.layers.Conv2D(4, 3)),
     [(6, 5, 2)]),
    ("Conv1D-padding=2", lambda: nn.Conv1D(3, 3, padding=2, strides=2),
     keras_seq(lambda: keras.layers.ZeroPadding1D(2), lambda: keras.layers.Conv1D(3, 3, strides=2)), [(7, 2)]),
    ("Conv2DTranspose-padding=(1,(0,1))", lambda: nn.Conv2DTranspose(4, 3, strides=2, padding=(1, (0, 1))),
     keras_seq(lambda: keras.layers.Conv2DTranspose(4, 3, strides=2),
               lambda: keras.layers.Cropping2D(((1, 1), (0, 1)))), [(3, 4, 2)]),
]


def _keras_output_and_vjp(layer, xs, merge, rng):
    """Keras' output and input gradients for a random cotangent: one jitted ``stateless_call`` and its vjp (one
    XLA compilation per case, cheaper than Keras' op-by-op dispatch)."""
    trainable = [v.value for v in layer.trainable_variables]
    frozen = [v.value for v in layer.non_trainable_variables]

    def forward(*args):
        return layer.stateless_call(trainable, frozen, list(args) if merge else args[0])[0]

    xs = [jnp.asarray(x) for x in xs]
    out = jax.eval_shape(forward, *xs)
    cotangent = rng.standard_normal(out.shape).astype(np.float32)

    @jax.jit
    def run(xs, v):
        y, pullback = jax.vjp(forward, *xs)
        return y, pullback(v)

    y, grads = run(xs, jnp.asarray(cotangent))
    return np.asarray(y), [np.asarray(g) for g in grads], cotangent


@pytest.mark.parametrize("case", CASES, ids=[c[0] if isinstance(c, tuple) else c.id for c in CASES])
def test_layer_matches_keras(case):
    _, make_ours, make_theirs, shapes = case
    rng = np.random.default_rng(len(case[0]))
    ours, theirs = make_ours(), make_theirs()
    merge = ours.takes_list
    shape_arg = [(None, *s) for s in shapes] if merge else (None, *shapes[0])
    ours.build(shape_arg)
    if isinstance(theirs, keras.Sequential):
        theirs.build((None, *shapes[0]))
    else:
        theirs.build(shape_arg)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    assert ours.count_params() == theirs.count_params()
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    xs = [rng.standard_normal((2, *s)).astype(np.float32) for s in shapes]

    expected, keras_grads, cotangent = _keras_output_and_vjp(theirs, xs, merge, rng)
    tensors = [tinygrad_cnn.Tensor(x, requires_grad=True) for x in xs]
    got = ours(tensors if merge else tensors[0])
    grads = tinygrad_cnn.grad(got, tensors, grad_output=cotangent)
    assert got.shape == expected.shape
    if not isinstance(theirs, keras.Sequential):
        assert ours.compute_output_shape(shape_arg) == tuple(theirs.compute_output_shape(shape_arg))
    np.testing.assert_allclose(got.numpy(), np.asarray(expected), rtol=1e-5, atol=1e-6)
    for g, k in zip(grads, keras_grads, strict=True):
        np.testing.assert_allclose(g.numpy(), np.asarray(k), rtol=1e-5, atol=1e-6)
    for kind, pairs in (("out", [(got.numpy(), expected)]), ("grad", list(zip(grads, keras_grads, strict=True)))):
        for a, b in pairs:
            a, b = np.asarray(a), np.asarray(b)
            diff = float(np.abs(a - b).max()) if a.size else 0.0
            if diff > WORST[kind]:
                WORST[kind], WORST[kind + "_case"] = diff, f"{case[0]} (largest |value| {np.abs(b).max():.2g})"
    WORST["cases"] += 1

    # the config round-trips (through JSON) and the layer runs the same in a Sequential and in a graph model
    clone = nn.deserialize(json.loads(json.dumps(nn.serialize(ours))))
    assert clone.get_config() == ours.get_config()
    inputs = [nn.Input(s) for s in shapes]
    graph = nn.Model(inputs if merge else inputs[0], clone(inputs if merge else inputs[0]))
    graph.set_weights(weights)
    np.testing.assert_array_equal(graph(xs if merge else xs[0]).numpy(), got.numpy())
    if not merge:
        model = nn.Sequential([nn.Input(shapes[0]), nn.deserialize(nn.serialize(ours))])
        model.set_weights(weights)
        assert model.output_shape == got.shape[:0] + (None,) + got.shape[1:]
        np.testing.assert_array_equal(model(xs[0]).numpy(), got.numpy())


def test_report_worst_keras_difference():
    """Runs after the cases above (file order) and records the largest differences seen, for the report."""
    if WORST["cases"]:
        print(f"\nKeras comparisons: {WORST['cases']} layers, max |out diff| {WORST['out']:.2e} in "
              f"{WORST.get('out_case')}, max |grad diff| {WORST['grad']:.2e} in {WORST.get('grad_case')}")


def test_maximum_ties_split_the_gradient_as_keras_and_a_wrong_layer_is_caught():
    """At ties Maximum/Minimum send g/2 to each input (Keras' ops.maximum is jnp.maximum); and the comparison
    above is not blind: nearest upsampling differs from Keras' bilinear by far more than its tolerance."""
    a = np.array([[1.0, 2.0, 3.0]], np.float32)
    b = np.array([[1.0, 5.0, 3.0]], np.float32)
    for ours, theirs in ((nn.Maximum(), keras.layers.Maximum()), (nn.Minimum(), keras.layers.Minimum())):
        ta, tb = tinygrad_cnn.Tensor(a, requires_grad=True), tinygrad_cnn.Tensor(b, requires_grad=True)
        got = tinygrad_cnn.grad(ours([ta, tb]).sum(), [ta, tb])
        expected = jax.grad(lambda x, y, layer=theirs: layer([x, y]).sum(), argnums=(0, 1))(a, b)
        for g, k in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g.numpy(), np.asarray(k))
        assert got[0].numpy()[0, 0] == 0.5
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 2)).astype(np.float32)
    wrong = nn.UpSampling2D(2)(x).numpy()
    assert np.abs(wrong - np.asarray(keras.layers.UpSampling2D(2, interpolation="bilinear")(x))).max() > 0.1


def test_the_twin_draws_noise_as_keras_does_for_the_same_key():
    """The twin's SpatialDropout/GaussianNoise/GaussianDropout are Keras' backend formulas: for one JAX key they
    equal keras.random.dropout / normal bit for bit (the engine draws from NumPy, so only its statistics match)."""
    from jax_ref import _layers

    x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 4, 5, 6)), jnp.float32)
    key = jax.random.key(5)

    def twin(layer):
        return np.asarray(_layers.build(type(layer).__name__, layer.get_config())({}, x, True, key))

    np.testing.assert_array_equal(twin(nn.SpatialDropout2D(0.4)),
                                  np.asarray(keras.random.dropout(x, 0.4, noise_shape=(3, 1, 1, 6), seed=key)))
    np.testing.assert_array_equal(twin(nn.GaussianNoise(0.3)),
                                  np.asarray(x + keras.random.normal(x.shape, stddev=0.3, seed=key)))
    std = np.sqrt(0.2 / 0.8)
    np.testing.assert_allclose(twin(nn.GaussianDropout(0.2)),
                               np.asarray(x * keras.random.normal(x.shape, mean=1.0, stddev=std, seed=key)),
                               rtol=1e-6, atol=1e-7)
