"""Graph models (Keras' Functional API): residual and shared-weight gradients, Sequential as a Model, fusion on
any graph, config round trips, intermediate outputs, several inputs and outputs, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, profiler
from tinygrad_cnn.gradcheck import gradcheck

R = np.random.default_rng(0)


def _residual(dtype="float64"):
    x = nn.Input((6, 6, 2), dtype=dtype)
    h = nn.Conv2D(2, 3, padding="same", activation="tanh", dtype=dtype, name="f")(x)
    y = nn.Add(name="add", dtype=dtype)([x, h])
    out = nn.Dense(3, dtype=dtype, name="head")(nn.Flatten(dtype=dtype)(y))
    return nn.Model(x, out, name="residual")


def test_residual_gradient_is_the_sum_of_both_paths():
    model = _residual()
    xs = R.standard_normal((2, 6, 6, 2))
    x = tg.Tensor(xs, requires_grad=True)
    v = R.standard_normal((2, 3))
    (g,) = tg.grad(model(x), [x], grad_output=v)
    # by hand: y = x + f(x); dL/dx = dL/dy + f'(x)^T dL/dy
    conv, head = model.get_layer("f"), model.get_layer("head")
    xt = tg.Tensor(xs, requires_grad=True)
    y = tg.Tensor(xs, requires_grad=True)
    fx = conv(xt)
    (gy,) = tg.grad(F.dense(y.reshape(2, -1), head.kernel, head.bias), [y], grad_output=v)
    (through_f,) = tg.grad(fx, [xt], grad_output=gy.data)
    np.testing.assert_allclose(g.data, gy.data + through_f.data, rtol=1e-12, atol=1e-12)
    assert np.abs(through_f.data).max() > 0.01 and np.abs(gy.data).max() > 0.01  # both paths carry gradient


def test_residual_model_passes_gradcheck_on_input_and_weights():
    model = _residual()
    report = gradcheck(lambda x: model(x), [R.standard_normal((2, 6, 6, 2))], params=model.weights)
    assert report.passed, report


def test_a_layer_used_twice_shares_its_weights_and_their_gradients_add():
    x = nn.Input((4,), dtype="float64")
    shared = nn.Dense(4, activation="tanh", dtype="float64", name="shared")
    out = shared(shared(x))
    model = nn.Model(x, out)
    assert model.layers.count(shared) == 1 and len(shared.inbound_nodes) == 2 and len(model.weights) == 2
    xs, v = R.standard_normal((3, 4)), R.standard_normal((3, 4))
    gk, gb = tg.grad(model(xs), shared.weights, grad_output=v)
    # the same function with the second use's weights as separate copies: the true gradient is the sum
    k2, b2 = (tg.Tensor(w.data.copy(), requires_grad=True) for w in shared.weights)
    k1, b1 = shared.weights
    y = F.dense(F.tanh(F.dense(F.tanh(F.dense(tg.Tensor(xs), k1, b1)), k2, b2)), tg.Tensor(np.eye(4)))
    g1k, g1b, g2k, g2b = tg.grad(y, [k1, b1, k2, b2], grad_output=v)
    np.testing.assert_allclose(gk.data, g1k.data + g2k.data, rtol=1e-12)
    np.testing.assert_allclose(gb.data, g1b.data + g2b.data, rtol=1e-12)
    with pytest.raises(ValueError, match="layer.output is defined for a layer called once.*called 2 times"):
        shared.output  # noqa: B018


def test_sequential_is_a_model_and_matches_the_same_graph():
    layers = [nn.Conv2D(3, 3, activation="relu", dtype="float64"), nn.MaxPooling2D(2), nn.Flatten(dtype="float64"),
              nn.Dense(2, dtype="float64")]
    seq = nn.Sequential([nn.Input((8, 8, 1), dtype="float64")] + layers)
    assert isinstance(seq, nn.Model) and seq.layers == layers
    x = nn.Input((8, 8, 1), dtype="float64")
    y = x
    for layer in layers:
        y = layer(y)
    graph = nn.Model(x, y)  # the very same layers (so the same weights) in a graph model
    xs = R.standard_normal((2, 8, 8, 1))
    np.testing.assert_array_equal(seq(xs).data, graph(xs).data)
    assert seq.get_weights()[0] is not graph.get_weights()[0] and seq.count_params() == graph.count_params()


def _conv_pool_graph(extra_reader: bool):
    x = nn.Input((8, 8, 2), dtype="float64")
    c = nn.Conv2D(4, 3, padding="same", activation="relu", dtype="float64", name="conv")(x)
    p = nn.Flatten(dtype="float64")(nn.MaxPooling2D(2, name="pool", dtype="float64")(c))
    if extra_reader:  # the conv output is read twice: it must be computed on its own, no fusion
        p = nn.Concatenate(dtype="float64")([p, nn.Flatten(dtype="float64")(c)])
    return nn.Model(x, nn.Dense(2, dtype="float64")(p))


@pytest.mark.parametrize("extra_reader", [False, True])
def test_fusion_is_a_rewrite_of_any_graph(extra_reader):
    model = _conv_pool_graph(extra_reader)
    xs = R.standard_normal((2, 8, 8, 2))
    x = tg.Tensor(xs, requires_grad=True)
    with profiler.profile() as prof:
        grads = tg.grad(model(x).sum(), [x] + model.weights)
    forward = prof.counts("forward")
    assert ("ConvReluMaxPool" in forward) == (not extra_reader)
    # layer by layer, unfused: the same values and gradients
    x2 = tg.Tensor(xs, requires_grad=True)
    env = {id(model.inputs[0]): x2}
    for node in model._nodes[1:]:
        args = [env[id(t)] for t in node.inputs]
        env[id(node.output)] = node.layer(args if node.layer.takes_list else args[0])
    loose = tg.grad(env[id(model.outputs[0])].sum(), [x2] + model.weights)
    for a, b in zip(grads, loose, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-13)


def test_config_round_trip_rebuilds_the_graph():
    model = _conv_pool_graph(extra_reader=True)
    clone = nn.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    xs = R.standard_normal((3, 8, 8, 2))
    np.testing.assert_array_equal(clone(xs).data, model(xs).data)
    assert [type(layer).__name__ for layer in clone.layers] == [type(layer).__name__ for layer in model.layers]
    assert clone.get_config()["layers"][-1]["inbound_nodes"] == model.get_config()["layers"][-1]["inbound_nodes"]


def test_intermediate_outputs_make_a_feature_extractor_with_the_same_weights():
    model = _conv_pool_graph(extra_reader=False)
    features = nn.Model(model.inputs, model.get_layer("conv").output)
    xs = R.standard_normal((2, 8, 8, 2))
    conv = model.get_layer("conv")
    np.testing.assert_array_equal(features(xs).data, conv(xs).data)
    assert features.get_layer(index=-1) is conv and features.count_params() == conv.count_params()


def test_several_inputs_and_outputs():
    a, b = nn.Input((3,), dtype="float64", name="a"), nn.Input((3,), dtype="float64", name="b")
    joined = nn.Concatenate(name="cat", dtype="float64")([a, b])
    out1, out2 = nn.Dense(2, dtype="float64", name="o1")(joined), nn.Subtract(name="diff", dtype="float64")([a, b])
    model = nn.Model([a, b], [out1, out2])
    xa, xb = R.standard_normal((4, 3)), R.standard_normal((4, 3))
    y1, y2 = model([xa, xb])
    np.testing.assert_allclose(y2.data, xa - xb)
    assert y1.shape == (4, 2) and model.output_shape == [(None, 2), (None, 3)]
    with pytest.raises(ValueError, match=r"expected a list of 2 inputs"):
        model(xa)


def test_summary_shows_connections_and_the_receptive_field_of_every_path():
    text = _residual().summary(print_fn=None)
    assert "Connected to" in text
    add_row = next(line for line in text.splitlines() if line.startswith("add (Add)"))
    assert "input_layer" in add_row and " f" in add_row
    assert "1 | 3x3" in add_row  # the identity path sees 1 pixel, the conv path 3x3


def test_graph_errors_name_the_layer():
    x, stray = nn.Input((4,)), nn.Input((4,), name="stray")
    y = nn.Add(name="join")([x, stray])
    with pytest.raises(ValueError, match="graph disconnected: 'stray'"):
        nn.Model(x, y)
    with pytest.raises(ValueError, match=r"Add 'bad'.* differ on axis 1"):
        nn.Add(name="bad")([nn.Input((4,)), nn.Input((5,))])
    with pytest.raises(ValueError, match=r"Subtract .*takes a list of exactly 2 inputs; got 3"):
        nn.Subtract()([x, x, x])
    with pytest.raises(TypeError, match="inputs must be a symbolic tensor"):
        nn.Model(np.ones(3), y)
    d = nn.Dense(2, name="same")
    with pytest.raises(ValueError, match=r"layer names must be unique.*\['same'\]"):
        nn.Model(x, nn.Dense(2, name="same")(d(x)))
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        nn.Model(x, d(x)).get_layer("nope")
    with pytest.raises(TypeError, match="holds no values"):
        np.asarray(x)


def test_graph_model_trains_saves_and_loads(tmp_path):
    model = _residual(dtype="float32")
    model.compile(optimizer="adam", loss=F.cross_entropy)
    xs = R.standard_normal((32, 6, 6, 2)).astype(np.float32)
    ys = (xs[:, :3, :, 0].sum(axis=(1, 2)) > 0).astype(np.int64)
    history = model.fit(xs, ys, batch_size=8, epochs=8, seed=0, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    model.save_weights(tmp_path / "w.npz")
    other = _residual(dtype="float32")
    other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.predict(xs), model.predict(xs))
