"""Task 8: a gradient check by central differences.

For a scalar function f of an array x, the central difference

    (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

approximates df/dx_i with an error of order eps^2 (plus rounding of order 1e-16 / eps in float64). Compare it
with autodiff through the relative error |a - b| / (|a| + |b|) (0 where both are 0), worst element.
"""

import numpy as np

import tinygrad_cnn as tg  # noqa: F401  (you will need it)


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f (a function of a float64 array, returning a float) at x, one element
    at a time; shaped like x. x itself must be left unchanged."""
    raise NotImplementedError("task8 numerical_gradient")


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max over elements of |a - b| / (|a| + |b|), with 0/0 counted as 0."""
    raise NotImplementedError("task8 relative_error")


def check_gradient(f, x: np.ndarray, eps: float = 1e-6, tolerance: float = 1e-6):
    """Check the engine's gradient of f at x. f takes a ``tg.Tensor`` and returns a scalar Tensor. Return
    ``(passed, error)``: the relative error between the engine's gradient (``tg.grad``) and your
    numerical_gradient, and whether it is below ``tolerance``."""
    raise NotImplementedError("task8 check_gradient")

