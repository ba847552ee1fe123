"""Reference solution of exercises/task8_gradient_check.py."""

import numpy as np

import tinygrad_cnn as tg


def numerical_gradient(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)     # a copy: the caller's x stays as it was
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old - eps
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.abs(a) + np.abs(b)
    return float(np.max(np.where(den > 0, np.abs(a - b) / np.where(den > 0, den, 1.0), 0.0)))


def check_gradient(f, x, eps=1e-6, tolerance=1e-6):
    xt = tg.Tensor(np.asarray(x, np.float64), requires_grad=True)
    (auto,) = tg.grad(f(xt), [xt])
    numeric = numerical_gradient(lambda a: f(tg.Tensor(a)).item(), x, eps)
    error = relative_error(auto.numpy(), numeric)
    return error < tolerance, error
