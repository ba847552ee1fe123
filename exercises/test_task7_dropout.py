"""Task 7 graded: dropout in training (the engine's mask, exactly) and at test time, and its vjp."""

import numpy as np
from grading import assert_close, load

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

task = load("task7_dropout")
X = np.random.default_rng(7).normal(size=(6, 8))


def test_test_time_is_the_identity():
    assert_close("dropout(training=False)", task.dropout(X, 0.5, training=False, seed=3), X, rtol=0, atol=0)


def test_training_matches_the_engine():
    for rate in (0.25, 0.5):
        assert_close(f"dropout(rate={rate}, training=True, seed=3)", task.dropout(X, rate, True, 3),
                     F.dropout(X, rate, True, seed=3).numpy())


def test_training_keeps_the_expected_value():
    ones = np.ones(200_000)
    y = np.asarray(task.dropout(ones, 0.3, True, 11))
    assert abs(y.mean() - 1.0) < 0.01, f"mean of dropout(ones, 0.3) is {y.mean():.4f}; expected 1 (inverted scaling)"
    assert abs((y == 0).mean() - 0.3) < 0.01, f"fraction dropped {(y == 0).mean():.4f}; expected 0.3"


def test_rate_one_gives_zeros_not_nan():
    assert_close("dropout(rate=1)", task.dropout(X, 1.0, True, 0), np.zeros_like(X), rtol=0, atol=0)


def test_vjp_against_the_engine():
    g = np.random.default_rng(70).normal(size=X.shape)
    xt = tg.Tensor(X, requires_grad=True)
    (dx,) = tg.grad(F.dropout(xt, 0.5, True, seed=5), [xt], grad_output=g)
    assert_close("dropout_vjp", task.dropout_vjp(X, 0.5, 5, g), dx.numpy())
