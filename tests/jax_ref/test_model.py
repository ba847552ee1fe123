"""from_engine: outputs and per-layer gradients equal to the engine's for every layer type, weights both ways,
capture, dropout keys, clear errors, and the negative controls (a 1%-wrong backward is named)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jax_ref
from jax_ref import _layers
from tinygrad_cnn import nn
from tinygrad_cnn.nn import constraints, regularizers


def _models():
    """Four small models that together hold every layer class of tinygrad_cnn.nn (checked below)."""
    nn.set_random_seed(0)
    a = nn.Sequential([
        nn.Input(shape=(8, 8, 2)),
        nn.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer="l2",
                  bias_regularizer=regularizers.L1L2(0.01, 0.02), activity_regularizer="l1"),
        nn.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="tanh"),
        nn.Conv2DTranspose(3, 3, strides=2, padding="same", activation="softplus"),
        nn.MaxPooling2D(2),
        nn.AveragePooling2D(3, strides=2, padding="same"),
        nn.LPPooling2D(2, padding="same"),
        nn.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.05),
        nn.GlobalMaxPooling2D(),
        nn.Dense(5, activation="sigmoid"),
        nn.Activation("linear"),
        nn.Dense(4),
    ], name="model_2d")
    b = nn.Sequential([
        nn.Input(shape=(12, 3)),
        nn.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="leaky_relu"),
        nn.Conv1DTranspose(3, 2, strides=2),
        nn.MaxPooling1D(2, padding="same"),
        nn.AveragePooling1D(2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Dense(4, activation="softmax"),
    ], name="model_1d")
    c = nn.Sequential([
        nn.Input(shape=(4, 6, 6)),
        nn.Conv2D(4, 3, groups=2, data_format="channels_first", activation="relu"),
        nn.ReLU(),
        nn.GlobalAveragePooling2D(data_format="channels_first", keepdims=True),
        nn.Flatten(data_format="channels_first"),
        nn.Dense(4),
    ], name="model_channels_first")
    d = nn.Sequential([nn.Input(shape=(4, 4, 4, 2)), nn.Conv3D(3, 2, strides=(1, 2, 1)), nn.Flatten(), nn.Dense(4)],
                      name="model_3d")
    return [a, b, c, d, *_more_models(), _graph()]


def _more_models():
    """The rest of Keras' CNN layer set (shape, noise, separable/depthwise, 3-D and activation layers)."""
    from tinygrad_cnn import functional as F
    e = nn.Sequential([
        nn.Input(shape=(6, 5, 2)),
        nn.ZeroPadding2D(((1, 0), (2, 1))),
        nn.SeparableConv2D(4, 3, depth_multiplier=2, padding="same", activation="tanh",
                           pointwise_regularizer="l2"),
        nn.PReLU(alpha_initializer="glorot_uniform", shared_axes=[1, 2]),
        nn.UpSampling2D((2, 1), interpolation="bilinear"),
        nn.Cropping2D(((1, 2), (0, 1))),
        nn.Conv2D(3, (3, 2), padding=((1, 0), 1)),  # explicit padding, as PyTorch's layers take it
        nn.SpatialDropout2D(0.3), nn.GaussianNoise(0.2), nn.GaussianDropout(0.2),
        nn.LeakyReLU(0.2), nn.ELU(0.7), nn.Rescaling(0.5, offset=[0.1, 0.2, 0.3]),
        nn.Permute((3, 1, 2)), nn.Lambda(F.leaky_relu, arguments={"negative_slope": 0.1}),
        nn.Softmax(axis=[2, 3]), nn.UpSampling2D(2, data_format="channels_first"),
        nn.Reshape((-1, 12)), nn.GlobalMaxPooling1D(), nn.Dense(4),
    ], name="model_layers_2d")
    f = nn.Sequential([
        nn.Input(shape=(9, 3)),
        nn.ZeroPadding1D((2, 1)), nn.DepthwiseConv1D(3, depth_multiplier=2, strides=2, activation="relu"),
        nn.SeparableConv1D(4, 2, padding="same"), nn.Conv1DTranspose(4, 3, strides=2, padding=(1, 0)),
        nn.UpSampling1D(3), nn.Cropping1D((1, 2)),
        nn.SpatialDropout1D(0.2), nn.Softmax(), nn.GlobalAveragePooling1D(), nn.RepeatVector(3),
        nn.Flatten(), nn.Dense(4),
    ], name="model_layers_1d")
    g = nn.Sequential([
        nn.Input(shape=(4, 5, 4, 2)),
        nn.Conv3DTranspose(3, 2, strides=(2, 1, 1), padding="same"), nn.ZeroPadding3D(1),
        nn.MaxPooling3D((2, 2, 1)), nn.Cropping3D(((1, 0), (0, 1), (1, 1))),
        nn.UpSampling3D((1, 2, 1), interpolation="bilinear"),
        nn.AveragePooling3D(2, padding="same"), nn.SpatialDropout3D(0.1), nn.GlobalAveragePooling3D(keepdims=True),
        nn.GlobalMaxPooling3D(), nn.Dense(4),
    ], name="model_layers_3d")
    return [e, f, g]


def _graph():
    """A graph model with every merge and normalization, branch points read by several layers and a shared Dense."""
    x = nn.Input(shape=(6, 6, 4))
    r = nn.ReLU()(nn.BatchNormalization(momentum=0.9)(nn.Conv2D(4, 3, padding="same")(x)))
    a = nn.Add()([x, r])
    s = nn.Subtract()([a, x])
    m = nn.Multiply()([s, nn.GroupNormalization(groups=2, center=False)(a)])
    c = nn.Concatenate()([nn.Average()([m, nn.Maximum()([a, s]), nn.Minimum()([s, x])]), x])
    shared = nn.Dense(8, activation="tanh")
    z = shared(shared(nn.LayerNormalization()(nn.GlobalAveragePooling2D()(c))))
    return nn.Model(x, nn.Dense(4)(z), name="model_graph")


MODELS = _models()


def _data(model, seed=0, n=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + tuple(model.input_shape[1:])).astype(np.float32)
    return x, rng.integers(0, 4, size=n)




def test_models_cover_every_layer_class():
    used = {type(layer).__name__ for m in MODELS for layer in m.layers} | {"InputLayer"}
    assert used == set(nn.LAYER_CLASSES) - set(_layers.NOT_YET)  # what the twin cannot build yet


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_outputs_and_every_gradient_match_the_engine(model):
    x, y = _data(model)
    twin = jax_ref.from_engine(model)
    np.testing.assert_allclose(np.asarray(twin(x)), model(x).data, rtol=2e-5, atol=2e-6)  # float32, jitted
    report = jax_ref.assert_gradients_match(model, x, y)  # float64, weights, penalties and every node's input
    assert report.max_rel_error < 1e-7, str(report)
    assert len([e for e in report.entries if e.kind.endswith("backward")]) == sum(
        len(node.inputs) for node in twin.nodes)


def test_capture_gives_every_layer_input_and_output():
    model = MODELS[0]
    x, _ = _data(model)
    twin = jax_ref.from_engine(model)
    y, cap = twin.jit_apply(twin.params, x, capture=True)
    h = x
    for layer in model.layers:
        np.testing.assert_allclose(np.asarray(cap["inputs"][layer.name]), np.asarray(h), rtol=2e-5, atol=2e-6)
        h = layer(h).data
        np.testing.assert_allclose(np.asarray(cap["outputs"][layer.name]), h, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(np.asarray(y), h, rtol=2e-5, atol=2e-6)


def test_weights_round_trip():
    model = jax_ref.clone_engine(MODELS[0])
    twin = jax_ref.from_engine(model)
    assert set(twin.params) == {layer.name for layer in model.layers if layer.weights}
    new = jax.tree_util.tree_map(lambda a: a * 2 + 1, twin.params)
    twin.to_engine(new)
    flat = [np.asarray(new[layer.name][w]) for layer in model.layers for w in layer.weight_names]
    for got, want in zip(model.get_weights(), flat, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    again = jax_ref.from_engine(model).params
    jax.tree_util.tree_map(np.testing.assert_array_equal, again, new)


def test_dropout_uses_the_key_and_needs_one():
    model = MODELS[1]
    x, _ = _data(model, n=4)
    twin = jax_ref.from_engine(model)
    key = jax.random.key(3)
    a = twin.jit_apply(twin.params, x, training=True, rng=key)
    b = twin.jit_apply(twin.params, x, training=True, rng=key)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(twin(x)))
    with pytest.raises(ValueError, match="Dropout 'dropout.*PRNG key"):
        twin.apply(twin.params, x, training=True)


def test_unsupported_layer_is_named():
    class Squash(nn.Layer):  # a custom layer is mirrored by running its call, but not through NumPy
        def call(self, x, training=False):
            return x * x.data.mean()

    model = nn.Sequential([nn.Input(shape=(3,)), nn.Dense(2), Squash()])
    with pytest.raises(NotImplementedError, match=r"'squash.*' of class Squash .*reads \.data"):
        jax_ref.from_engine(model)


def test_user_model_is_untouched_and_x64_restored():
    model = MODELS[2]
    before = [w.copy() for w in model.get_weights()]
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        jax_ref.compare_gradients(model, *_data(model))
        assert jax.config.jax_enable_x64 is False
    finally:
        jax.config.update("jax_enable_x64", previous)
    for w, b in zip(model.weights, before, strict=True):
        assert w.dtype == np.float32 and w.grad is None
        np.testing.assert_array_equal(w.data, b)


def _scaled_vjp(cls, factor, which=0):
    original = cls.vjp

    def vjp(ctx, g):
        grads = list(original(ctx, g))
        if grads[which] is not None:
            grads[which] = grads[which] * factor
        return tuple(grads)

    return staticmethod(vjp)


def test_negative_control_names_the_layer_with_a_wrong_backward(monkeypatch):
    from tinygrad_cnn.ops.pool import MaxPool
    model = MODELS[0]
    x, y = _data(model)
    monkeypatch.setattr(MaxPool, "vjp", _scaled_vjp(MaxPool, 1.01))  # the max-pool backward is off by 1%
    report = jax_ref.compare_gradients(model, x, y)
    pool = next(layer.name for layer in model.layers if isinstance(layer, nn.MaxPooling2D))  # auto-named
    assert not report.passed
    assert report.suspect.name == f"{pool} input", str(report)
    assert report[f"{pool} input"].grade == "suspect"
    assert report[model.layers[-1].name + ".kernel"].grade == "good"  # layers after the pool are unaffected
    with pytest.raises(AssertionError, match=f"first failing row .*: {pool} input"):
        jax_ref.assert_gradients_match(model, x, y)


def test_negative_control_names_a_wrong_weight_gradient(monkeypatch):
    from tinygrad_cnn.ops.conv import ConvKernelGrad
    model = MODELS[3]
    x, y = _data(model)
    monkeypatch.setattr(ConvKernelGrad, "forward", _scaled_forward(ConvKernelGrad.forward, 0.99))
    report = jax_ref.compare_gradients(model, x, y)
    assert report.suspect.name == f"{model.layers[0].name}.kernel", str(report)


def _scaled_forward(forward, factor):
    return staticmethod(lambda ctx, *arrays, **params: forward(ctx, *arrays, **params) * factor)


def test_constraints_and_penalties_follow_the_config():
    model = nn.Sequential([nn.Input(shape=(4,)), nn.Dense(3, kernel_constraint=constraints.MaxNorm(0.5),
                                                          bias_constraint="non_neg", kernel_regularizer="l1")])
    twin = jax_ref.from_engine(model)
    params = jax.tree_util.tree_map(lambda a: a * 10 - 1, twin.params)
    projected = twin.constrain(params)
    layer = model.layers[0]
    layer.set_weights([np.asarray(params[layer.name]["kernel"]), np.asarray(params[layer.name]["bias"])])
    model.apply_constraints()
    for got, want in zip(layer.get_weights(), (projected[layer.name]["kernel"], projected[layer.name]["bias"]),
                         strict=True):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6)
    np.testing.assert_allclose(float(twin.weight_penalty(projected)), float(sum(t.item() for t in model.losses)),
                               rtol=1e-6)
