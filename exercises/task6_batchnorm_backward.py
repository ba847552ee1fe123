"""Task 6: batch normalisation in training mode, and its backward pass.

x has its features on the last axis; the statistics run over every other axis (the batch and, for images, the
pixels). With m the number of values per feature,

    mu = mean(x),  var = mean((x - mu)^2)  (biased, as Keras and nn.BatchNormalization),
    x_hat = (x - mu) / sqrt(var + eps),    y = gamma * x_hat + beta.

Backward, for the cotangent g = dL/dy: dbeta = sum g, dgamma = sum g * x_hat (sums over the statistics axes),
and, because mu and var depend on every x,

    dx = gamma / sqrt(var + eps) * (g - mean(g) - x_hat * mean(g * x_hat)).

(Derive it: it is the chain rule through x_hat, var and mu.)
"""

import numpy as np


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """y = gamma * (x - mu) / sqrt(var + eps) + beta, statistics over all axes but the last."""
    raise NotImplementedError("task6 batchnorm_forward")


def batchnorm_vjp(x: np.ndarray, gamma: np.ndarray, g: np.ndarray, eps: float = 1e-3):
    """Return ``(dx, dgamma, dbeta)`` for the cotangent g = dL/dy."""
    raise NotImplementedError("task6 batchnorm_vjp")
