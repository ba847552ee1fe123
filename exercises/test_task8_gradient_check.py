"""Task 8 graded: central differences against the engine's gradients, and a planted bug caught."""

import numpy as np
import pytest
from grading import assert_close, load

import tinygrad_cnn as tg
from tinygrad_cnn.function import Function

task = load("task8_gradient_check")
X = np.random.default_rng(8).normal(size=(3, 4))


class Cube(Function):
    """y = x^3.   vjp: g * 3 x^2."""

    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def vjp(ctx, g):
        (x,) = ctx.inputs
        return (g * 3.0 * x * x,)


class BuggyCube(Cube):
    """y = x^3 with a planted bug: the vjp forgets the factor 3."""

    @staticmethod
    def vjp(ctx, g):
        (x,) = ctx.inputs
        return (g * x * x,)


def _f(t):
    return (t.tanh() * t * t).sum()


def test_numerical_gradient_against_the_engine():
    xt = tg.Tensor(X, requires_grad=True)
    (auto,) = tg.grad(_f(xt), [xt])
    got = task.numerical_gradient(lambda a: _f(tg.Tensor(a)).item(), X.copy())
    assert_close("numerical_gradient of sum(tanh(x) x^2)", got, auto.numpy(), rtol=1e-7, atol=1e-9)


def test_numerical_gradient_leaves_x_alone():
    x = X.copy()
    task.numerical_gradient(lambda a: float((a ** 2).sum()), x)
    assert_close("x after numerical_gradient (it must not change)", x, X, rtol=0, atol=0)


def test_relative_error():
    assert task.relative_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert task.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert task.relative_error(np.array([2.0]), np.array([-2.0])) == pytest.approx(1.0)


def test_check_passes_a_correct_vjp():
    passed, error = task.check_gradient(lambda t: Cube.apply(t).sum() * 0.5, X)
    assert passed and error < 1e-6, f"check_gradient on a correct vjp: passed={passed}, error={error:.2e}"


def test_check_catches_a_wrong_vjp():
    passed, error = task.check_gradient(lambda t: BuggyCube.apply(t).sum() * 0.5, X)
    assert not passed, f"check_gradient passed a vjp missing a factor 3 (error {error:.2e})"
    assert error == pytest.approx(0.5), f"error {error}; with the factor 3 missing it is |1 - 3| / (1 + 3) = 0.5"
