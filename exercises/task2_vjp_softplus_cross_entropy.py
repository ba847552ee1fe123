"""Task 2: vector-Jacobian products for softplus and for softmax cross-entropy.

A primitive's vjp takes the cotangent g = dL/dy of its output and returns dL/dx = J^T g.

* softplus(x) = log(1 + e^x), elementwise. Its derivative is the logistic sigmoid. Both must stay finite and
  warning-free for |x| = 1000 (hint: ``np.logaddexp``; a sigmoid that never computes e^{+large}).
* cross_entropy(logits, labels) = mean over the batch of -log softmax(logits)[label], logits of shape (N, K),
  labels N ints. Its vjp for a scalar cotangent g is g * (softmax(logits) - one_hot(labels)) / N. Stable for
  logits of size 1000 (subtract the row maximum).
"""

import numpy as np


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) elementwise, finite for any finite x."""
    raise NotImplementedError("task2 softplus")


def softplus_vjp(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """dL/dx = g * softplus'(x), with g = dL/d softplus(x) of the same shape as x."""
    raise NotImplementedError("task2 softplus_vjp")


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy of logits (N, K) against integer labels (N,)."""
    raise NotImplementedError("task2 cross_entropy")


def cross_entropy_vjp(logits: np.ndarray, labels: np.ndarray, g: float) -> np.ndarray:
    """dL/dlogits (N, K) for the scalar cotangent g = dL/d cross_entropy."""
    raise NotImplementedError("task2 cross_entropy_vjp")
