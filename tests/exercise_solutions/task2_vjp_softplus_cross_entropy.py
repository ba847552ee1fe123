"""Reference solution of exercises/task2_vjp_softplus_cross_entropy.py."""

import numpy as np


def _sigmoid(x):
    e = np.exp(-np.abs(x))                # never e^{+large}
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x):
    return np.logaddexp(x, 0.0)


def softplus_vjp(x, g):
    return g * _sigmoid(x)


def _softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True), z - np.log(e.sum(axis=1, keepdims=True))


def cross_entropy(logits, labels):
    _, log_p = _softmax(logits)
    return float(-log_p[np.arange(len(labels)), labels].mean())


def cross_entropy_vjp(logits, labels, g):
    p, _ = _softmax(logits)
    p[np.arange(len(labels)), labels] -= 1.0
    return g * p / len(labels)
