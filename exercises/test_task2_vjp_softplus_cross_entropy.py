"""Task 2 graded: softplus and cross-entropy, forward and vjp, against the engine and jax.vjp; large inputs."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from grading import assert_close, load

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

task = load("task2_vjp_softplus_cross_entropy")
RNG = np.random.default_rng(2)
X = RNG.normal(size=(3, 5)) * 3
G = RNG.normal(size=(3, 5))
LOGITS = RNG.normal(size=(6, 4)) * 2
LABELS = np.array([0, 3, 1, 1, 2, 0])


def _engine_grad(fn, x, g=None):
    xt = tg.Tensor(x, requires_grad=True)
    (dx,) = tg.grad(fn(xt), [xt], grad_output=g)
    return dx.numpy()


def test_softplus_forward():
    assert_close("softplus(x)", task.softplus(X), np.logaddexp(X, 0))


def test_softplus_vjp_against_the_engine():
    assert_close("softplus_vjp", task.softplus_vjp(X, G), _engine_grad(F.softplus, X, G))


def test_softplus_vjp_against_jax():
    _, vjp = jax.vjp(jax.nn.softplus, jnp.asarray(X))
    assert_close("softplus_vjp vs jax.vjp", task.softplus_vjp(X, G), vjp(jnp.asarray(G))[0])


def test_softplus_large_inputs_finite_without_warnings():
    x = np.array([-1000.0, -30.0, 30.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in np.exp is a RuntimeWarning: here it fails the test
        y, d = task.softplus(x), task.softplus_vjp(x, np.ones_like(x))
    assert_close("softplus at |x| = 1000", y, np.logaddexp(x, 0))
    assert_close("softplus' at |x| = 1000", d, _engine_grad(F.softplus, x, np.ones_like(x)))


def test_cross_entropy_forward():
    want = F.cross_entropy(tg.Tensor(LOGITS), LABELS).item()
    assert_close("cross_entropy", task.cross_entropy(LOGITS, LABELS), want)


def test_cross_entropy_vjp_against_the_engine():
    want = _engine_grad(lambda t: F.cross_entropy(t, LABELS), LOGITS, np.float64(0.7))
    assert_close("cross_entropy_vjp (g = 0.7)", task.cross_entropy_vjp(LOGITS, LABELS, 0.7), want)


def test_cross_entropy_vjp_against_jax():
    def ce(z):
        return -jnp.mean(jax.nn.log_softmax(z)[jnp.arange(len(LABELS)), LABELS])

    _, vjp = jax.vjp(ce, jnp.asarray(LOGITS))
    assert_close("cross_entropy_vjp vs jax.vjp", task.cross_entropy_vjp(LOGITS, LABELS, 1.0), vjp(1.0)[0])


def test_cross_entropy_large_logits():
    big = LOGITS * 500
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = task.cross_entropy(big, LABELS), task.cross_entropy_vjp(big, LABELS, 1.0)
    assert_close("cross_entropy at logits ~1000", value, F.cross_entropy(tg.Tensor(big), LABELS).item())
    assert_close("cross_entropy_vjp at logits ~1000", grad,
                 _engine_grad(lambda t: F.cross_entropy(t, LABELS), big, np.float64(1.0)))
