"""Task 6 graded: BatchNorm in training mode, forward and backward, against nn.BatchNormalization and jax.vjp."""

import jax
import jax.numpy as jnp
import numpy as np
from grading import assert_close, load

import tinygrad_cnn as tg
from tinygrad_cnn import nn

task = load("task6_batchnorm_backward")
RNG = np.random.default_rng(6)
X = RNG.normal(size=(4, 3, 3, 5)) * 2 + 1
GAMMA, BETA = RNG.normal(size=5), RNG.normal(size=5)
G = RNG.normal(size=X.shape)
EPS = 1e-3


def _engine():
    layer = nn.BatchNormalization(epsilon=EPS, dtype="float64")
    layer.build(X.shape)
    layer.set_weights([GAMMA, BETA, np.zeros(5), np.ones(5)])
    x = tg.Tensor(X, requires_grad=True)
    y = layer(x, training=True)
    dx, dgamma, dbeta = tg.grad(y, [x, layer.gamma, layer.beta], grad_output=G)
    return y.numpy(), dx.numpy(), dgamma.numpy(), dbeta.numpy()


def _jax_bn(x, gamma, beta):
    mu = x.mean(axis=(0, 1, 2))
    var = ((x - mu) ** 2).mean(axis=(0, 1, 2))
    return gamma * (x - mu) / jnp.sqrt(var + EPS) + beta


def test_forward_against_the_engine():
    assert_close("batchnorm_forward", task.batchnorm_forward(X, GAMMA, BETA, EPS), _engine()[0])


def test_dbeta():
    assert_close("dbeta", task.batchnorm_vjp(X, GAMMA, G, EPS)[2], _engine()[3])


def test_dgamma():
    assert_close("dgamma", task.batchnorm_vjp(X, GAMMA, G, EPS)[1], _engine()[2])


def test_dx_against_the_engine():
    assert_close("dx", task.batchnorm_vjp(X, GAMMA, G, EPS)[0], _engine()[1])


def test_dx_against_jax():
    _, vjp = jax.vjp(_jax_bn, X, GAMMA, BETA)
    assert_close("dx vs jax.vjp", task.batchnorm_vjp(X, GAMMA, G, EPS)[0], vjp(G)[0])
