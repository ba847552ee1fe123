"""``detect_anomaly()``: stop at the first primitive whose forward result or gradient holds a NaN or an Inf."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.observe import ForwardEvent, Observer, VjpEvent, observing

__all__ = ["AnomalyError", "detect_anomaly"]


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` where a NaN or Inf first appears."""


def _check_finite(function, phase: str, array: np.ndarray, inputs) -> None:
    """Raise ``AnomalyError`` naming the op, the phase and the input shapes if ``array`` holds NaN/Inf."""
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        kind = "NaN" if np.isnan(array).any() else "Inf"
        shapes = ", ".join(str(t.shape) for t in inputs)
        raise AnomalyError(f"detect_anomaly: {function.__name__} produced {kind} in the {phase} pass "
                           f"(input shapes: {shapes}; output shape {array.shape})")


class AnomalyDetector(Observer):
    """Checks every forward result and every gradient a vjp sends. The primitives a vjp applies are not checked
    one by one: what they compute is reported as that vjp's backward pass, at the op whose gradient it is."""

    def forward(self, event: ForwardEvent) -> None:
        if not event.in_vjp:
            _check_finite(event.function, "forward", event.output.data, event.inputs)

    def vjp(self, event: VjpEvent) -> None:
        for parent, g in zip(event.inputs, event.grads, strict=True):
            if g is not None and parent.requires_grad:
                _check_finite(event.function, "backward", g.data, event.inputs)


def detect_anomaly():
    """Check every forward result and every gradient for NaN/Inf (in this thread, while the context is open).

    Raises ``AnomalyError`` at the first op that produces one, naming the op,
    its input shapes and whether it happened in the forward or backward pass.
    """
    return observing(AnomalyDetector())
