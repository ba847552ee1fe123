"""Task 3 graded: im2col's layout, and conv2d against the engine's F.conv2d and lax.conv_general_dilated."""

import jax
import numpy as np
import pytest
from grading import assert_close, load

from tinygrad_cnn import functional as F

task = load("task3_conv2d_im2col")
RNG = np.random.default_rng(3)
X = RNG.normal(size=(2, 7, 6, 3))
K = RNG.normal(size=(3, 2, 3, 4))


def _jax_conv(x, k, s):
    return jax.lax.conv_general_dilated(x, k, (s, s), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_im2col_shape():
    got = task.im2col(X, 3, 2, stride=2)
    assert got is not None and np.shape(got) == (2, 3, 3, 18), f"im2col: shape {np.shape(got)}, expected (2, 3, 3, 18)"


@pytest.mark.parametrize("stride", [1, 2])
def test_im2col_rows_in_u_v_c_order(stride):
    got = task.im2col(X, 3, 2, stride=stride)
    oh, ow = (7 - 3) // stride + 1, (6 - 2) // stride + 1
    want = np.stack([np.stack([X[:, i * stride:i * stride + 3, j * stride:j * stride + 2, :].reshape(2, -1)
                               for j in range(ow)], axis=1) for i in range(oh)], axis=1)
    assert_close(f"im2col(stride={stride})", got, want, rtol=0, atol=0)


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_against_the_engine(stride):
    assert_close(f"conv2d(stride={stride})", task.conv2d(X, K, stride), F.conv2d(X, K, strides=stride).numpy())


def test_conv2d_against_jax():
    assert_close("conv2d vs lax.conv_general_dilated", task.conv2d(X, K, 1), _jax_conv(X, K, 1))
