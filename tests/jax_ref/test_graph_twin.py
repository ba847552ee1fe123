"""The twin on graph models: a residual network with BatchNormalization (gradients per node in inference and
training mode, a broken backward named, parity of training and moving statistics, every attribution method),
several inputs and outputs with a shared layer, and the layer state (updated functionally, written back)."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

import jax_ref
from jax_ref import attribution as A
from jax_ref.attribution.engine import engine_saliency
from tinygrad_cnn import nn
from tinygrad_cnn.autograd import grad

R = np.random.default_rng(0)


def _conv_bn(h, filters, name, relu=True):
    h = nn.BatchNormalization(momentum=0.8, name=f"{name}_bn")(nn.Conv2D(filters, 3, padding="same",
                                                                          name=f"{name}_conv")(h))
    return nn.ReLU(name=f"{name}_relu")(h) if relu else h


def resnet():
    """Stem, an identity residual block, a max pool, a projection block whose first layer is a tanh read from the
    pool output (so that value has two readers), global average pooling and Dense; random BN statistics."""
    nn.set_random_seed(1)
    x = nn.Input((8, 8, 3))
    h = _conv_bn(x, 4, "stem")
    r = _conv_bn(_conv_bn(h, 4, "b1a"), 4, "b1b", relu=False)
    h = nn.ReLU(name="b1_out")(nn.Add(name="b1_add")([h, r]))
    p = nn.MaxPooling2D(2, name="pool")(h)
    r = _conv_bn(_conv_bn(nn.Activation("tanh", name="b2_tanh")(p), 6, "b2a"), 6, "b2b", relu=False)
    h = nn.ReLU(name="b2_out")(nn.Add(name="b2_add")([nn.Conv2D(6, 1, name="b2_proj")(p), r]))
    out = nn.Dense(3, name="logits")(nn.GlobalAveragePooling2D(name="gap")(h))
    model = nn.Model(x, out, name="resnet")
    for layer in model.layers:
        if isinstance(layer, nn.BatchNormalization):  # moving statistics away from their initial 0 / 1
            n = layer.gamma.shape
            layer.set_weights([R.uniform(0.5, 1.5, n), R.normal(0, 0.2, n), R.normal(0, 0.3, n), R.uniform(0.5, 2, n)])
    return model


MODEL = resnet()
X = R.normal(size=(6, 8, 8, 3)).astype(np.float32)
Y = R.integers(0, 3, 6)


LONG = os.environ.get("TINYGRAD_CNN_FUZZ", "ci").lower() == "long"  # the reliability suite's long profile


# inference-mode gradients of graph models are checked in CI by test_model.py's graph model and the Keras test
@pytest.mark.parametrize("training", [pytest.param(False, marks=pytest.mark.skipif(not LONG, reason="long profile")),
                                      True], ids=["inference", "training"])
def test_residual_network_gradients_per_node(training):
    report = jax_ref.assert_gradients_match(MODEL, X, Y, training=training)
    # in training a conv bias before a BatchNormalization has gradient exactly 0 (the batch mean takes it away):
    # both sides give rounding noise there, measured absolutely
    zero = {e.name for e in report.entries if training and e.name.endswith("_conv.bias")}
    assert max(report[name].max_abs_error for name in zero) < 1e-14 if zero else True
    worst = max(e.max_rel_error for e in report.entries if e.name not in zero)
    print(report.title, f"worst relative error {worst:.2e} (pre-BN biases: {report.max_rel_error:.2e})")
    assert worst < 1e-10, str(report)
    twin = jax_ref.from_engine(MODEL)
    rows = {e.name for e in report.entries}
    assert {"b1_add input 0", "b1_add input 1", "b2_add input 0", "b2_tanh input", "pool input"} <= rows
    assert len([e for e in report.entries if e.kind.endswith("backward")]) == sum(len(n.inputs) for n in twin.nodes)


def test_a_wrong_backward_in_a_residual_network_is_named(monkeypatch):
    """Tanh's backward 1% off: the rows of every node after it (the other reader of the pool output included)
    pass, its own input row is the first to fail."""
    from tinygrad_cnn.ops.elementwise import Tanh
    original = Tanh.vjp
    monkeypatch.setattr(Tanh, "vjp", staticmethod(lambda ctx, g: tuple(t * 1.01 for t in original(ctx, g))))
    report = jax_ref.compare_gradients(MODEL, X, Y)
    assert report.suspect.name == "b2_tanh input", str(report)
    assert report["b2_proj input"].grade == "good" and report["b2a_conv input"].grade == "good"
    assert report["pool input"].grade != "good"  # the wrong cotangent flows on upstream


def test_twin_output_and_state_in_both_modes():
    engine = jax_ref.clone_engine(MODEL)
    twin = jax_ref.from_engine(engine)
    assert set(twin.state) == {layer.name for layer in engine.layers if isinstance(layer, nn.BatchNormalization)}
    assert all(set(s) == {"moving_mean", "moving_variance"} for s in twin.state.values())
    assert "moving_mean" not in twin.params["stem_bn"]
    np.testing.assert_allclose(np.asarray(twin(X)), engine(X).data, rtol=2e-5, atol=2e-6)
    y, state = twin.jit_apply_with_state(twin.params, twin.state, X, training=True)  # pure: twin.state unchanged
    np.testing.assert_allclose(np.asarray(y), engine(X, training=True).data, rtol=2e-5, atol=2e-5)
    for name, s in state.items():  # the engine's layers updated their statistics in the call above
        bn = engine.get_layer(name)
        np.testing.assert_allclose(np.asarray(s["moving_mean"]), bn.moving_mean.data, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(s["moving_variance"]), bn.moving_variance.data, rtol=1e-5, atol=1e-6)
        assert not np.allclose(np.asarray(s["moving_mean"]), np.asarray(twin.state[name]["moving_mean"]))
    # inference leaves the state as it is
    _, same = twin.jit_apply_with_state(twin.params, state, X)
    jax.tree_util.tree_map(np.testing.assert_array_equal, same, state)
    # to_engine writes the moving statistics back, and a frozen BatchNormalization runs in inference mode
    fresh = jax_ref.clone_engine(MODEL)
    twin.to_engine(twin.params, state, model=fresh)
    np.testing.assert_array_equal(fresh.get_layer("b1a_bn").moving_variance.data,
                                  np.asarray(state["b1a_bn"]["moving_variance"]))
    fresh.get_layer("stem_bn").trainable = False
    frozen = jax_ref.from_engine(fresh)
    _, after = frozen.jit_apply_with_state(frozen.params, frozen.state, X, training=True)
    np.testing.assert_array_equal(np.asarray(after["stem_bn"]["moving_mean"]),
                                  np.asarray(frozen.state["stem_bn"]["moving_mean"]))
    assert "stem_bn" in frozen.params and frozen.layers[1].frozen_weights == {"gamma", "beta"}


def test_training_parity_with_batch_statistics():
    """SGD with momentum in training mode: loss curves, weights and moving statistics of engine and twin."""
    x = R.normal(size=(24, 8, 8, 3))
    y = R.integers(0, 3, 24)
    before = MODEL.get_weights()
    result = jax_ref.parity(MODEL, x, y, optimizer="sgd", steps=3, batch_size=8, learning_rate=0.05,
                            dtype="float64", training=True, momentum=0.9)
    print(result)
    # (the pre-BN conv biases, whose gradient is 0, sit at rounding noise: measured against sqrt(eps))
    assert result.max_rel_loss_deviation < 1e-12 and result.max_rel_param_deviation < 1e-7
    assert result.max_rel_state_deviation < 1e-12
    moved = [np.max(np.abs(a - b)) for a, b in zip(result.engine_params, before, strict=True)]
    assert min(moved[2:4]) > 1e-3  # the stem's moving statistics moved
    for a, b in zip(MODEL.get_weights(), before, strict=True):  # the user's model is never touched
        np.testing.assert_array_equal(a, b)


def test_several_inputs_and_outputs_with_a_shared_layer():
    nn.set_random_seed(2)
    a, b = nn.Input((5,), name="a"), nn.Input((4, 4, 2), name="b")
    shared = nn.Dense(6, activation="tanh", name="shared")
    ha, hb = shared(a), shared(nn.Dense(5, name="squeeze")(nn.Flatten(name="flatten")(b)))
    merged = nn.Concatenate(name="cat")([nn.Multiply()([ha, hb]), nn.Subtract()([ha, hb])])
    model = nn.Model([a, b], [nn.Dense(3, name="head")(merged), nn.Dense(2, name="aux")(hb)], name="two_by_two")
    xs = [R.normal(size=(4, 5)).astype(np.float32), R.normal(size=(4, 4, 4, 2)).astype(np.float32)]
    ys = [R.integers(0, 3, 4), R.integers(0, 2, 4)]
    twin = jax_ref.from_engine(model)
    assert twin.node_names[:2] == ["shared:0", "flatten"] and twin.output_nodes == ["head", "aux"]
    for got, want in zip(twin(xs), model(xs), strict=True):
        np.testing.assert_allclose(np.asarray(got), want.data, rtol=2e-5, atol=2e-6)
    report = jax_ref.assert_gradients_match(model, xs, ys)
    assert report.max_rel_error < 1e-10 and "shared:1 input" in {e.name for e in report.entries}
    run = jax_ref.parity(model, xs, ys, steps=2, batch_size=2, learning_rate=0.1, dtype="float64")  # lists in
    assert run.max_rel_loss_deviation < 1e-12 and run.max_rel_param_deviation < 1e-12, str(run)
    with pytest.raises(ValueError, match="one input and one output"):
        A.saliency(model, xs[1])


# -- attribution on the residual network (inference mode: moving statistics) ------------------------------------

def test_saliency_and_grad_cam_match_the_engine():
    images = X[:3]
    np.testing.assert_allclose(A.saliency(MODEL, images, target=1), engine_saliency(MODEL, images, target=1),
                               rtol=1e-4, atol=1e-6)
    # Grad-CAM at the first block's sum (inside the graph), by its definition on the engine
    layer = MODEL.get_layer("b1_add")
    probe = nn.Model(MODEL.inputs, [layer.output, MODEL.outputs[0]])
    act, out = probe(images)
    (g,) = grad(out[np.arange(3), np.full(3, 2)].sum(), [act])
    cam = np.maximum((g.data.mean(axis=(1, 2), keepdims=True) * act.data).sum(axis=-1), 0)
    np.testing.assert_allclose(A.grad_cam(MODEL, images, "b1_add", target=2, upsample=False), cam,
                               rtol=1e-4, atol=1e-6)
    assert A.grad_cam(MODEL, images, "b2_tanh").shape == (3, 8, 8)  # after the pool: upsampled from 4 x 4


def test_every_attribution_method_runs_on_the_residual_network():
    image = X[0]
    twin = jax_ref.from_engine(MODEL)
    maps = A.feature_maps(MODEL, image)
    assert list(maps) == twin.node_names
    hidden = nn.Model(MODEL.inputs, MODEL.get_layer("b2_add").output)(image[None]).data[0]
    np.testing.assert_allclose(maps["b2_add"], hidden, rtol=1e-4, atol=1e-5)
    assert A.smoothgrad(MODEL, image, n=2).shape == image.shape
    assert np.isfinite(A.integrated_gradients(MODEL, image, target=0, steps=16)).all()
    occ = A.occlusion(twin, image, target=0, window=4, stride=4)
    occluded = image.copy()
    occluded[:4, :4] = 0.0
    drop = MODEL(image[None]).data[0, 0] - MODEL(occluded[None]).data[0, 0]
    np.testing.assert_allclose(occ[0, 0], drop, rtol=1e-4, atol=1e-5)  # one window: the score's drop itself
    assert A.filters(MODEL, "b2_proj").shape == (1, 1, 4, 6)


# the configurations the graph models above leave out (the engine's layers are matched to Keras in
# tests/nn/test_normalization.py), twin vs engine layer by layer: output and every vjp, float64
LAYER_CASES = [
    ("BatchNormalization", dict(axis=1, momentum=0.9, epsilon=1e-5, center=False), (4, 3, 5), True),
    ("LayerNormalization", dict(axis=(1, 2), scale=False), (3, 4, 5), False),
    ("GroupNormalization", dict(groups=2, axis=1), (2, 4, 5), False),
    ("Concatenate", dict(axis=1), [(2, 3, 2), (2, 1, 2)], False),
    ("Average", dict(), [(2, 3), (2, 3), (2, 3)], False),
]


@pytest.mark.parametrize("name, kwargs, shape, training", LAYER_CASES, ids=lambda c: str(c))
def test_merge_and_normalization_twins_match_the_engine_layer(check_vjp, name, kwargs, shape, training):
    from jax_ref import _layers
    layer = getattr(nn, name)(dtype="float64", **kwargs)
    several = isinstance(shape, list)
    layer.build([(None,) + s[1:] for s in shape] if several else (None,) + shape[1:])
    weights = [R.uniform(0.5, 2.0, w.shape) for w in layer.weights]
    layer.set_weights(weights)
    fn = _layers.build(name, layer.get_config())
    p = dict(zip(layer.weight_names, weights, strict=True))
    stateful = name in _layers.STATE_WEIGHTS
    arrays = [R.normal(1.0, 2.0, s) for s in shape] if several else [R.normal(1.0, 2.0, shape)]

    def twin(*xs):
        x = list(xs) if several else xs[0]
        return fn(p, p, x, training, None)[0] if stateful else fn(p, x, training, None)

    check_vjp(lambda *xs: layer(list(xs) if several else xs[0], training=training), twin, *arrays, tol=1e-10)
