"""Task 3: a 2-D convolution (what a conv layer computes: a cross-correlation) as im2col + one GEMM.

Layouts are Keras': x is (N, H, W, C) (channels last), the kernel (kh, kw, C, F). Padding "valid", stride s:
the output is (N, OH, OW, F) with OH = (H - kh) // s + 1, OW = (W - kw) // s + 1, and

    out[n, i, j, f] = sum_{u, v, c} x[n, i*s + u, j*s + v, c] * kernel[u, v, c, f]

im2col copies each window into one row: patches[n, i, j, :] = x[n, i*s:i*s+kh, j*s:j*s+kw, :].ravel(), in
(u, v, c) order, the order of kernel.reshape(kh * kw * C, F); the convolution is then one matrix product.
No Python loop over n, i or j (a loop over the kh * kw kernel taps is fine; so is
``np.lib.stride_tricks.sliding_window_view``).
"""

import numpy as np


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1) -> np.ndarray:
    """The windows of x as rows: shape (N, OH, OW, kh * kw * C), each row in (u, v, c) order."""
    raise NotImplementedError("task3 im2col")


def conv2d(x: np.ndarray, kernel: np.ndarray, stride: int = 1) -> np.ndarray:
    """Valid cross-correlation of x (N, H, W, C) with kernel (kh, kw, C, F): im2col, then one GEMM."""
    raise NotImplementedError("task3 conv2d")
