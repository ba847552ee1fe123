"""Every op of jax_ref.ops against its engine twin (forward and vjp, float64) over hypothesis-drawn configs."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from jax_ref import check_op
from jax_ref import ops as jops

# Hypothesis examples per op family; JAX_REF_EXAMPLES=200 gives a long sweep.
# Each new conv/pool configuration costs an XLA compile (~1 s on a busy CPU), so few by default.
EXAMPLES = int(os.environ.get("JAX_REF_EXAMPLES", "4"))
_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=_HEALTH)
CHEAP = settings(max_examples=3 * EXAMPLES // 2, deadline=None, derandomize=True, suppress_health_check=_HEALTH)
SEEDS = st.integers(0, 2**16)


def _x(seed, shape, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape) * scale


def _act_shape(rank, n, cin, fmt, spatial):
    sp = tuple(spatial[:rank])
    return (n,) + sp + (cin,) if fmt == "channels_last" else (n, cin) + sp


@SETTINGS
@given(seed=SEEDS, rank=st.sampled_from([1, 2, 2, 3]), fmt=st.sampled_from(["channels_last", "channels_first"]),
       spatial=st.lists(st.integers(4, 6), min_size=3, max_size=3), k=st.integers(1, 3), strides=st.integers(1, 2),
       dilation=st.integers(1, 2), groups=st.sampled_from([1, 2]), bias=st.booleans(),
       padding=st.sampled_from(["valid", "same", "causal", "explicit"]))
@example(seed=5, rank=3, fmt="channels_first", spatial=[5, 4, 6], k=2, strides=2, dilation=1, groups=2, bias=True,
         padding="same")
@example(seed=6, rank=3, fmt="channels_last", spatial=[4, 5, 4], k=2, strides=1, dilation=2, groups=1, bias=False,
         padding="explicit")
@example(seed=7, rank=1, fmt="channels_last", spatial=[6, 4, 4], k=3, strides=1, dilation=2, groups=1, bias=True,
         padding="causal")
def test_conv_matches_engine(record_op, seed, rank, fmt, spatial, k, strides, dilation, groups, bias, padding):
    if padding == "causal" and rank != 1:
        padding = "same"
    if padding == "explicit":
        padding = tuple((i % 2, (i + 1) % 3) for i in range(rank))
    cin, filters = 2 * groups, 2 * groups
    x = _x(seed, _act_shape(rank, 2, cin, fmt, spatial))
    kernel = _x(seed + 1, (k,) * rank + (cin // groups, filters))
    b = _x(seed + 2, (filters,)) if bias else None
    name = {1: "conv1d", 2: "conv2d", 3: "conv3d"}[rank]
    record_op(check_op(name, x, kernel, b, strides=strides, padding=padding, dilation_rate=dilation, groups=groups,
                       data_format=fmt, seed=seed))


@SETTINGS
@given(seed=SEEDS, fmt=st.sampled_from(["channels_last", "channels_first"]), h=st.integers(4, 6),
       k=st.integers(1, 3), strides=st.integers(1, 2), dilation=st.integers(1, 2), mult=st.integers(1, 2),
       padding=st.sampled_from(["valid", "same"]))
def test_depthwise_conv2d_matches_engine(record_op, seed, fmt, h, k, strides, dilation, mult, padding):
    x = _x(seed, _act_shape(2, 2, 3, fmt, (h, h + 1)))
    kernel = _x(seed + 1, (k, k, 3, mult))
    record_op(check_op("depthwise_conv2d", x, kernel, _x(seed + 2, (3 * mult,)), strides=strides, padding=padding,
                       dilation_rate=dilation, data_format=fmt, seed=seed))


@SETTINGS
@given(seed=SEEDS, rank=st.sampled_from([1, 2, 2, 3]), fmt=st.sampled_from(["channels_last", "channels_first"]),
       size=st.integers(2, 4), k=st.integers(1, 3), strides=st.integers(1, 3), dilation=st.integers(1, 2),
       padding=st.sampled_from(["valid", "same"]), op=st.sampled_from([None, 0, 1, 2]), bias=st.booleans())
def test_conv_transpose_matches_engine(record_op, seed, rank, fmt, size, k, strides, dilation, padding, op, bias):
    if op is not None and op >= strides:
        op = None
    x = _x(seed, _act_shape(rank, 2, 3, fmt, (size, size + 1, size)))
    kernel = _x(seed + 1, (k,) * rank + (2, 3))
    record_op(check_op("conv_transpose", x, kernel, _x(seed + 2, (2,)) if bias else None, strides=strides,
                       padding=padding, output_padding=op, dilation_rate=dilation, data_format=fmt, seed=seed))


@SETTINGS
@given(seed=SEEDS, op=st.sampled_from(["max_pool", "avg_pool", "lp_pool"]), rank=st.sampled_from([1, 2, 2, 3]),
       fmt=st.sampled_from(["channels_last", "channels_first"]), spatial=st.lists(st.integers(3, 6), min_size=3,
                                                                                   max_size=3),
       pool=st.integers(1, 3), strides=st.sampled_from([None, 1, 2]), padding=st.sampled_from(["valid", "same"]),
       p=st.sampled_from([2, 3]))
@example(seed=8, op="max_pool", rank=3, fmt="channels_first", spatial=[4, 5, 3], pool=2, strides=1, padding="same",
         p=2)
@example(seed=9, op="lp_pool", rank=3, fmt="channels_last", spatial=[4, 5, 3], pool=3, strides=2, padding="same", p=3)
def test_pools_match_engine(record_op, seed, op, rank, fmt, spatial, pool, strides, padding, p):
    x = _x(seed, _act_shape(rank, 2, 2, fmt, spatial))
    assume(min(spatial[:rank]) >= pool)
    kwargs = {"p": p} if op == "lp_pool" else {}
    record_op(check_op(op, x, pool, strides, padding, data_format=fmt, seed=seed, **kwargs))


@CHEAP
@given(seed=SEEDS, op=st.sampled_from(["global_max_pool", "global_avg_pool"]), rank=st.integers(1, 3),
       fmt=st.sampled_from(["channels_last", "channels_first"]), keepdims=st.booleans())
def test_global_pools_match_engine(record_op, seed, op, rank, fmt, keepdims):
    x = _x(seed, _act_shape(rank, 2, 3, fmt, (3, 4, 2)))
    record_op(check_op(op, x, data_format=fmt, keepdims=keepdims, seed=seed))


@CHEAP
@given(seed=SEEDS, op=st.sampled_from(["relu", "softplus", "sigmoid", "tanh", "leaky_relu"]),
       scale=st.sampled_from([0.1, 1.0, 10.0]), slope=st.sampled_from([0.01, 0.2, 0.5]))
def test_activations_match_engine(record_op, seed, op, scale, slope):
    x = _x(seed, (3, 5), scale)
    kwargs = {"negative_slope": slope} if op == "leaky_relu" else {}
    record_op(check_op(op, x, seed=seed, **kwargs))


@CHEAP
@given(seed=SEEDS, op=st.sampled_from(["logsumexp", "log_softmax", "softmax"]), axis=st.sampled_from([-1, 0, 1]),
       scale=st.sampled_from([1.0, 30.0]), keepdims=st.booleans())
def test_softmax_family_matches_engine(record_op, seed, op, axis, scale, keepdims):
    x = _x(seed, (3, 4, 5), scale)
    kwargs = {"keepdims": keepdims} if op == "logsumexp" else {}
    record_op(check_op(op, x, axis=axis, seed=seed, **kwargs))


@CHEAP
@given(seed=SEEDS, onehot=st.booleans(), from_logits=st.booleans(), reduction=st.sampled_from(["mean", "sum", "none"]))
def test_cross_entropy_matches_engine(record_op, seed, onehot, from_logits, reduction):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(6, 4)) if from_logits else rng.uniform(0.05, 1.0, size=(6, 4))
    labels = rng.integers(0, 4, size=6)
    if onehot:
        labels = np.eye(4)[labels]
    record_op(check_op("cross_entropy", logits, labels, from_logits=from_logits, reduction=reduction, seed=seed))


@CHEAP
@given(seed=SEEDS, reduction=st.sampled_from(["mean", "sum", "none"]), bias=st.booleans())
def test_mse_and_dense_match_engine(record_op, seed, reduction, bias):
    record_op(check_op("mse", _x(seed, (4, 3)), _x(seed + 1, (4, 3)), reduction=reduction, seed=seed))
    record_op(check_op("dense", _x(seed, (4, 3)), _x(seed + 1, (3, 5)), _x(seed + 2, (5,)) if bias else None,
                       seed=seed))


def test_softplus_is_finite_at_large_inputs(record_op):
    record_op(check_op("softplus", np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])))
    assert np.isfinite(np.asarray(jax.grad(lambda x: jops.softplus(x).sum())(jnp.array([-1000.0, 1000.0])))).all()


def test_lp_pool_all_zero_window_has_zero_gradient(record_op):
    x = np.zeros((1, 4, 4, 1))
    x[0, 2:, 2:, 0] = [[1.0, -2.0], [0.5, 3.0]]
    report = record_op(check_op("lp_pool", x, 2))
    g = np.asarray(jax.jit(jax.grad(lambda t: jops.lp_pool(t, 2).sum()))(jnp.asarray(x)))
    assert np.isfinite(g).all() and np.all(g[0, :2, :2] == 0)
    assert report["output"].jax == pytest.approx(report["output"].engine, rel=1e-15)  # the twin scales each window


def test_max_pool_tie_goes_to_first_maximum(record_op):
    x = np.ones((1, 2, 2, 1))
    record_op(check_op("max_pool", x, 2))
    g = np.asarray(jax.grad(lambda t: jops.max_pool(t, 2).sum())(jnp.asarray(x)))
    assert g[0, :, :, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_relu_derivative_at_zero_is_zero(record_op):
    record_op(check_op("relu", np.array([-1.0, 0.0, 2.0])))
    assert float(jax.grad(lambda t: jops.relu(t))(0.0)) == 0.0


@pytest.mark.parametrize("training", [False, True])
def test_dropout(record_op, training):
    x = _x(0, (200, 50)) + 3.0
    if not training:
        record_op(check_op("dropout", x, 0.3, False, seed=0))
        return
    y1, y2 = jops.dropout(x, 0.3, True, seed=7), jops.dropout(x, 0.3, True, seed=7)
    assert np.array_equal(y1, y2)  # same seed, same mask
    kept = np.asarray(y1) != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(np.asarray(y1)[kept], x[kept] / 0.7, rtol=1e-12)
    g = np.asarray(jax.grad(lambda t: jops.dropout(t, 0.3, True, seed=7).sum())(jnp.asarray(x)))
    np.testing.assert_allclose(g, kept / 0.7, rtol=1e-12)
    assert not np.any(np.asarray(jops.dropout(x, 1.0, True, seed=1)))


def test_check_op_restores_x64_and_reports_unknown_ops():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        assert check_op("tanh", np.ones(3)).passed
        assert jax.config.jax_enable_x64 is False
    finally:
        jax.config.update("jax_enable_x64", previous)
    with pytest.raises(ValueError, match="conv4d"):
        check_op("conv4d", np.ones(3))


def test_twin_errors_name_the_argument():
    with pytest.raises(ValueError, match="padding='smae'.*did you mean 'same'"):
        jops.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 2)), padding="smae")
    with pytest.raises(ValueError, match="input has 3 channels but kernel expects 4"):
        jops.conv2d(np.ones((1, 4, 4, 3)), np.ones((3, 3, 4, 2)))
    with pytest.raises(ValueError, match="causal"):
        jops.conv2d(np.ones((1, 4, 4, 1)), np.ones((3, 3, 1, 2)), padding="causal")
