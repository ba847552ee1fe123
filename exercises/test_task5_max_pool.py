"""Task 5 graded: max pooling forward and backward (ties: the first maximum) against the engine and JAX."""

import jax
import jax.numpy as jnp
import numpy as np
from grading import assert_close, load

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

task = load("task5_max_pool")
RNG = np.random.default_rng(5)
X = RNG.normal(size=(2, 5, 6, 3))          # 5 rows: the last one fills no 2x2 window
TIES = np.round(RNG.random((1, 4, 4, 2)) * 2) / 2   # values in {0, 0.5, 1, 1.5, 2}: many ties


def _engine_vjp(x, g):
    xt = tg.Tensor(x, requires_grad=True)
    (dx,) = tg.grad(F.max_pool(xt, 2), [xt], grad_output=g)
    return dx.numpy()


def _jax_pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def test_forward_against_the_engine_and_jax():
    assert_close("max_pool", task.max_pool(X, 2), F.max_pool(X, 2).numpy())
    assert_close("max_pool vs lax.reduce_window", task.max_pool(X, 2), _jax_pool(X))


def test_backward_against_the_engine():
    g = RNG.normal(size=(2, 2, 3, 3))
    assert_close("max_pool_vjp", task.max_pool_vjp(X, 2, g), _engine_vjp(X, g))


def test_backward_against_jax():
    g = RNG.normal(size=(2, 2, 3, 3))
    _, vjp = jax.vjp(_jax_pool, X)
    assert_close("max_pool_vjp vs jax.vjp", task.max_pool_vjp(X, 2, g), vjp(g)[0])


def test_ties_send_everything_to_the_first_maximum():
    g = RNG.normal(size=(1, 2, 2, 2))
    got = task.max_pool_vjp(TIES, 2, g)
    assert_close("max_pool_vjp with ties (first maximum in row-major order)", got, _engine_vjp(TIES, g))
    _, vjp = jax.vjp(_jax_pool, TIES)
    assert_close("max_pool_vjp with ties vs jax.vjp", got, vjp(g)[0])
