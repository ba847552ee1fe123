"""Gradients of gradients vs JAX; ties and kinks as DESIGN section 6 fixes them; extreme inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from vjp_pair import max_rel_error

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import ops

R = np.random.default_rng(11)
X = R.standard_normal((3, 4))
W = R.standard_normal((4, 4))
U = R.standard_normal((3, 4))


def engine_composite(x, w):
    """Touches matmul, tanh, softplus, sigmoid, exp, log, sqrt, div, pow, max, getitem, mean, log_softmax."""
    h = ops.tanh(x @ w) + ops.softplus(x) * ops.sigmoid(x)
    z = h[:, [0, 2, 2, 3]] ** 2 / ops.sqrt(ops.exp(x) + 1.0) + ops.log(x * x + 1.0)
    return F.log_softmax(z, -1).mean() + z.max(axis=1).sum() * 0.1


def jax_composite(x, w):
    h = jnp.tanh(x @ w) + jax.nn.softplus(x) * jax.nn.sigmoid(x)
    z = h[:, jnp.array([0, 2, 2, 3])] ** 2 / jnp.sqrt(jnp.exp(x) + 1.0) + jnp.log(x * x + 1.0)
    return jax.nn.log_softmax(z, -1).mean() + z.max(axis=1).sum() * 0.1


def test_first_derivative_of_composite():
    x, w = tg.Tensor(X, requires_grad=True), tg.Tensor(W, requires_grad=True)
    gx, gw = tg.grad(engine_composite(x, w), [x, w])
    rx, rw = jax.jit(jax.grad(jax_composite, argnums=(0, 1)))(X, W)
    assert max_rel_error(gx.data, rx) < 1e-10 and max_rel_error(gw.data, rw) < 1e-10


def test_hessian_vector_product_matches_jax():
    """d/dx <grad f(x), u> = H u, through create_graph=True, vs jax.grad of jax.grad."""
    x, w = tg.Tensor(X, requires_grad=True), tg.Tensor(W, requires_grad=True)
    (gx,) = tg.grad(engine_composite(x, w), [x], create_graph=True)
    hvp_x, hvp_w = tg.grad((gx * U).sum(), [x, w])
    ref_x, ref_w = jax.jit(jax.grad(lambda a, b: jnp.vdot(jax.grad(jax_composite)(a, b), U), argnums=(0, 1)))(X, W)
    assert max_rel_error(hvp_x.data, ref_x) < 1e-9
    assert max_rel_error(hvp_w.data, ref_w) < 1e-9


def test_full_hessian_of_small_function_matches_jax():
    x0 = R.standard_normal(5)

    def engine_f(x):
        return (ops.sigmoid(x) * x.exp()).sum() + (x ** 3).mean() + F.logsumexp(x * 2.0, 0)

    def jax_f(x):
        return (jax.nn.sigmoid(x) * jnp.exp(x)).sum() + (x ** 3).mean() + jax.nn.logsumexp(x * 2.0, 0)

    x = tg.Tensor(x0, requires_grad=True)
    (g,) = tg.grad(engine_f(x), [x], create_graph=True)
    rows = [tg.grad(g[i], [x], retain_graph=True)[0].data for i in range(5)]
    assert max_rel_error(np.stack(rows), jax.jit(jax.hessian(jax_f))(x0)) < 1e-10


def test_second_order_of_dense_cross_entropy():
    x0, k0, y = R.standard_normal((4, 3)), R.standard_normal((3, 5)), np.array([0, 4, 2, 2])
    v = R.standard_normal((3, 5))
    k = tg.Tensor(k0, requires_grad=True)
    (gk,) = tg.grad(F.cross_entropy(F.dense(tg.Tensor(x0), k), y), [k], create_graph=True)
    (hv,) = tg.grad((gk * v).sum(), [k])

    def loss(kk):
        return optax.softmax_cross_entropy_with_integer_labels(x0 @ kk, y).mean()

    ref = jax.jit(lambda kk, vv: jax.jvp(jax.grad(loss), (kk,), (vv,))[1])(k0, v)  # H is symmetric: H v = v^T H
    assert max_rel_error(hv.data, ref) < 1e-10


# -- ties and kinks ------------------------------------------------------------------------------------
def _grad(fn, x0, v=None):
    x = tg.Tensor(np.asarray(x0, np.float64), requires_grad=True)
    out = fn(x)
    return tg.grad(out, [x], grad_output=v)[0].data


def test_relu_derivative_at_zero_is_zero():
    x0 = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_grad(lambda x: ops.relu(x).sum(), x0), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(jax.grad(lambda x: jax.nn.relu(x).sum())(x0), [0.0, 0.0, 1.0])


def test_leaky_relu_and_abs_at_zero_as_jax():
    x0 = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(_grad(lambda x: ops.leaky_relu(x, 0.2).sum(), x0),
                                  jax.grad(lambda x: jax.nn.leaky_relu(x, 0.2).sum())(x0))
    np.testing.assert_array_equal(_grad(lambda x: ops.abs(x).sum(), x0), jax.grad(lambda x: jnp.abs(x).sum())(x0))


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), (0, True), ((0, 1), False)])
def test_reductions_split_ties_evenly_as_jnp(reduce, axis, keepdims):
    x0 = np.array([[3.0, 1.0, 3.0, 3.0], [-2.0, -2.0, 0.5, -2.0], [3.0, 0.0, 0.0, 3.0]])
    out_shape = np.shape(getattr(np, reduce)(x0, axis=axis, keepdims=keepdims))
    v = R.standard_normal(out_shape)
    mine = _grad(lambda x: getattr(x, reduce)(axis=axis, keepdims=keepdims), x0, v)
    _, pullback = jax.vjp(lambda x: getattr(jnp, reduce)(x, axis=axis, keepdims=keepdims), x0)
    np.testing.assert_allclose(mine, pullback(v)[0], rtol=1e-15, atol=0)


def test_max_tie_of_two_halves():
    np.testing.assert_array_equal(_grad(lambda x: x.max(), [1.0, 2.0, 2.0]), [0.0, 0.5, 0.5])


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (0.5, 0.5), (None, 1.0), (0.0, None)])
def test_clip_at_bounds_as_jnp(lo, hi):
    x0 = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    mine = _grad(lambda x: (x.clip(lo, hi) * np.arange(1.0, 6.0)).sum(), x0)
    ref = jax.grad(lambda x: (jnp.clip(x, lo, hi) * jnp.arange(1.0, 6.0)).sum())(x0)
    np.testing.assert_array_equal(mine, ref)


def test_pow_and_sqrt_at_zero_as_jax():
    x0 = np.array([0.0, 1.0])
    np.testing.assert_array_equal(_grad(lambda x: ops.sqrt(x).sum(), x0), jax.grad(lambda x: jnp.sqrt(x).sum())(x0))
    np.testing.assert_array_equal(_grad(lambda x: (x ** 2.0).sum(), x0), jax.grad(lambda x: (x ** 2.0).sum())(x0))
    b = tg.Tensor(np.array([2.0, 3.0]), requires_grad=True)
    (gb,) = tg.grad((tg.Tensor(x0) ** b).sum(), [b])  # d/db 0**b = 0 (log 0 read as 0), as JAX
    np.testing.assert_array_equal(gb.data, jax.grad(lambda bb: (x0 ** bb).sum())(np.array([2.0, 3.0])))


def test_division_and_log_at_zero_give_ieee_results():
    with np.errstate(all="raise"):  # no NumPy warning escapes either
        y = tg.Tensor(np.array([1.0, -1.0, 0.0])) / tg.Tensor(np.zeros(3))
        lg = ops.log(tg.Tensor(np.array([0.0, -1.0])))
    np.testing.assert_array_equal(y.data[:2], [np.inf, -np.inf])
    assert np.isnan(y.data[2]) and lg.data[0] == -np.inf and np.isnan(lg.data[1])


# -- extreme logits ------------------------------------------------------------------------------------
EXTREME = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0], [1000.0, 1000.0, 3.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_at_plus_minus_1000(dtype):
    x0 = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype)
    x = tg.Tensor(x0, requires_grad=True)
    y = ops.softplus(x)
    y.sum().backward()
    assert y.dtype == dtype and np.isfinite(y.data).all() and np.isfinite(x.grad).all()
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y.data, jax.nn.softplus(x0), rtol=tol)
    np.testing.assert_allclose(x.grad, jax.grad(lambda t: jax.nn.softplus(t).sum())(x0), rtol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_and_cross_entropy_at_plus_minus_1000(dtype):
    x0 = EXTREME.astype(dtype)
    labels = np.array([1, 2, 0])
    x = tg.Tensor(x0, requires_grad=True)
    ls = F.log_softmax(x)
    loss = F.cross_entropy(x, labels)
    loss.backward()
    assert ls.dtype == loss.dtype == x.grad.dtype == dtype
    assert np.isfinite(ls.data).all() and np.isfinite(loss.data) and np.isfinite(x.grad).all()
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(ls.data, jax.nn.log_softmax(x0), rtol=tol, atol=tol)
    ref_loss, ref_grad = jax.jit(jax.value_and_grad(
        lambda t: optax.softmax_cross_entropy_with_integer_labels(t, labels).mean()))(x0)
    np.testing.assert_allclose(loss.data, ref_loss, rtol=tol)
    np.testing.assert_allclose(x.grad, ref_grad, rtol=tol, atol=tol)


def test_sigmoid_tails_keep_relative_accuracy():
    x0 = np.array([-700.0, -100.0, -40.0, 40.0])
    np.testing.assert_allclose(ops.sigmoid(tg.Tensor(x0)).data, jax.nn.sigmoid(x0), rtol=1e-14)
