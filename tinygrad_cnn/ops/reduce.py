"""Reductions: sum, max and min over axes (mean is sum / count in ``ops``)."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.function import Function
from tinygrad_cnn.ops import movement


def _keepdims_shape(shape, axes) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = sum of x over ``axes``.   vjp: g broadcast back over the summed axes."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        return np.sum(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0]
        g = movement.reshape(g, _keepdims_shape(x.shape, ctx.params["axes"]))
        return (movement.broadcast_to(g, x.shape),)


class _Extremum(Function):
    """y = max (or min) of x over ``axes``.

    vjp: g shared evenly among the elements that attain the extremum (as
    ``jnp.max``): dL/dx_i = g * [x_i == y] / #{j : x_j == y}.
    """

    reduce = None

    @classmethod
    def forward(cls, ctx, x, axes, keepdims):
        empty = [a for a in axes if x.shape[a] == 0]
        if empty:  # no identity to start from (as NumPy and JAX); an empty axis that is kept is fine
            raise ValueError(f"{cls.__name__.lower()}: cannot reduce over axis {empty[0]} of size 0 (input shape "
                             f"{x.shape}, axes {axes}): a {cls.__name__.lower()} of no elements has no value")
        return cls.reduce(x, axis=axes, keepdims=keepdims)

    @classmethod
    def vjp(cls, ctx, g):
        x = ctx.inputs[0]
        axes = ctx.params["axes"]
        kept = _keepdims_shape(x.shape, axes)
        winners = x.data == np.reshape(ctx.output.data, kept)
        share = winners / np.sum(winners, axis=axes, keepdims=True)
        g = movement.broadcast_to(movement.reshape(g, kept), x.shape)
        return (g * movement.constant(share.astype(g.dtype)),)

    @classmethod
    def kink_state(cls, x, axes, keepdims):
        return x == cls.reduce(x, axis=axes, keepdims=True)


class Max(_Extremum):
    __doc__ = _Extremum.__doc__
    reduce = staticmethod(np.max)


class Min(_Extremum):
    __doc__ = _Extremum.__doc__.replace("max (or min)", "min (or max)")
    reduce = staticmethod(np.min)
