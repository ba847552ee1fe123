"""Task 1 graded: each value and derivative against the engine's backward pass and jax.grad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from grading import assert_close, load

import tinygrad_cnn as tg

task = load("task1_chain_rule")
X = np.array([0.8, -1.3, 0.2, 2.0])
Y = np.array([-1.3, 0.4, 1.1, -0.5])


def _engine():
    x, y = tg.Tensor(X, requires_grad=True), tg.Tensor(Y, requires_grad=True)
    a = x * y
    b = a.sin() + y
    f = a * b + b.exp()
    f.sum().backward()
    return f.numpy(), x.grad, y.grad


def _f_of_a_b(a, b):
    return a * b + jnp.exp(b)


@pytest.fixture(scope="module")
def answer():
    return task.chain_rule(X.copy(), Y.copy())


def test_forward_value_f(answer):
    assert_close("f", answer["f"], (X * Y) * (np.sin(X * Y) + Y) + np.exp(np.sin(X * Y) + Y))


def test_df_db_a_held_fixed(answer):
    a, b = X * Y, np.sin(X * Y) + Y
    assert_close("df/db", answer["df_db"], jax.vmap(jax.grad(_f_of_a_b, argnums=1))(a, b))


def test_df_da_both_paths(answer):
    total = jax.vmap(jax.grad(lambda a, y: _f_of_a_b(a, jnp.sin(a) + y)))(X * Y, Y)
    assert_close("df/da (through a * b and through b = sin(a) + y)", answer["df_da"], total)


def test_df_dx_against_the_engine(answer):
    _, gx, _ = _engine()
    assert_close("df/dx", answer["df_dx"], gx)


def test_df_dy_against_the_engine_and_jax(answer):
    _, _, gy = _engine()
    assert_close("df/dy (y feeds a and b: two paths)", answer["df_dy"], gy)
    jax_gy = jax.vmap(jax.grad(lambda x, y: _f_of_a_b(x * y, jnp.sin(x * y) + y), argnums=1))(X, Y)
    assert_close("df/dy against jax.grad", answer["df_dy"], jax_gy)
