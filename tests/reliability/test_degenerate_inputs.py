"""Empty and degenerate inputs give JAX's result (empty outputs, zero gradients, -inf for an empty logsumexp),
never a reshape error from deep inside; and lp_pool with a huge p stays finite and exact."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn

jax.config.update("jax_enable_x64", True)
T = tg.Tensor
RNG = np.random.default_rng(0)


def _leaf(shape):
    return T(RNG.standard_normal(shape), requires_grad=True)


def _jax_conv(x, k, padding="VALID", groups=1):
    return jax.lax.conv_general_dilated(x, k, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=groups)


CONV_CASES = {  # name: (x shape, kernel shape, padding, groups)
    "empty-batch": ((0, 6, 6, 3), (3, 3, 3, 4), "valid", 1),
    "empty-batch-same": ((0, 6, 6, 3), (3, 3, 3, 4), "same", 1),
    "empty-batch-groups": ((0, 6, 6, 3), (3, 3, 1, 3), "valid", 3),
    "zero-filters": ((2, 6, 6, 3), (3, 3, 3, 0), "valid", 1),
    "zero-input-channels": ((2, 6, 6, 0), (3, 3, 0, 4), "valid", 1),
}


@pytest.mark.parametrize("name", list(CONV_CASES))
def test_degenerate_conv_matches_jax_forward_and_gradients(name):
    xs, ks, padding, groups = CONV_CASES[name]
    x, k = _leaf(xs), _leaf(ks)
    y = F.conv2d(x, k, padding=padding, groups=groups)
    ref, vjp = jax.vjp(lambda a, b: _jax_conv(a, b, padding.upper(), groups), x.data, k.data)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y.data, np.asarray(ref))
    g = RNG.standard_normal(y.shape)
    y.backward(g)
    gx, gk = vjp(g)
    np.testing.assert_array_equal(x.grad, np.asarray(gx))
    np.testing.assert_array_equal(k.grad, np.asarray(gk))


@pytest.mark.parametrize("relu", [False, True])
def test_empty_batch_through_a_model_fused_and_unfused(relu):
    """The fused conv + relu + max-pool primitive (model call) and the layers one by one (unfused) give the same
    empty output, and the weight gradients of an empty batch are zeros (as JAX's)."""
    model = nn.Sequential([nn.Input((6, 6, 3)), nn.Conv2D(2, 3, activation="relu" if relu else None),
                           nn.MaxPooling2D(2), nn.AveragePooling2D(1), nn.Flatten(), nn.Dense(3)])
    x = np.zeros((0, 6, 6, 3), np.float32)
    fused = model(x)
    h = T(x)
    for layer in model.layers:
        h = layer(h)
    assert fused.shape == h.shape == (0, 3)
    F.cross_entropy(fused, np.zeros(0, np.int64), reduction="sum").backward()
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("pool", ["max_pool", "avg_pool", "lp_pool"])
def test_empty_batch_pooling_is_empty(pool):
    x = _leaf((0, 6, 6, 3))
    y = getattr(F, pool)(x, 3, strides=1, padding="same")
    assert y.shape == (0, 6, 6, 3)
    y.backward(np.zeros(y.shape))
    assert x.grad.shape == x.shape


def test_softmax_and_logsumexp_over_an_empty_axis_as_jax():
    x = T(np.zeros((2, 0)))
    assert F.softmax(x).shape == np.asarray(jax.nn.softmax(jnp.zeros((2, 0)))).shape == (2, 0)
    np.testing.assert_array_equal(F.logsumexp(x, 1).data, np.asarray(jax.nn.logsumexp(jnp.zeros((2, 0)), 1)))


def test_cross_entropy_on_zero_examples_is_zero_as_keras():
    """Keras' "sum_over_batch_size" divides with divide_no_nan: 0 examples give a loss of 0 (not jnp.mean's NaN),
    for class ids and one-hot rows alike; the gradient is empty."""
    logits = _leaf((0, 3))
    loss = F.cross_entropy(logits, np.zeros(0, np.int64))
    assert loss.item() == 0.0 and F.cross_entropy(logits, np.zeros((0, 3))).item() == 0.0
    loss.backward()
    assert logits.grad.shape == (0, 3)


@pytest.mark.parametrize("kwargs", [dict(pool_size=2), dict(pool_size=3, strides=1, padding="same"),
                                    dict(pool_size=2, ceil_mode=True)])
def test_lp_pool_with_a_huge_p_is_finite_and_exact(kwargs):
    """p = 100 on values up to 20 overflows float32 (20^100 = 1e130) and 1e-3^100 underflows it: the scaled form
    gives float64's unscaled result (where nothing overflows) to float32 precision, values and gradients."""
    x64 = RNG.uniform(0.5, 20.0, (2, 5, 5, 3)) * RNG.choice([-1.0, 1.0], (2, 5, 5, 3))
    x64[0] *= 1e-4
    x = T(x64.astype(np.float32), requires_grad=True)
    y = F.lp_pool(x, p=100.0, **kwargs)
    assert np.isfinite(y.data).all()
    ref = T(x64, requires_grad=True)
    y_ref = F.lp_pool(ref, p=100.0, **kwargs)
    g = RNG.standard_normal(y.shape)
    y.backward(g.astype(np.float32))
    y_ref.backward(g)
    np.testing.assert_allclose(y.data, y_ref.data, rtol=2e-6)
    np.testing.assert_allclose(x.grad, ref.grad, rtol=1e-4, atol=1e-6 * np.abs(ref.grad).max())


def test_lp_pool_plain_form_overflows_without_the_scaling():
    """Negative control: the unscaled float32 form of the same p = 100 window is inf."""
    with np.errstate(over="ignore"):
        assert np.isinf(np.sum(np.float32(20.0) ** np.float32(100.0)))
    assert np.isfinite(F.lp_pool(T(np.full((1, 2, 2, 1), 20.0, np.float32)), 2, p=100.0).data).all()
