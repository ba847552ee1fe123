"""The ``Function`` contract: a primitive's forward on arrays and its vjp on Tensors.

A primitive ``F`` computes ``y = F(x_1, ..., x_n; params)`` on NumPy arrays in
``forward`` and, in ``vjp``, maps the cotangent ``g = dL/dy`` to one cotangent
per input, ``dL/dx_i = g . dy/dx_i`` (a vector-Jacobian product). ``vjp`` is
written with Tensor operations, so when the backward pass itself is recorded
(``grad(..., create_graph=True)``) it can be differentiated again.
"""

from __future__ import annotations

import weakref

import numpy as np

from tinygrad_cnn import observe
from tinygrad_cnn import tensor as _tensor
from tinygrad_cnn.modes import is_grad_enabled


class Context:
    """What a primitive keeps between its forward and its vjp.

    ``inputs`` are the input Tensors (graph nodes, so a recorded backward pass
    can differentiate through them), ``params`` the keyword parameters,
    ``saved`` whatever ``save_for_backward`` stored, and ``output`` the output
    Tensor (held weakly, so no reference cycle keeps a graph alive).
    ``stamp`` is the global write clock when the node was recorded: backward
    refuses to run the vjp if any input (or the output) was written since.
    ``layer`` (set only while something observes, ``observe.layer_of``) names
    the layer that applied the primitive.
    """

    __slots__ = ("function", "inputs", "params", "saved", "needs_input_grad", "_output", "released", "stamp",
                 "layer")

    def __init__(self, function, inputs, params):
        self.function = function
        self.inputs = inputs
        self.params = params
        self.saved = ()
        self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        self._output = None
        self.released = False

    def save_for_backward(self, *values) -> None:
        self.saved = values

    @property
    def output(self) -> "_tensor.Tensor":
        return self._output()

    def release(self) -> None:
        """Drop every reference into the graph (after a backward pass without ``retain_graph``)."""
        self.inputs = ()
        self.saved = ()
        self.released = True


class Function:
    """Base class of the engine's primitives.

    Subclasses define ``forward(ctx, *arrays, **params) -> np.ndarray`` and
    ``vjp(ctx, g) -> tuple`` (one Tensor or ``None`` per input). Primitives
    with kinks (ReLU, max, ...) may define ``kink_state(*arrays, **params)``
    returning an array that changes exactly when the input crosses a kink;
    the gradient checker uses it to flag unreliable finite differences.
    """

    kink_state = None

    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, **params) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def vjp(ctx: Context, g: "_tensor.Tensor") -> tuple:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: "_tensor.Tensor", **params) -> "_tensor.Tensor":
        """Run ``forward`` on the inputs' arrays, record the node when a gradient is needed, and send the
        ``ForwardEvent`` to whatever is observing (``tinygrad_cnn.observe``)."""
        active = observe.observers()
        start = observe.clock() if active else 0.0
        ctx = Context(cls, inputs, params)
        out_data = cls.forward(ctx, *(t.data for t in inputs), **params)
        needs_grad = is_grad_enabled() and any(ctx.needs_input_grad)
        out = _tensor.Tensor._from_op(out_data, ctx if needs_grad else None)
        if needs_grad:
            ctx._output = weakref.ref(out)
            ctx.stamp = _tensor.WRITES[0]
        else:
            ctx.inputs = ()
        if active:
            observe.send_forward(active, cls, inputs, params, out, start)
        return out
