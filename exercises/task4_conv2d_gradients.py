"""Task 4: the two gradients of the convolution of task 3.

With out = conv2d(x, kernel, stride) (valid padding, x (N, H, W, C), kernel (kh, kw, C, F)) and the cotangent
g = dL/dout of shape (N, OH, OW, F):

    dL/dkernel[u, v, c, f] = sum_{n, i, j} x[n, i*s + u, j*s + v, c] * g[n, i, j, f]     (a GEMM: patches^T g)
    dL/dx[n, p, q, c]      = sum of g[n, i, j, f] * kernel[u, v, c, f] over every (i, j, u, v, f) with
                             i*s + u = p and j*s + v = q                                 (scatter the windows back)

Cells no window reads (the border when the stride does not divide) get 0. No Python loop over n, i or j.
"""

import numpy as np


def conv2d_vjp(x: np.ndarray, kernel: np.ndarray, g: np.ndarray, stride: int = 1):
    """Return ``(dx, dkernel)``, shaped like x and kernel."""
    raise NotImplementedError("task4 conv2d_vjp")
