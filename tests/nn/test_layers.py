"""Layers: seed examples, each layer against the functional op it wraps, config round trips, bad input."""

import json

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn import functional as F

RNG = np.random.default_rng(0)


def _x(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# -- the seed's examples ------------------------------------------------------------------------------
def test_seed_conv2d_example_output_shape():
    model = nn.Sequential([nn.Input((256, 256, 3)), nn.Conv2D(64, (3, 3), padding="same")])
    assert model.output_shape == (None, 256, 256, 64)
    assert model.layers[0].kernel.shape == (3, 3, 3, 64)
    assert model.count_params() == 3 * 3 * 3 * 64 + 64


def test_seed_conv1d_example_output_shape():
    # a 1-D signal of 100 steps, 8 channels; kernel 5, stride 2: floor((100 - 5) / 2) + 1 = 48
    model = nn.Sequential([nn.Conv1D(16, 5, strides=2, activation="relu", input_shape=(100, 8))])
    assert model.output_shape == (None, 48, 16)
    assert nn.Sequential([nn.Input((100, 8)), nn.Conv1D(16, 5, padding="causal")]).output_shape == (None, 100, 16)


# -- each layer against its functional op ----------------------------------------------------------------
def _built(layer, shape):
    layer.build((None, *shape[1:]))
    layer.set_weights([_x(*w.shape) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("layer,shape,reference", [
    (lambda: nn.Conv1D(4, 3, padding="causal", dilation_rate=2), (2, 9, 3),
     lambda lyr, x: F.conv(x, lyr.kernel, lyr.bias, padding="causal", dilation_rate=2)),
    (lambda: nn.Conv2D(4, 3, strides=2, padding="same", activation="relu"), (2, 7, 7, 3),
     lambda lyr, x: F.relu(F.conv(x, lyr.kernel, lyr.bias, strides=2, padding="same"))),
    (lambda: nn.Conv2D(4, 3, groups=2, data_format="channels_first"), (2, 4, 6, 6),
     lambda lyr, x: F.conv(x, lyr.kernel, lyr.bias, groups=2, data_format="channels_first")),
    (lambda: nn.Conv3D(2, 2), (1, 4, 4, 4, 2), lambda lyr, x: F.conv(x, lyr.kernel, lyr.bias)),
    (lambda: nn.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), (2, 6, 6, 3),
     lambda lyr, x: F.depthwise_conv2d(x, lyr.kernel, lyr.bias, padding="same")),
    (lambda: nn.Conv2DTranspose(3, 3, strides=2, padding="same"), (2, 4, 4, 2),
     lambda lyr, x: F.conv_transpose(x, lyr.kernel, lyr.bias, strides=2, padding="same")),
    (lambda: nn.Conv1DTranspose(3, 3, strides=2), (2, 5, 2),
     lambda lyr, x: F.conv_transpose(x, lyr.kernel, lyr.bias, strides=2)),
    (lambda: nn.MaxPooling2D((3, 3), strides=2, padding="same"), (2, 7, 7, 3),
     lambda lyr, x: F.max_pool(x, (3, 3), strides=2, padding="same")),
    (lambda: nn.MaxPooling1D(2), (2, 9, 3), lambda lyr, x: F.max_pool(x, 2)),
    (lambda: nn.AveragePooling1D(3, strides=1), (2, 9, 3), lambda lyr, x: F.avg_pool(x, 3, strides=1)),
    (lambda: nn.AveragePooling2D(2), (2, 6, 6, 3), lambda lyr, x: F.avg_pool(x, 2)),
    (lambda: nn.LPPooling2D(2, p=3), (2, 6, 6, 3), lambda lyr, x: F.lp_pool(x, 2, p=3)),
    (lambda: nn.GlobalMaxPooling2D(), (2, 5, 5, 3), lambda lyr, x: F.global_max_pool(x)),
    (lambda: nn.GlobalAveragePooling2D(keepdims=True), (2, 5, 5, 3),
     lambda lyr, x: F.global_avg_pool(x, keepdims=True)),
    (lambda: nn.Dense(5, activation="softplus"), (3, 4), lambda lyr, x: F.softplus(F.dense(x, lyr.kernel, lyr.bias))),
    (lambda: nn.Activation("tanh"), (3, 4), lambda lyr, x: F.tanh(x)),
    (lambda: nn.ReLU(negative_slope=0.1), (3, 4), lambda lyr, x: F.leaky_relu(x, 0.1)),
    (lambda: nn.Flatten(), (2, 3, 4, 5), lambda lyr, x: x.reshape(2, -1)),
], ids=lambda v: getattr(v, "__name__", "")[:0])
def test_layer_equals_functional_op_and_gradients_flow(layer, shape, reference):
    lyr = _built(layer(), shape)
    x = Tensor(_x(*shape), requires_grad=True)
    out = lyr(x)
    np.testing.assert_array_equal(out.numpy(), reference(lyr, x).numpy())
    assert out.shape == tuple(s if s is not None else shape[0] for s in lyr.compute_output_shape(shape))
    out.backward(_x(*out.shape))
    assert x.grad is not None and x.grad.shape == x.shape
    for w in lyr.weights:
        assert w.grad is not None and w.grad.shape == w.shape


def test_dropout_is_identity_at_inference_and_seeded_in_training():
    x = np.ones((4, 50), np.float32)
    assert nn.Dropout(0.5)(x).numpy() is not None
    np.testing.assert_array_equal(nn.Dropout(0.5)(x, training=False).numpy(), x)
    a = nn.Dropout(0.3, seed=7)(x, training=True).numpy()
    b = nn.Dropout(0.3, seed=7)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.7)}
    shared = nn.Dropout(0.5, noise_shape=(None, 1), seed=1)(x, training=True).numpy()
    assert all(len(np.unique(row)) == 1 for row in shared)


# -- config ----------------------------------------------------------------------------------------------
def test_sequential_config_is_json_and_rebuilds_the_same_model():
    model = nn.Sequential([
        nn.Input((12, 12, 2)),
        nn.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer="l2",
                  kernel_constraint=nn.constraints.MaxNorm(2.0, axis=[0, 1, 2]), bias_initializer="ones"),
        nn.DepthwiseConv2D(3, depth_multiplier=2, depthwise_initializer=nn.initializers.HeNormal(seed=3)),
        nn.Conv2DTranspose(3, 2, strides=2, output_padding=1),
        nn.LPPooling2D(2, p=2), nn.AveragePooling2D(2, padding="same"), nn.MaxPooling2D(1),
        nn.GlobalAveragePooling2D(keepdims=True), nn.Flatten(), nn.Dropout(0.25, seed=4),
        nn.Dense(6, activity_regularizer=nn.regularizers.L1L2(l1=1e-3)), nn.ReLU(max_value=6.0),
        nn.Activation("softmax"),
    ], name="demo")
    config = json.loads(json.dumps(model.get_config()))
    assert config["layers"][0]["class_name"] == "InputLayer"
    assert config["layers"][1]["config"]["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.01}}
    clone = nn.Sequential.from_config(config)
    assert clone.output_shape == model.output_shape
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    assert json.dumps(clone.get_config()) == json.dumps(config)
    clone.set_weights(model.get_weights())
    x = _x(2, 12, 12, 2)
    np.testing.assert_array_equal(clone(x).numpy(), model(x).numpy())


def test_layer_serialize_round_trip_with_class_name():
    layer = nn.Conv1D(3, 2, padding="causal", kernel_initializer=nn.initializers.VarianceScaling(2.0, "fan_out"))
    entry = json.loads(json.dumps(nn.serialize(layer)))
    assert entry["class_name"] == "Conv1D"
    clone = nn.deserialize(entry)
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match=r"class_name='Conv2x' .*did you mean 'conv2d'"):
        nn.deserialize({"class_name": "Conv2x", "config": {}})


def test_one_layer_registry_read_from_the_layer_subclasses():
    """``nn.LAYER_CLASSES`` is every public Layer subclass of the package (what deserialize rebuilds), no hand-kept
    list: a private base (``_Pool``) or a user's subclass is not in it."""
    exported = {name: cls for name, cls in vars(nn).items()
                if isinstance(cls, type) and issubclass(cls, nn.Layer) and cls is not nn.Layer}
    assert nn.LAYER_CLASSES == exported

    class Custom(nn.Layer):
        pass

    assert "Custom" not in nn._serial.subclasses(nn.Layer, "tinygrad_cnn.nn")
    assert all(not name.startswith("_") for name in nn.LAYER_CLASSES)


def test_summary_lists_layers_params_and_receptive_fields():
    model = nn.Sequential([nn.Input((32, 32, 3)), nn.Conv2D(8, 3), nn.MaxPooling2D(), nn.Conv2D(8, 3, dilation_rate=2),
                           nn.GlobalMaxPooling2D(), nn.Dense(2)])
    text = model.summary(print_fn=None)
    rows = text.splitlines()
    assert "Receptive field" in rows[2]
    # conv 3 -> 3; pool 2/2 -> 4 (jump 2); dilated conv F_eff 5 -> 4 + 4 * 2 = 12; global -> everything
    assert model.receptive_fields() == ["3x3", "4x4", "12x12", "all (32x32)", "all (32x32)"]
    assert f"Total params: {model.count_params():,}" in text
    assert model.count_params() == (3 * 3 * 3 * 8 + 8) + (3 * 3 * 8 * 8 + 8) + (8 * 2 + 2)


class _ScaledDense(nn.Dense):
    """Dense with an extra weight added with ``trainable=False`` (frozen whatever the layer's flag)."""

    def build(self, input_shape):
        super().build(input_shape)
        self.scale = self.add_weight("scale", (self.units,), "ones", trainable=False)


def _ids(tensors):
    return [id(t) for t in tensors]


def _counts(model):
    rows = model.summary(print_fn=None).splitlines()
    return [int(r.split(": ")[1].replace(",", "")) for r in rows if r.startswith(("Trainable", "Non-trainable"))]


def test_trainable_set_after_build_freezes_and_releases_the_weights():
    dense, scaled = nn.Dense(3), _ScaledDense(2)
    model = nn.Sequential([nn.Input((4,)), dense, scaled])
    all_params = (4 * 3 + 3) + (3 * 2 + 2)
    assert _ids(model.parameters()) == _ids(dense.weights + [scaled.kernel, scaled.bias])
    assert not scaled.scale.requires_grad and _ids(scaled.non_trainable_weights) == [id(scaled.scale)]
    assert _counts(model) == [all_params, 2]
    dense.trainable = False
    assert not any(w.requires_grad for w in dense.weights) and dense.trainable_weights == []
    assert _ids(model.parameters()) == _ids([scaled.kernel, scaled.bias])
    assert _counts(model) == [3 * 2 + 2, 4 * 3 + 3 + 2]
    assert dense.get_config()["trainable"] is False
    assert nn.deserialize(nn.serialize(dense)).trainable is False
    model.trainable = False
    assert not model.trainable and model.parameters() == [] and _counts(model) == [0, all_params + 2]
    model.trainable = True  # releases every layer; the weight added with trainable=False stays frozen
    assert model.trainable and _ids(model.parameters()) == _ids(dense.weights + [scaled.kernel, scaled.bias])
    assert not scaled.scale.requires_grad and _counts(model) == [all_params, 2]
    with pytest.raises(TypeError, match=r"Dense 'dense\w*': trainable must be True or False; got 'no'"):
        dense.trainable = "no"
    with pytest.raises(TypeError, match=r"Sequential 'sequential\w*': trainable must be True or False; got 0"):
        model.trainable = 0


# -- losses ------------------------------------------------------------------------------------------------
def test_weight_and_activity_penalties_in_losses():
    layer = nn.Dense(3, kernel_regularizer=nn.regularizers.L2(0.1), bias_regularizer="l1",
                     bias_initializer="ones", activity_regularizer=nn.regularizers.L1(0.5))
    model = nn.Sequential([nn.Input((4,)), layer])
    x = _x(5, 4)
    y = model(x)
    k, b = layer.kernel.numpy(), layer.bias.numpy()
    expected = [0.1 * np.sum(k ** 2), 0.01 * np.sum(np.abs(b)), 0.5 * np.sum(np.abs(y.numpy())) / 5]
    np.testing.assert_allclose([float(v.item()) for v in model.losses], expected, rtol=1e-5)


def test_constraints_applied_by_apply_constraints():
    layer = nn.Dense(3, kernel_constraint="non_neg", bias_constraint=nn.constraints.MaxNorm(0.5))
    model = nn.Sequential([nn.Input((4,)), layer])
    layer.set_weights([-np.ones((4, 3), np.float32), np.full(3, 2.0, np.float32)])
    model.apply_constraints()
    assert np.all(layer.kernel.numpy() == 0)
    assert np.linalg.norm(layer.bias.numpy()) == pytest.approx(0.5, rel=1e-5)


def test_initializers_fan_rules_and_seed():
    assert nn.initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert nn.initializers.compute_fans((10, 20)) == (10, 20)
    w = nn.initializers.get("he_uniform")((3, 3, 64, 64))
    assert np.abs(w).max() <= np.sqrt(6 / (9 * 64)) and np.abs(w).max() > 0.95 * np.sqrt(6 / (9 * 64))
    a = nn.initializers.GlorotNormal(seed=5)((20, 30))
    np.testing.assert_array_equal(a, nn.initializers.GlorotNormal(seed=5)((20, 30)))
    q = nn.initializers.Orthogonal(seed=1)((6, 4))
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    t = nn.initializers.TruncatedNormal(stddev=1.0, seed=0)((10000,))
    assert np.abs(t).max() <= 2.0
    assert nn.initializers.get("constant") is not None and np.all(nn.initializers.Constant(3)((2,)) == 3)


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,match", [
    (lambda: nn.Conv2D(0, 3), r"Conv2D 'conv2d.*': filters must be an integer >= 1; got 0"),
    (lambda: nn.Conv2D(8, 3, activation="rleu"), r"activation='rleu' .*did you mean 'relu'"),
    (lambda: nn.Conv2D(8, 3, kernel_initializer="glorot_unifrom"),
     r"kernel_initializer=.*did you mean 'glorot_uniform'"),
    (lambda: nn.Dense(8, kernel_regularizer="l3"), r"Dense 'dense.*': kernel_regularizer='l3'"),
    (lambda: nn.Dense(8, kernel_constraint="max_nrm"), r"kernel_constraint='max_nrm'.*did you mean 'max_norm'"),
    (lambda: nn.Conv2D(8, 3, padding="smae"), r"padding='smae'.*did you mean 'same'"),
    (lambda: nn.Conv2D(8, 3, padding="causal"), r"padding='causal' is not one of 'valid', 'same'"),
    (lambda: nn.Conv2D(8, 3, strides=2, dilation_rate=2), r"strides > 1 together with dilation_rate > 1"),
    (lambda: nn.Conv2D(6, 3, groups=4), r"filters=6 must be divisible by groups=4"),
    (lambda: nn.Conv2D(8, (3, 3, 3)), r"kernel_size must be an int or a tuple of 2 ints"),
    (lambda: nn.Conv2D(8, 3, data_format="channels_middle"), r"data_format='channels_middle'"),
    (lambda: nn.Conv2D(8, 3, filtres=3), r"keyword argument='filtres'.*did you mean 'filters'"),
    (lambda: nn.Conv2DTranspose(4, 3, strides=2, output_padding=2), r"output_padding must be smaller than strides"),
    (lambda: nn.DepthwiseConv2D(3, depth_multiplier=0), r"depth_multiplier must be an integer >= 1; got 0"),
    (lambda: nn.Dropout(1.5), r"Dropout 'dropout.*': rate must be in \[0.0, 1.0\]; got 1.5"),
    (lambda: nn.Dense(-2), r"units must be an integer >= 1; got -2"),
    (lambda: nn.MaxPooling2D(pool_size=0), r"pool_size must be an int"),
    (lambda: nn.ReLU(max_value=-1), r"max_value must be in"),
    (lambda: nn.Activation("sofmax"), r"did you mean 'softmax'"),
])
def test_bad_arguments_name_layer_argument_and_value(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_wrong_input_shape_names_the_layer_and_shapes():
    model = nn.Sequential([nn.Input((8, 8, 1)), nn.Conv2D(4, 3), nn.Flatten(), nn.Dense(3)])
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d.*': expected axis 3 of the input to have size 1 .*"
                                         r"got shape \(2, 8, 8, 3\)"):
        model(_x(2, 8, 8, 3))
    with pytest.raises(ValueError, match=r"Dense 'dense.*': expected axis -1 of the input to have size 144 "
                                         r".*got shape \(2, 256\) \(Sequential .* built for inputs "
                                         r"\(None, 8, 8, 1\) and called on shape \(2, 10, 10, 1\)\)"):
        model(_x(2, 10, 10, 1))
    with pytest.raises(ValueError, match=r"expected inputs of shape \(None, 8, 8, 1\) .*got shape \(8, 8\)"):
        model(_x(8, 8))
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d.*': the kernel spans 5 cells"):
        nn.Sequential([nn.Input((4, 4, 1)), nn.Conv2D(2, 5)])
    with pytest.raises(ValueError, match=r"the input has 3 channels, not divisible by groups=2"):
        nn.Sequential([nn.Input((6, 6, 3)), nn.Conv2D(4, 3, groups=2)])


def test_set_weights_checks_before_writing():
    model = nn.Sequential([nn.Input((4,)), nn.Dense(3), nn.Dense(2)])
    before = model.get_weights()
    bad = [np.zeros_like(w) for w in before]
    bad[-1] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"Dense 'dense.*' weight 'bias' has shape \(2,\); got an array of "
                                         r"shape \(5,\)"):
        model.set_weights(bad)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
