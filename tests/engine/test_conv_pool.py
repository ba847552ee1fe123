"""The fused conv + relu + max-pool primitive: against JAX, against the unfused pair, to second order, with ties."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, profiler
from tinygrad_cnn.gradcheck import assert_gradcheck
from tinygrad_cnn.nn import fusion
from tinygrad_cnn.ops import conv_pool

# (input shape, kernel size, conv strides, dilation, padding, pool, bias)
CASES = [
    ((2, 8, 8, 1), (3, 3), (1, 1), (1, 1), "same", (2, 2), True),     # the reference CNN's first layer
    ((2, 9, 7, 3), (3, 3), (1, 1), (1, 1), "same", (2, 2), True),     # odd sizes: the last row/col is dropped
    ((1, 10, 10, 2), (3, 2), (2, 1), (1, 1), "valid", (2, 3), False),  # strides, no bias, 2x3 windows
    ((2, 11, 11, 2), (3, 3), (1, 1), (2, 2), "same", (3, 3), True),   # dilation, 3x3 windows
    ((3, 12, 4), (3,), (1,), (1,), "causal", (2,), True),             # 1-D, causal padding
    ((2, 9, 3), (2,), (2,), (1,), "valid", (4,), True),               # 1-D, strided, one pooled cell
]


def _jax_conv_relu_pool(x, w, b, strides, dilation, pads, pool):
    d = len(pool)
    spec = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[d]
    y = lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dilation, dimension_numbers=spec)
    y = jnp.maximum(y + (0 if b is None else b), 0)
    window = (1,) + tuple(pool) + (1,)
    return lax.reduce_window(y, -jnp.inf, lax.max, window, window, "VALID")


def _geometry(x_shape, ksize, strides, dilation, padding):
    from tinygrad_cnn.ops.conv_args import conv_args
    k_shape = tuple(ksize) + (x_shape[-1], 4)
    return conv_args("conv", x_shape, k_shape, strides, padding, dilation, 1, "channels_last")[1]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-k{c[1]}-s{c[2]}-r{c[3]}-{c[4]}-p{c[5]}-b{c[6]}")
def test_fused_forward_and_vjps_match_jax(check_vjp, case):
    x_shape, ksize, strides, dilation, padding, pool, bias = case
    rng = np.random.default_rng(0)
    geo = _geometry(x_shape, ksize, strides, dilation, padding)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(tuple(ksize) + (x_shape[-1], 4))
    arrays = (x, w, rng.standard_normal(4)) if bias else (x, w)

    def engine(x, w, b=None):
        return conv_pool.conv_relu_max_pool(x, w, b, geo=geo, pool=pool)

    def reference(x, w, b=None):
        return _jax_conv_relu_pool(x, w, b, geo.strides, geo.dilation, geo.pads, pool)

    check_vjp(engine, reference, *arrays, tol=1e-10)


def _model(kind, fmt="channels_last", dtype="float64"):
    nn.set_random_seed(1)
    if kind == "2d":
        layers = [nn.Input((9, 9, 2) if fmt == "channels_last" else (2, 9, 9)),
                  nn.Conv2D(4, 3, padding="same", activation="relu", data_format=fmt, dtype=dtype),
                  nn.MaxPooling2D(2, data_format=fmt, dtype=dtype),
                  nn.Conv2D(5, 2, activation="relu", use_bias=False, data_format=fmt, dtype=dtype),
                  nn.MaxPooling2D((1, 2), data_format=fmt, dtype=dtype)]
    else:
        layers = [nn.Input((13, 2)), nn.Conv1D(3, 3, padding="causal", activation="relu", dtype=dtype),
                  nn.MaxPooling1D(3, dtype=dtype)]
    return nn.Sequential(layers + [nn.Flatten(dtype=dtype), nn.Dense(3, dtype=dtype)])


def _value_and_grads(model, x, y, fused=True, create_graph=False):
    """Loss, d loss / d x and d loss / d every weight; with ``create_graph``, also d |d loss / d x|^2 / d kernel."""
    if not fused:
        original = fusion.conv_relu_max_pool
        fusion.conv_relu_max_pool = lambda *args: None
    try:
        xt = tg.Tensor(x, requires_grad=True)
        with profiler.profile() as prof:
            loss = F.cross_entropy(model(xt, training=True), y)
            grads = tg.grad(loss, [xt] + model.weights, create_graph=create_graph)
        out = [loss.data] + [g.data for g in grads]
        if create_graph:
            out.append(tg.grad((grads[0] * grads[0]).sum(), [model.weights[0]])[0].data)
    finally:
        if not fused:
            fusion.conv_relu_max_pool = original
    return out, prof.counts("forward")


@pytest.mark.parametrize("create_graph", [False, True], ids=["numpy-vjp", "vjp-by-primitives"])
@pytest.mark.parametrize("kind, fmt", [("2d", "channels_last"), ("2d", "channels_first"), ("1d", "channels_last")])
def test_sequential_fuses_and_agrees_with_the_layer_by_layer_run(kind, fmt, create_graph):
    model = _model(kind, fmt)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3,) + model.input_shape[1:])
    y = rng.integers(0, 3, 3)
    fused, counts = _value_and_grads(model, x, y, create_graph=create_graph)
    plain, plain_counts = _value_and_grads(model, x, y, fused=False, create_graph=create_graph)
    assert counts.get("ConvReluMaxPool") == (2 if kind == "2d" else 1) and "MaxPool" not in counts
    assert plain_counts.get("MaxPool") == (2 if kind == "2d" else 1) and "ConvReluMaxPool" not in plain_counts
    for a, b in zip(fused, plain, strict=True):  # value, first-order gradients (and a second-order one)
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_ties_and_dead_windows_give_the_same_gradients_as_the_pair():
    model = _model("2d")
    x = np.zeros((2, 9, 9, 2))
    x[0, ::2, ::3, 0] = 1.0      # equal values: ties inside windows
    x[1] = -1.0                  # relu kills whole windows: the pooled value is 0 and so is its gradient
    y = np.array([0, 2])
    fused, _ = _value_and_grads(model, x, y)
    plain, _ = _value_and_grads(model, x, y, fused=False)
    for a, b in zip(fused, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("change", [
    {"activation": "tanh"}, {"groups": 2}, {"pool_strides": 1}, {"pool_padding": "same"}, {"regularizer": "l2"}])
def test_pairs_that_do_not_fit_run_layer_by_layer(change):
    conv = nn.Conv2D(4, 3, activation=change.get("activation", "relu"), groups=change.get("groups", 1),
                     activity_regularizer=change.get("regularizer"))
    pool = nn.MaxPooling2D(2, strides=change.get("pool_strides"), padding=change.get("pool_padding", "valid"))
    model = nn.Sequential([nn.Input((8, 8, 2)), conv, pool])
    with profiler.profile() as prof:
        model(np.ones((1, 8, 8, 2), np.float32))
    assert "ConvReluMaxPool" not in prof.counts("forward") and prof.counts("forward")["Conv"] == 1


def test_gradcheck_through_the_fused_pair():
    model = _model("2d")
    x = np.random.default_rng(3).standard_normal((2, 9, 9, 2))
    assert_gradcheck(lambda xt: model(xt).sum(), [x], params=model.parameters())


def test_float32_model_matches_its_unfused_run():
    model = nn.reference_cnn()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, 3)
    fused, _ = _value_and_grads(model, x, y)
    plain, _ = _value_and_grads(model, x, y, fused=False)
    for a, b in zip(fused, plain, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_negative_control_a_vjp_without_the_relu_fold_is_caught(monkeypatch):
    model = _model("2d")
    x = np.random.default_rng(5).standard_normal((3, 9, 9, 2))
    y = np.array([0, 1, 2])
    plain, _ = _value_and_grads(model, x, y, fused=False)
    original = conv_pool.first_max

    def relu_after(taps, initial=None):  # right values, but dead windows keep a winner and pass their cotangent on
        z, idx = original(taps)
        return np.maximum(z, initial, out=z), idx
    monkeypatch.setattr(conv_pool, "first_max", relu_after)
    fused, _ = _value_and_grads(model, x, y)
    assert not all(np.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(fused, plain, strict=True))


def test_an_empty_batch_goes_through_the_fused_pair_and_flatten():
    model = _model("2d")
    x = tg.Tensor(np.zeros((0, 9, 9, 2)), requires_grad=True)
    out = model(x)
    out.sum().backward()
    assert out.shape == (0, 3) and x.grad.shape == x.shape
    assert not np.any(model.weights[0].grad)  # no examples, no gradient


def test_a_nan_in_a_window_makes_its_pooled_value_nan_as_in_the_pair():
    model = _model("2d")
    x = np.random.default_rng(6).standard_normal((1, 9, 9, 2))
    x[0, 4, 4, 0] = np.nan  # reaches every conv output whose window covers it, then their pool windows
    fused_layer = model.layers[1]
    with tg.no_grad():
        fused = fusion.conv_relu_max_pool(model.layers[0], fused_layer, tg.Tensor(x)).data
        plain = fused_layer(model.layers[0](tg.Tensor(x))).data
    assert np.isnan(fused).any()
    np.testing.assert_array_equal(np.isnan(fused), np.isnan(plain))
    np.testing.assert_allclose(fused[~np.isnan(fused)], plain[~np.isnan(plain)], rtol=1e-12)
