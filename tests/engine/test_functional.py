"""Functional losses and layers vs optax and Keras: cross_entropy, mse, dense, dropout; bad input."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

R = np.random.default_rng(3)
LOGITS = R.standard_normal((6, 4)) * 3
LABELS = np.array([0, 3, 1, 1, 2, 3])
ONE_HOT = np.eye(4)[LABELS]


def _value_and_grad(fn, x0):
    x = tg.Tensor(x0, requires_grad=True)
    out = fn(x)
    v = np.random.default_rng(0).standard_normal(out.shape)
    return out.data, tg.grad(out, [x], grad_output=v)[0].data, v


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("labels", ["int", "one_hot"])
def test_cross_entropy_from_logits_matches_optax(reduction, labels, check_vjp):
    y = LABELS if labels == "int" else ONE_HOT
    ref = {"int": optax.softmax_cross_entropy_with_integer_labels, "one_hot": optax.softmax_cross_entropy}[labels]
    red = {"mean": jnp.mean, "sum": jnp.sum, "none": lambda t: t}[reduction]
    # one-hot labels are floats and so differentiable in both (soft labels); int labels are not
    check_vjp(lambda x, t: F.cross_entropy(x, t, reduction=reduction), lambda x, t: red(ref(x, t)), LOGITS, y)


def test_cross_entropy_batch_axes():
    logits, labels = R.standard_normal((2, 3, 5)), R.integers(0, 5, (2, 3))
    out = F.cross_entropy(tg.Tensor(logits), labels, reduction="none")
    np.testing.assert_allclose(out.data, optax.softmax_cross_entropy_with_integer_labels(logits, labels),
                               rtol=1e-12)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def test_cross_entropy_probabilities_follow_keras():
    """from_logits=False: renormalise rows, clip to [1e-7, 1 - 1e-7], as keras' categorical_crossentropy."""
    keras = _keras()
    probs = np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0], [2.0, 1.0, 1.0], [0.1, 0.1, 0.1]], np.float32)
    labels = np.array([2, 1, 0, 0])
    mine = F.cross_entropy(tg.Tensor(probs), labels, from_logits=False, reduction="none").data
    ref = keras.losses.categorical_crossentropy(np.eye(3, dtype=np.float32)[labels], probs, from_logits=False)
    np.testing.assert_allclose(mine, np.asarray(ref), rtol=1e-6)
    sparse = keras.losses.sparse_categorical_crossentropy(labels, probs, from_logits=False)
    np.testing.assert_allclose(mine, np.asarray(sparse), rtol=1e-6)
    logit_ref = keras.losses.sparse_categorical_crossentropy(labels, np.log(probs + 1), from_logits=True)
    np.testing.assert_allclose(F.cross_entropy(tg.Tensor(np.log(probs + 1)), labels, reduction="none").data,
                               np.asarray(logit_ref), rtol=1e-6)


def test_cross_entropy_probabilities_gradient_matches_jax(check_vjp):
    probs = R.uniform(0.1, 1.0, (5, 3))

    def jax_ce(p, y):
        p = p / p.sum(-1, keepdims=True)
        return -(jnp.log(jnp.clip(p, 1e-7, 1 - 1e-7)) * jax.nn.one_hot(y, 3)).sum(-1).mean()

    check_vjp(lambda p, y: F.cross_entropy(p, y, from_logits=False), jax_ce, probs, np.array([0, 2, 1, 1, 0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_jax(reduction, check_vjp):
    red = {"mean": jnp.mean, "sum": jnp.sum, "none": lambda t: t}[reduction]
    check_vjp(lambda p, t: F.mse(p, t, reduction=reduction), lambda p, t: red(((p - t) ** 2).mean(-1)),
              R.standard_normal((4, 3)), R.standard_normal((4, 3)))


def test_mse_matches_keras():
    keras = _keras()
    p, t = R.standard_normal((4, 3)).astype(np.float32), R.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(F.mse(tg.Tensor(p), t, reduction="none").data,
                               np.asarray(keras.losses.mean_squared_error(t, p)), rtol=1e-6)


def test_dense_batched_and_without_bias(check_vjp):
    check_vjp(lambda x, k: F.dense(x, k), lambda x, k: x @ k, R.standard_normal((2, 5, 3)), R.standard_normal((3, 4)))


# -- dropout ----------------------------------------------------------------------------------------
def test_dropout_identity_when_not_training():
    x = tg.Tensor(R.standard_normal((3, 4)), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x and F.dropout(x, 0.0, training=True) is x


def test_dropout_is_seeded_and_inverted():
    x0 = np.ones((200, 50))
    a = F.dropout(tg.Tensor(x0), 0.3, training=True, seed=7).data
    b = F.dropout(tg.Tensor(x0), 0.3, training=True, seed=7).data
    c = F.dropout(tg.Tensor(x0), 0.3, training=True, seed=8).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a)) == {0.0, 1 / 0.7}
    assert abs((a == 0).mean() - 0.3) < 0.02  # 10,000 draws: 5 standard deviations is 0.023
    assert abs(a.mean() - 1.0) < 0.03  # inverted dropout preserves the mean


def test_dropout_gradient_is_the_mask():
    x = tg.Tensor(R.standard_normal((5, 6)), requires_grad=True)
    y = F.dropout(x, 0.4, training=True, seed=1)
    v = R.standard_normal(y.shape)
    y.backward(v)
    mask = F.dropout(tg.Tensor(np.ones((5, 6))), 0.4, training=True, seed=1).data
    np.testing.assert_allclose(x.grad, v * mask)


def test_dropout_rate_one_gives_zeros_and_zero_gradient():
    x = tg.Tensor(R.standard_normal((4, 4)) * 1e30, requires_grad=True)
    y = F.dropout(x, 1.0, training=True, seed=0)
    y.sum().backward()
    assert (y.data == 0).all() and (x.grad == 0).all() and np.isfinite(x.grad).all()


def test_dropout_keeps_float32():
    assert F.dropout(tg.Tensor(np.ones(4, np.float32)), 0.5, training=True, seed=0).dtype == np.float32


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, match", [
    (lambda: F.cross_entropy(LOGITS, np.array([0, 4, 1, 1, 2, 3])), ValueError,
     r"cross_entropy: labels must be class ids in \[0, 4\); got 4"),
    (lambda: F.cross_entropy(LOGITS, np.array([0, -1, 1, 1, 2, 3])), ValueError,
     r"cross_entropy: labels must be class ids in \[0, 4\); got -1"),
    (lambda: F.cross_entropy(LOGITS, LABELS[:5]), ValueError,
     r"cross_entropy: labels has shape \(5,\) but the predictions need \(6,\)"),
    (lambda: F.cross_entropy(LOGITS, ONE_HOT[:, :3]), ValueError,
     r"cross_entropy: one-hot labels have shape \(6, 3\) but the predictions have shape \(6, 4\)"),
    (lambda: F.cross_entropy(LOGITS, LABELS.astype(str)), TypeError, r"cross_entropy: labels must be integer"),
    (lambda: F.cross_entropy(LOGITS, LABELS, reduction="avg"), ValueError,
     r"cross_entropy: reduction='avg' is not one of 'mean', 'sum', 'none'"),
    (lambda: F.cross_entropy(LOGITS, LABELS, reduction="summ"), ValueError, r"did you mean 'sum'\?"),
    (lambda: F.cross_entropy("logits", LABELS), TypeError, r"cross_entropy: logits must be a Tensor.*got str"),
    (lambda: F.cross_entropy(np.array(1.0), LABELS), ValueError, r"cross_entropy: logits must have a class axis"),
    (lambda: F.relu(object()), TypeError, r"relu: x must be a Tensor or an array; got object"),
    (lambda: F.relu(np.array([1, 2])), TypeError, r"relu: x must have a floating dtype; got int64"),
    (lambda: F.softmax(LOGITS, axis=2), ValueError, r"^softmax: axis=2 is out of range.*\(6, 4\)"),
    (lambda: F.leaky_relu(LOGITS, negative_slope="0.2"), TypeError, r"leaky_relu: negative_slope must be a number"),
    (lambda: F.mse(LOGITS, LOGITS[:3]), ValueError,
     r"mse: predictions have shape \(6, 4\) but targets have shape \(3, 4\)"),
    (lambda: F.dense(LOGITS, np.ones((3, 2))), ValueError,
     r"dense: input has 4 features \(shape \(6, 4\)\) but kernel expects 3 \(kernel shape \(3, 2\)\)"),
    (lambda: F.dense(LOGITS, np.ones(4)), ValueError, r"dense: kernel must have rank 2; got shape \(4,\)"),
    (lambda: F.dense(LOGITS, np.ones((4, 2)), np.ones(3)), ValueError, r"dense: bias must have shape \(2,\)"),
    (lambda: F.dropout(LOGITS, 1.5, training=True), ValueError, r"dropout: rate must be in \[0.0, 1.0\]; got 1.5"),
    (lambda: F.dropout(LOGITS, "half", training=True), TypeError, r"dropout: rate must be a number; got 'half'"),
    (lambda: F.dropout(LOGITS, 0.5, training=True, seed="x"), TypeError, r"seed must be a non-negative int.*'x'"),
])
def test_bad_input_names_argument_and_value(call, error, match):
    with pytest.raises(error, match=match):
        call()
