"""Numerical edge cases not covered in tests/engine/test_higher_order_and_edges.py: the engine gives the IEEE
results JAX gives (same infinities with the same signs, NaN in the same places, finite values to rounding) in
float32 and float64, forward and vjp. Conventions are listed in docs/numerics.md."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tinygrad_cnn as tg
from jax_ref import ops as J
from tinygrad_cnn import functional as F
from tinygrad_cnn import ops

jax.config.update("jax_enable_x64", True)

INF = np.inf
CASES = {
    # name: (engine fn, jax fn, input, cotangent or None for ones)
    "sigmoid+-1000": (ops.sigmoid, jax.nn.sigmoid, [-1000.0, -30.0, 0.0, 30.0, 1000.0], None),
    "tanh+-1000": (ops.tanh, jnp.tanh, [-1000.0, -20.0, 0.0, 20.0, 1000.0], None),
    "softmax+-1000": (F.softmax, jax.nn.softmax, [[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]],
                      [[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]),
    "logsumexp+-1000": (F.logsumexp, lambda t: jax.nn.logsumexp(t, -1), [[1000.0, 1000.0, -1000.0]], None),
    "logsumexp-masked": (F.logsumexp, lambda t: jax.nn.logsumexp(t, -1), [[-INF, 0.0, 1.0], [-INF, -INF, -INF]],
                         None),
    "log_softmax-masked": (F.log_softmax, jax.nn.log_softmax, [[-INF, 0.0, 1.0]], [[1.0, -2.0, 0.5]]),
    "cross_entropy-probs-0-and-1": (
        lambda t: F.cross_entropy(t, np.array([0, 1]), from_logits=False),
        lambda t: J.cross_entropy(t, np.array([0, 1]), from_logits=False), [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], None),
    "cross_entropy-logits+-1000-onehot": (
        lambda t: F.cross_entropy(t, np.eye(3, dtype=t.dtype)[[2, 0]], reduction="sum"),
        lambda t: J.cross_entropy(t, np.eye(3, dtype=t.dtype)[[2, 0]], reduction="sum"),
        [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]], None),
    "div-by-zero-numerator-grad": (lambda t: t / tg.Tensor(np.zeros(3, t.dtype)), lambda t: t / jnp.zeros(3, t.dtype),
                                   [1.0, -1.0, 0.0], None),
    "div-by-zero-denominator-grad": (lambda t: tg.Tensor(np.array([1.0, -1.0, 0.0], t.dtype)) / t,
                                     lambda t: jnp.array([1.0, -1.0, 0.0], t.dtype) / t, [0.0, 0.0, 0.0], None),
    "div-near-zero": (lambda t: 1.0 / t, lambda t: 1.0 / t, [1e-30, -1e-30, 1e30], None),
    "log-at-zero-and-negative": (ops.log, jnp.log, [0.0, -1.0, 1e-30], None),
    "sqrt-at-zero-and-negative": (ops.sqrt, jnp.sqrt, [0.0, -1.0, 1e-30], None),
    "l2-pool-at-zero": (lambda t: F.lp_pool(t, 2), lambda t: J.lp_pool(t, 2), np.zeros((1, 2, 2, 1)), None),
    "l2-pool-mixed-zero-window": (lambda t: F.lp_pool(t, 2), lambda t: J.lp_pool(t, 2),
                                  [[[[0.0], [0.0], [3.0]], [[0.0], [0.0], [-4.0]]]], None),
    "l3-pool-at-zero": (lambda t: F.lp_pool(t, 2, p=3), lambda t: J.lp_pool(t, 2, p=3), np.zeros((1, 2, 2, 1)), None),
    "mse-overflow": (lambda t: F.mse(t, np.zeros(2, t.dtype)), lambda t: J.mse(t, np.zeros(2, t.dtype)),
                     [1e20, 1e30], None),
}


def _ieee_equal(mine, ref, rtol):
    mine, ref = np.asarray(mine, np.float64), np.asarray(ref, np.float64)
    assert mine.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref), err_msg="NaN in different places")
    np.testing.assert_array_equal(np.isposinf(mine), np.isposinf(ref), err_msg="+inf in different places")
    np.testing.assert_array_equal(np.isneginf(mine), np.isneginf(ref), err_msg="-inf in different places")
    finite = np.isfinite(ref)
    np.testing.assert_allclose(mine[finite], ref[finite], rtol=rtol, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_ieee_results_match_jax(name, dtype):
    engine_fn, jax_fn, x0, v = CASES[name]
    x0 = np.asarray(x0, dtype)
    x = tg.Tensor(x0.copy(), requires_grad=True)
    with np.errstate(divide="raise", invalid="raise"):  # no stray divide/invalid warning on the way
        y = engine_fn(x)
        v = np.ones(y.shape, dtype) if v is None else np.asarray(v, dtype)
        (g,) = tg.grad(y, [x], grad_output=v)
    ref, pullback = jax.vjp(jax.jit(jax_fn), x0)  # one XLA program, not one compile per eager op
    (ref_g,) = pullback(v.astype(np.asarray(ref).dtype))
    assert y.dtype == g.dtype == dtype
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    _ieee_equal(y.data, ref, rtol)
    _ieee_equal(g.data, ref_g, rtol)


@pytest.mark.parametrize("dtype, tiny", [(np.float32, 1e-25), (np.float64, 1e-170)])
def test_l2_pool_where_squares_underflow_is_exact_like_the_twin(dtype, tiny):
    """x^2 underflows to 0 for |x| below ~1e-19 (float32) / 1e-154 (float64): both sides then scale each window by
    its largest |x| and give the exact ||x|| = 2 tiny and gradient x / ||x|| = 1/2 (not the all-zero window)."""
    x = tg.Tensor(np.full((1, 2, 2, 1), tiny, dtype), requires_grad=True)
    y = F.lp_pool(x, 2)
    y.backward(np.ones(y.shape, dtype))
    np.testing.assert_allclose(y.data.item(), 2 * tiny, rtol=1e-6)
    np.testing.assert_allclose(x.grad, 0.5, rtol=1e-6)
    ref, pullback = jax.vjp(jax.jit(lambda t: J.lp_pool(t, 2)), x.data)
    np.testing.assert_allclose(float(ref.ravel()[0]), 2 * tiny, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(pullback(np.ones(y.shape, dtype))[0]), 0.5, rtol=1e-6)


@pytest.mark.parametrize("dtype, x0", [(np.float32, -100.0), (np.float64, -740.0)])
def test_subnormal_results_are_kept_where_xla_flushes_them(dtype, x0):
    """The one documented difference: NumPy keeps IEEE gradual underflow, XLA on CPU flushes subnormals to 0.
    sigmoid(x0) is subnormal: the engine returns it (the accurate value), JAX returns 0."""
    y = ops.sigmoid(tg.Tensor(np.array([x0], dtype))).data[0]
    assert 0 < y < np.finfo(dtype).tiny
    np.testing.assert_allclose(y, np.exp(np.float64(x0)), rtol=0.1)  # few significant bits left
    assert float(jax.nn.sigmoid(jnp.array([x0], dtype))[0]) == 0.0
