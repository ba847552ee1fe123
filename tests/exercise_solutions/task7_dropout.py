"""Reference solution of exercises/task7_dropout.py."""

import numpy as np


def _multiplier(shape, rate, seed):
    keep = np.random.default_rng(seed).random(shape) >= rate
    return keep * (0.0 if rate >= 1.0 else 1.0 / (1.0 - rate))


def dropout(x, rate, training, seed=0):
    return x * _multiplier(x.shape, rate, seed) if training else x


def dropout_vjp(x, rate, seed, g):
    return g * _multiplier(x.shape, rate, seed)
