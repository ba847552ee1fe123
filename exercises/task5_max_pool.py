"""Task 5: max pooling, forward and backward, with the tie rule.

x is (N, H, W, C); windows are size x size with stride size (non-overlapping), padding "valid": the last rows
or columns that do not fill a window are dropped. out[n, i, j, c] is the maximum of window (i, j).

Backward: each window sends its whole cotangent g[n, i, j, c] to ONE element, the maximum; when several
elements tie for the maximum, the first in row-major order within the window (the one np.argmax over the
flattened window picks) gets it, the others 0 (JAX's and the engine's rule). Cells outside every window get 0.
"""

import numpy as np


def max_pool(x: np.ndarray, size: int) -> np.ndarray:
    """(N, H // size, W // size, C) window maxima."""
    raise NotImplementedError("task5 max_pool")


def max_pool_vjp(x: np.ndarray, size: int, g: np.ndarray) -> np.ndarray:
    """dL/dx shaped like x, for the cotangent g = dL/d max_pool(x, size)."""
    raise NotImplementedError("task5 max_pool_vjp")
