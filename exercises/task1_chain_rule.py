"""Task 1: the chain rule on a small graph, by hand.

    a = x * y
    b = sin(a) + y
    f = a * b + exp(b)

``a`` feeds both ``b`` and ``f``, ``y`` feeds both ``a`` and ``b``: where a value fans out, the gradients of its
paths add (the multivariate chain rule). Work on NumPy arrays elementwise (x and y have the same shape). No
autodiff here: write the derivatives out. Graded against the engine's backward pass and ``jax.grad``.
"""

import numpy as np


def chain_rule(x: np.ndarray, y: np.ndarray) -> dict:
    """Return ``{"f": f, "df_db": df/db, "df_da": df/da, "df_dx": df/dx, "df_dy": df/dy}``.

    ``df_db`` is the derivative through f's direct use of b (a held fixed); ``df_da`` the total derivative of f
    with respect to a (both paths: a * b, and a -> b); ``df_dx`` and ``df_dy`` are the gradients at the inputs.
    """
    raise NotImplementedError("task1 chain_rule: write the forward values and the four derivatives by hand")
