"""Reference solution of exercises/task4_conv2d_gradients.py."""

import numpy as np


def conv2d_vjp(x, kernel, g, stride=1):
    kh, kw, c, f = kernel.shape
    n, oh, ow, _ = g.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * c)
    dkernel = (patches.T @ g.reshape(-1, f)).reshape(kernel.shape)
    dx = np.zeros_like(x)
    for u in range(kh):                   # one scatter per kernel tap
        for v in range(kw):
            dx[:, u:u + stride * oh:stride, v:v + stride * ow:stride, :] += g @ kernel[u, v].T
    return dx, dkernel
