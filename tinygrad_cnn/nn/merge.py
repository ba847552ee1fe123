"""Merge layers (Keras' names): ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``,
``Concatenate``.

Each takes a list of inputs, ``layer([a, b, ...])``, so it joins paths of a graph model: a residual block is
``Add()([x, f(x)])``. The gradient of a merge sends the cotangent back down every path it joined, and where
paths split earlier the chain rule adds them up again: for ``y = x + f(x)``, dL/dx = g + f'(x)^T g.

Elementwise merges need inputs of one shape, up to Keras' broadcasting of size-1 axes; ``Concatenate(axis)``
needs equal shapes except along ``axis``.
"""

from __future__ import annotations

from functools import reduce

from tinygrad_cnn import ops, validation
from tinygrad_cnn.nn._docs import LAYER_KWARGS
from tinygrad_cnn.nn.layer import Layer, _fmt_shape

__all__ = ["Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract"]


_MERGE_DOC = """

    Called on a list, ``layer([a, b, ...])``, of inputs of one shape (size-1 axes broadcast, as Keras);
    the output has that shape.

    Args:
""" + LAYER_KWARGS + """

    Raises:
        ValueError: a wrong number of inputs, or shapes that do not broadcast.
"""


class _Merge(Layer):
    """Base of the merge layers: a list of at least ``min_inputs`` inputs (exactly ``max_inputs`` if set)."""

    takes_list = True
    min_inputs, max_inputs = 2, None

    def check_build_shape(self, shapes) -> None:
        shapes = list(shapes)
        if len(shapes) < self.min_inputs or (self.max_inputs is not None and len(shapes) > self.max_inputs):
            want = (f"exactly {self.max_inputs}" if self.max_inputs == self.min_inputs
                    else f"at least {self.min_inputs}")
            raise ValueError(f"{self._where()}: takes a list of {want} inputs; got {len(shapes)}")
        self._merged_shape(shapes)

    def build(self, input_shape):
        self.input_spec = None  # every call is checked by compute_output_shape on its own shapes
        self.built = True

    def check_input_shape(self, shapes) -> None:
        self.check_build_shape(shapes)

    def compute_output_shape(self, shapes):
        return self._merged_shape(list(shapes))

    def _merged_shape(self, shapes) -> tuple:
        """The elementwise result's shape: per axis the size the inputs agree on (1 broadcasts, None unknown)."""
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(f"{self._where()}: inputs must have the same rank; got shapes "
                             f"{', '.join(_fmt_shape(s) for s in shapes)}")
        out = []
        for axis, sizes in enumerate(zip(*shapes, strict=True)):
            known = {s for s in sizes if s is not None and s != 1}
            if len(known) > 1:
                raise ValueError(f"{self._where()}: inputs of shapes {', '.join(_fmt_shape(s) for s in shapes)} "
                                 f"differ on axis {axis}; elementwise merges need equal sizes (or 1)")
            out.append(known.pop() if known else (None if None in sizes else 1))
        return tuple(out)

    def call(self, inputs, training=False):
        return self.combine(list(inputs))


class Add(_Merge):
    __doc__ = """y = sum of the inputs.   Each input's gradient: g (summed over the axes it was broadcast along)."""
    __doc__ += _MERGE_DOC

    def combine(self, xs):
        return reduce(ops.add, xs)


class Subtract(_Merge):
    __doc__ = """y = a - b (exactly two inputs).   Gradients: g and -g."""
    __doc__ += _MERGE_DOC

    max_inputs = 2

    def combine(self, xs):
        return ops.sub(xs[0], xs[1])


class Multiply(_Merge):
    __doc__ = """y = product of the inputs.   Gradient of input i: g times the product of the others."""
    __doc__ += _MERGE_DOC

    def combine(self, xs):
        return reduce(ops.mul, xs)


class Average(_Merge):
    __doc__ = """y = (x_1 + ... + x_n) / n.   Each input's gradient: g / n."""
    __doc__ += _MERGE_DOC

    def combine(self, xs):
        return reduce(ops.add, xs) * (1.0 / len(xs))


class Maximum(_Merge):
    __doc__ = """y = elementwise maximum of the inputs, folded left to right as Keras does
    (``maximum(maximum(a, b), c)``). Gradient: g to the input holding the maximum; a tie of two splits it
    0.5 / 0.5 (as ``jnp.maximum``)."""
    __doc__ += _MERGE_DOC

    def combine(self, xs):
        return reduce(ops.maximum, xs)


class Minimum(_Merge):
    __doc__ = """y = elementwise minimum of the inputs, folded left to right. Gradient: as ``Maximum``, for the
    minimum."""
    __doc__ += _MERGE_DOC

    def combine(self, xs):
        return reduce(ops.minimum, xs)


class Concatenate(_Merge):
    """y = the inputs joined along ``axis`` (default -1, the channels).   Gradients: g cut back into the inputs'
    extents along ``axis``.

    Args:
        axis: int, default -1 (the channels); negative counts from the end.
        **kwargs: the base ``Layer`` arguments.
    """

    min_inputs = 1

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not validation.is_int(axis):
            raise TypeError(f"{self._where()}: axis must be an int; got {axis!r}")
        self.axis = int(axis)

    def _merged_shape(self, shapes) -> tuple:
        rank = len(shapes[0])
        if len({len(s) for s in shapes}) != 1 or not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ValueError(f"{self._where()}: axis={self.axis} must be a non-batch axis of inputs of one rank; "
                             f"got shapes {', '.join(_fmt_shape(s) for s in shapes)}")
        axis = self.axis % rank
        for i in range(rank):
            sizes = {s[i] for s in shapes if s[i] is not None}
            if i != axis and len(sizes) > 1:
                raise ValueError(f"{self._where()}: inputs of shapes {', '.join(_fmt_shape(s) for s in shapes)} "
                                 f"must agree on every axis but axis={self.axis}")
        along = [s[axis] for s in shapes]
        out = list(shapes[0])
        out[0] = None if any(s[0] is None for s in shapes) else shapes[0][0]
        out[axis] = None if None in along else sum(along)
        return tuple(out)

    def combine(self, xs):
        return ops.concatenate(xs, axis=self.axis % xs[0].ndim)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
