"""Task 9 graded: saliency and SmoothGrad with the engine, against jax_ref.attribution (the JAX twin)."""

import numpy as np
import pytest
from grading import assert_close, load

from jax_ref import attribution as A
from tinygrad_cnn import nn

task = load("task9_saliency_smoothgrad")
RNG = np.random.default_rng(9)
X = RNG.random((3, 6, 6, 1)) * np.array([1.0, 4.0, 0.5])[:, None, None, None]   # three different value ranges
TARGET = np.array([0, 2, 1])
NOISE = RNG.normal(size=(4,) + X.shape)


@pytest.fixture(scope="module")
def model():
    nn.set_random_seed(9)
    m = nn.Sequential([nn.Input((6, 6, 1)), nn.Conv2D(4, 3, activation="tanh", dtype="float64"),
                       nn.Flatten(dtype="float64"), nn.Dense(3, dtype="float64")])
    return m


def test_saliency_against_jax(model):
    assert_close("saliency", task.saliency(model, X, TARGET), A.saliency(model, X, TARGET))


def test_smoothgrad_without_noise_is_saliency(model):
    assert_close("smoothgrad(noise_level=0)", task.smoothgrad(model, X, TARGET, NOISE, 0.0),
                 A.saliency(model, X, TARGET))


def test_smoothgrad_against_jax(model):
    sigma = 0.2 * (X.max(axis=(1, 2, 3)) - X.min(axis=(1, 2, 3)))[:, None, None, None]  # per image
    noisy = (X[None] + sigma[None] * NOISE).reshape(-1, *X.shape[1:])
    want = A.saliency(model, noisy, np.tile(TARGET, len(NOISE))).reshape(NOISE.shape).mean(axis=0)
    assert_close("smoothgrad(noise_level=0.2), sigma per image", task.smoothgrad(model, X, TARGET, NOISE, 0.2),
                 want)
