"""The engine side of the rest of Keras' layer set: F.resize against jax.image.resize in float64 (first and
second order), user layers after nn.register_serializable (configs, graphs, checkpoints), Lambda's
serialisation rule, the noise layers in training, and clear errors for bad arguments and inputs."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ref
import tinygrad_cnn
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn


@pytest.mark.parametrize("shape,size,interpolation", [
    ((2, 5, 3), (11,), "nearest"), ((2, 4, 7, 3), (9, 3), "bilinear"), ((1, 3, 4, 2, 2), (6, 3, 2), "bilinear")])
def test_resize_matches_jax_image_resize(check_vjp, shape, size, interpolation):
    """Values and vjp in float64 against jax.image.resize without antialiasing (Keras' ops.image.resize), up and
    down; and the vjp is differentiable: a Hessian-vector product of sum(c * resize(x)^2) matches JAX's."""
    x = np.random.default_rng(0).standard_normal(shape)
    out_shape = (shape[0], *size, shape[-1])
    method = "linear" if interpolation == "bilinear" else "nearest"
    check_vjp(lambda a: F.resize(a, size, interpolation),
              lambda a: jax.image.resize(a, out_shape, method=method, antialias=False), x, tol=1e-12)
    if len(size) != 2:
        return
    c = np.random.default_rng(1).standard_normal(out_shape)
    v = np.random.default_rng(2).standard_normal(shape)
    xt = tinygrad_cnn.Tensor(x, requires_grad=True)
    (g,) = tinygrad_cnn.grad((F.resize(xt, size) ** 2 * c).sum(), [xt], create_graph=True)
    (hv,) = tinygrad_cnn.grad((g * v).sum(), [xt])

    def f(a):
        return jnp.sum(jax.image.resize(a, out_shape, method="linear", antialias=False) ** 2 * c)

    ref = jax.jit(lambda a, t: jax.jvp(jax.grad(f), (a,), (t,))[1])(jnp.asarray(x), jnp.asarray(v))
    np.testing.assert_allclose(hv.numpy(), np.asarray(ref), rtol=1e-10, atol=1e-12)


def test_resize_channels_first_and_bad_arguments():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(F.resize(x, (8, 3), data_format="channels_first").numpy(),
                               np.asarray(jax_ref.ops.resize(x, (8, 3), data_format="channels_first")), atol=1e-12)
    with pytest.raises(ValueError, match="interpolation='bicubic' is not one of 'nearest', 'bilinear'"):
        F.resize(x, (8, 3), "bicubic")
    with pytest.raises(ValueError, match=r"size must be an int or a tuple of 2 ints"):
        F.resize(x, (8, 3, 2))


@nn.register_serializable(package="Tests")
class Scale(nn.Layer):
    """y = x * w + offset, a user's layer written with engine ops (one weight per channel)."""

    def __init__(self, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1],), "ones")
        super().build(input_shape)

    def call(self, x, training=False):
        return F.tanh(x * self.w + self.offset)

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


def test_registered_layer_round_trips_configs_graphs_and_checkpoints(tmp_path):
    """A registered subclass survives get_config -> JSON -> from_config in a Sequential and in a graph, and a
    checkpoint written by one model loads into the rebuilt one; an unregistered subclass is refused by name; the
    twin mirrors it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    inp = nn.Input((4, 2))
    graph = nn.Model(inp, nn.Dense(3)(nn.Add()([Scale(0.5)(inp), Scale(name="second")(inp)])))
    seq = nn.Sequential([nn.Input((4, 2)), Scale(-0.2), nn.Flatten(), nn.Dense(2)])
    for model, cls in ((graph, nn.Model), (seq, nn.Sequential)):
        model.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()])
        config = json.loads(json.dumps(model.get_config()))
        assert {e.get("registered_name") for e in config["layers"]} >= {"Tests>Scale"}
        clone = cls.from_config(config)
        path = tmp_path / f"{model.name}.npz"
        model.save_weights(path)
        clone.load_weights(path)
        np.testing.assert_array_equal(clone(x).numpy(), model(x).numpy())
    assert isinstance(nn.deserialize({"class_name": "Scale", "config": {"offset": 1.0}}), Scale)  # by class name

    class Unregistered(nn.Layer):
        def call(self, x, training=False):
            return x

    entry = nn.serialize(Unregistered())
    with pytest.raises(ValueError, match=r"'Unregistered'.*must be registered first, with @nn.register_serializable"):
        nn.deserialize(entry)
    twin = jax_ref.from_engine(seq)  # the twin runs Scale's own call on JAX (tests/jax_ref/test_custom_layers.py)
    np.testing.assert_allclose(np.asarray(twin.apply(twin.params, x)), seq(x).numpy(), rtol=1e-5, atol=1e-6)


def test_register_serializable_refuses_clashes_and_non_layers():
    class Other(nn.Layer):
        pass

    Other.__name__ = "Scale"  # the same name from another class
    with pytest.raises(ValueError, match=r"'Tests>Scale' is already registered for .*test_more_layers.Scale"):
        nn.register_serializable(package="Tests")(Other)
    with pytest.raises(TypeError, match="only subclasses of nn.Layer"):
        nn.register_serializable()(dict)
    with pytest.raises(ValueError, match="package must be a non-empty string without '>'"):
        nn.register_serializable(package="a>b")


def test_lambda_serialises_functional_functions_only():
    layer = nn.Lambda(F.softmax, arguments={"axis": 1})
    clone = nn.deserialize(json.loads(json.dumps(nn.serialize(layer))))
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)  # the layer's dtype
    np.testing.assert_array_equal(clone(x).numpy(), F.softmax(x, axis=1).numpy())
    assert clone.compute_output_shape((None, 3, 4)) == (None, 3, 4)
    closure = nn.Lambda(lambda t: t * 2.0, output_shape=(3, 4))
    np.testing.assert_array_equal(closure(x).numpy(), 2 * x)  # runs, but cannot be stored
    with pytest.raises(ValueError, match=r"'<lambda>' is not a function of tinygrad_cnn.functional.*"
                                         r"nn.register_serializable"):
        closure.get_config()
    with pytest.raises(ValueError, match="is not a function of tinygrad_cnn.functional"):
        jax_ref.from_engine(nn.Sequential([nn.Input((3, 4)), closure]))


def test_noise_layers_in_training():
    """Seeded and repeatable; the identity in inference; SpatialDropout drops whole channels (scaled 1/(1-rate));
    GaussianNoise/GaussianDropout have Keras' moments; each gradient is the noise factor."""
    x = np.ones((64, 6, 5, 8), np.float32)
    drop = nn.SpatialDropout2D(0.5, seed=3)
    y = drop(x, training=True).numpy()
    assert np.array_equal(y, nn.SpatialDropout2D(0.5, seed=3)(x, training=True).numpy())
    assert np.array_equal(drop(x).numpy(), x)
    per_map = y.reshape(64, 30, 8)
    assert (per_map == per_map[:, :1]).all() and set(np.unique(y)) == {0.0, 2.0}
    assert 0.4 < (per_map[:, 0] == 0).mean() < 0.6
    first = nn.SpatialDropout2D(0.5, data_format="channels_first", seed=1)(x, training=True).numpy()
    assert (first == first[:, :, :1, :1]).all()

    big = np.full((200, 500), 2.0, np.float32)
    noise = nn.GaussianNoise(0.3, seed=0)(big, training=True).numpy() - big
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.3) < 0.01
    xt = tinygrad_cnn.Tensor(big, requires_grad=True)
    out = nn.GaussianDropout(0.2, seed=0)(xt, training=True)
    factor = out.numpy() / big
    assert abs(factor.mean() - 1) < 0.01 and abs(factor.std() - np.sqrt(0.2 / 0.8)) < 0.01
    (g,) = tinygrad_cnn.grad(out.sum(), [xt])
    np.testing.assert_allclose(g.numpy(), factor, rtol=1e-6)
    with pytest.raises(ValueError, match="training=True with GaussianNoise 'gn'"):
        jax_ref.compare_gradients(nn.Sequential([nn.Input((4,)), nn.GaussianNoise(0.1, name="gn"), nn.Dense(2)]),
                                  np.ones((2, 4)), np.array([0, 1]), training=True)


def _x(*shape):
    return np.zeros((2, *shape), np.float32)


BAD = [
    (lambda: nn.Maximum()([_x(3), _x(4)]), r"Maximum 'maximum.*': inputs of shapes \(2, 3\), \(2, 4\) differ on axis"),
    (lambda: nn.Minimum()([_x(3)]), r"takes a list of at least 2 inputs; got 1"),
    (lambda: nn.Reshape((5,))(_x(6)), r"Reshape .*cannot reshape an input of shape \(2, 6\) .* to target_shape=\(5,\)"),
    (lambda: nn.Reshape((-1, -1)), r"target_shape must be a tuple of positive ints with at most one -1"),
    (lambda: nn.Permute((1, 3)), r"dims must be a permutation of 1..n"),
    (lambda: nn.Permute((2, 1))(_x(3)), r"expected an input of rank 3 .*got shape \(2, 3\) \(rank 2\)"),
    (lambda: nn.RepeatVector(2)(_x(3, 4)), r"RepeatVector .*expected an input of rank 2 \(batch, features\)"),
    (lambda: nn.ZeroPadding2D((1, 2, 3)), r"padding must be an int, a tuple of 2 ints or a tuple of 2 \(before"),
    (lambda: nn.ZeroPadding1D(-1), r"padding must be non-negative"),
    (lambda: nn.Cropping2D(3)(_x(4, 4, 1)), r"cropping=\(\(3, 3\), \(3, 3\)\) removes 6 cells along spatial axis 0"),
    (lambda: nn.UpSampling3D()(_x(4, 4, 1)), r"UpSampling3D .*expected an input of rank 5 .*got shape \(2, 4, 4, 1\)"),
    (lambda: nn.UpSampling2D(interpolation="bicubic"), r"interpolation='bicubic' is not one of 'nearest', 'bilinear'"),
    (lambda: nn.Conv2D(2, 3, padding=(1, 2, 3)), r"padding=\(1, 2, 3\) must be 'valid', 'same'.*or one int"),
    (lambda: nn.Conv2DTranspose(2, 3, padding=4)(_x(2, 2, 1)), r"padding=\(\(4, 4\), \(4, 4\)\) cuts the whole output"),
    (lambda: nn.SeparableConv2D(2, 3)(_x(5, 3)), r"SeparableConv2D .*expected an input of rank 4"),
    (lambda: nn.DepthwiseConv1D(3)(_x(2, 3)), r"the kernel spans 3 cells .* padded input has only 2"),
    (lambda: nn.MaxPooling3D()(_x(4, 4, 1)), r"MaxPooling3D .*expected an input of rank 5"),
    (lambda: nn.GlobalAveragePooling1D()(_x(4, 4, 1)), r"GlobalAveragePooling1D .*expected an input of rank 3"),
    (lambda: nn.SpatialDropout2D(0.5)(_x(4, 1)), r"SpatialDropout2D .*expected an input of rank 4"),
    (lambda: nn.GaussianDropout(1.0), r"rate"),
    (lambda: nn.GaussianNoise(2.0), r"stddev"),
    (lambda: nn.PReLU(shared_axes=[0]), r"shared_axes must be None or ints >= 1"),
    (lambda: nn.PReLU(shared_axes=[3])(_x(4, 2)), r"shared_axes=\[3\] name axes beyond an input of shape \(2, 4, 2\)"),
    (lambda: nn.Softmax(axis=0)(_x(3)), r"axis=0 must name non-batch axes of an input of rank 2"),
    (lambda: nn.Rescaling([1.0, 2.0])(_x(3)), r"scale of shape \(2,\) does not broadcast against the input shape"),
    (lambda: nn.Lambda(3), r"function must be callable"),
    (lambda: nn.LeakyReLU(-1.0), r"negative_slope"),
]


@pytest.mark.parametrize("make,match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments_and_inputs_raise_clear_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_a_failed_first_call_leaves_the_layer_unbuilt():
    layer = nn.Cropping2D(3)
    with pytest.raises(ValueError):
        layer(_x(4, 4, 1))
    assert not layer.built and layer.weights == []
    assert layer(_x(7, 8, 1)).shape == (2, 1, 2, 1)
