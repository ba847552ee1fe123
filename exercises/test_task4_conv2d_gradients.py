"""Task 4 graded: the convolution's input and kernel gradients against the engine and jax.vjp."""

import jax
import numpy as np
import pytest
from grading import assert_close, load

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

task = load("task4_conv2d_gradients")
RNG = np.random.default_rng(4)
X = RNG.normal(size=(2, 7, 6, 3))
K = RNG.normal(size=(3, 2, 3, 4))


def _engine(stride):
    x, k = tg.Tensor(X, requires_grad=True), tg.Tensor(K, requires_grad=True)
    out = F.conv2d(x, k, strides=stride)
    g = np.random.default_rng(40 + stride).normal(size=out.shape)
    dx, dk = tg.grad(out, [x, k], grad_output=g)
    return g, dx.numpy(), dk.numpy()


@pytest.mark.parametrize("stride", [1, 2])
def test_kernel_gradient_against_the_engine(stride):
    g, _, dk = _engine(stride)
    assert_close(f"dkernel (stride {stride})", task.conv2d_vjp(X, K, g, stride)[1], dk)


@pytest.mark.parametrize("stride", [1, 2])
def test_input_gradient_against_the_engine(stride):
    g, dx, _ = _engine(stride)
    assert_close(f"dx (stride {stride}; with stride 2 the last row is read by no window)",
                 task.conv2d_vjp(X, K, g, stride)[0], dx)


def test_both_gradients_against_jax():
    g, _, _ = _engine(1)

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    _, vjp = jax.vjp(conv, X, K)
    want_dx, want_dk = vjp(g)
    dx, dk = task.conv2d_vjp(X, K, g, 1)
    assert_close("dx vs jax.vjp", dx, want_dx)
    assert_close("dkernel vs jax.vjp", dk, want_dk)
