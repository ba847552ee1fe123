"""``detect_anomaly()``: stop where a NaN or an Inf first appears, and blame what made it.

An observer on ``tinygrad_cnn.observe``. It checks

* every forward result: an op whose inputs were all finite and whose output is not is blamed by name, with its
  layer (``Conv2D 'c1'``) when a layer applied it; an output that is not finite because an input already was is
  reported as NaN/Inf *in the data* -- a leaf or constant that holds it (the op is only where it was found);
* every gradient a vjp sends to an input, with the same rule: an op's backward pass is blamed only when the
  cotangent it received was finite;
* every optimizer update (``step()``), before the parameter is written: a non-finite gradient, a parameter that
  already was not finite, or an update that overflowed.

Per thread: like ``no_grad``, it is on only in the thread that opened it (other threads run unchecked; open it
in each thread that should be checked).
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.observe import ForwardEvent, Observer, UpdateEvent, VjpEvent, layer_of, observing

__all__ = ["AnomalyError", "detect_anomaly"]


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` where a NaN or Inf first appears."""


def _bad(array) -> str | None:
    """``"NaN"`` or ``"Inf"`` if the floating ``array`` holds one, else None."""
    a = np.asarray(array)
    if not np.issubdtype(a.dtype, np.floating) or np.isfinite(a).all():
        return None
    return "NaN" if np.isnan(a).any() else "Inf"


def _in_layer(layer: str | None) -> str:
    return f", in layer {layer}" if layer else ""


def _shapes(inputs, output) -> str:
    return f"(input shapes: {', '.join(str(t.shape) for t in inputs)}; output shape {output.shape})"


def _describe(t) -> str:
    kind = "a leaf or constant" if t._ctx is None else f"the output of {t._ctx.function.__name__}"
    return f"{kind} of shape {t.shape}"


class AnomalyDetector(Observer):
    """Checks every forward result, every gradient a vjp sends and every optimizer update (see the module
    docstring). The primitives a vjp applies are not checked one by one: what they compute is reported as that
    vjp's backward pass, at the op whose gradient it is."""

    def forward(self, event: ForwardEvent) -> None:
        if event.in_vjp:
            return
        kind = _bad(event.output.data)
        if kind is None:
            return
        name = event.function.__name__
        for i, t in enumerate(event.inputs):
            came_in = _bad(t.data)
            if came_in:
                raise AnomalyError(f"detect_anomaly: {came_in} already in the data: input {i} of {name}"
                                   f"{_in_layer(event.layer)} ({_describe(t)}) holds {came_in}; {name} did not "
                                   f"make it")
        raise AnomalyError(f"detect_anomaly: {name} produced {kind} in the forward pass "
                           f"{_shapes(event.inputs, event.output)}{_in_layer(event.layer)}, from finite inputs")

    def vjp(self, event: VjpEvent) -> None:
        incoming = _bad(event.g.data)
        for i, (parent, g) in enumerate(zip(event.inputs, event.grads, strict=True)):
            if g is None or not parent.requires_grad:
                continue
            kind = _bad(g.data)
            if kind is None:
                continue
            name, layer = event.function.__name__, _in_layer(layer_of(event.node))
            if incoming:
                raise AnomalyError(f"detect_anomaly: the cotangent {name}{layer} received in the backward pass "
                                   f"already held {incoming} (the grad given to backward, or a gradient computed "
                                   f"outside detect_anomaly)")
            raise AnomalyError(f"detect_anomaly: {name} produced {kind} in the backward pass "
                               f"{_shapes(event.inputs, event.node)}{layer}, in the gradient for its input {i}, "
                               f"from a finite cotangent")

    def update(self, event: UpdateEvent) -> None:
        kind = _bad(event.new_value)
        if kind is None:
            return
        where = f"{type(event.optimizer).__name__}.step: params[{event.index}] (shape {event.param.shape})"
        if _bad(event.grad):
            cause = f"its gradient holds {_bad(event.grad)}"
        elif _bad(event.param.data):
            cause = f"the parameter already held {_bad(event.param.data)} before the step"
        else:
            cause = (f"the update overflowed from a finite gradient and parameter (learning rate "
                     f"{event.learning_rate:g}); lower the learning rate")
        raise AnomalyError(f"detect_anomaly: {where} would become {kind}: {cause}; the parameter was not written")


def detect_anomaly():
    """Check every forward result, every gradient and every optimizer update for NaN/Inf (in this thread only,
    while the context is open).

    Raises ``AnomalyError`` at the first op that turns finite inputs into NaN/Inf, naming the op, its layer, the
    input shapes and the pass; NaN/Inf that is already in the data is reported as such, naming the input.
    """
    return observing(AnomalyDetector())
