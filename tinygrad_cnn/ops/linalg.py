"""Matrix multiplication with NumPy's ``matmul`` rules (1-D operands, batch broadcasting)."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.function import Function
from tinygrad_cnn.ops import movement
from tinygrad_cnn.ops.movement import unbroadcast


def _swap_last(t):
    axes = list(range(t.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return movement.transpose(t, axes)


class MatMul(Function):
    """y = a @ b.   vjp: (g @ b^T, a^T @ g), 1-D operands promoted to matrices and batch axes summed."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have rank >= 1; got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
            k = b.shape[0 if b.ndim == 1 else -2]
            raise ValueError(f"matmul: a has shape {a.shape} and b has shape {b.shape}: a's last axis "
                             f"({a.shape[-1]}) must equal b's {'only' if b.ndim == 1 else 'second-to-last'} "
                             f"axis ({k})")
        try:
            return np.matmul(a, b)
        except ValueError as exc:
            raise ValueError(f"matmul: batch axes of shapes {a.shape} and {b.shape} cannot be broadcast") from exc

    @staticmethod
    def vjp(ctx, g):
        a, b = ctx.inputs
        a2 = movement.reshape(a, (1,) + a.shape) if a.ndim == 1 else a
        b2 = movement.reshape(b, b.shape + (1,)) if b.ndim == 1 else b
        g_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g2 = movement.reshape(g, g_shape)
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = movement.reshape(unbroadcast(matmul(g2, _swap_last(b2)), a2.shape), a.shape)
        if ctx.needs_input_grad[1]:
            gb = movement.reshape(unbroadcast(matmul(_swap_last(a2), g2), b2.shape), b.shape)
        return ga, gb


def matmul(a, b):
    """a @ b with NumPy's ``matmul`` rules.

    vjp: (g @ b^T, a^T @ g); a 1-D operand is promoted to a matrix (a row for a, a column for b) and the
    promoted axis removed again, and the batch axes, broadcast as NumPy, are summed back to each input's shape.

    Args:
        a: Tensor of shape ``(..., n, k)`` or ``(k,)``.
        b: Tensor of shape ``(..., k, m)`` or ``(k,)``, of a's dtype; the batch axes ``...`` broadcast.
    """
    return MatMul.apply(a, b)
