"""One way to watch the engine run: observers of the primitives' forward and vjp events.

Anomaly detection, kink recording (for the gradient checker), the profiler and the backward-pass tracer are all
observers; a new tool is one more, and never edits the core. While ``observing(observer)`` is open (in this
thread; other threads are not seen), the core sends the observer

* ``forward(ForwardEvent)`` after every ``Function.apply``: the primitive, its input Tensors, its parameters, its
  output Tensor, the seconds it took, and whether it ran inside a vjp (the backward pass is written with the
  engine's own ops, so a vjp applies primitives too);
* ``vjp(VjpEvent)`` after the backward pass applied a node's vjp: the node (the output Tensor whose primitive
  ran), the total cotangent g = dL/d node it received (the sum over its consumers), the gradients it sent to
  its inputs, and the seconds, inclusive of the primitives the vjp applied;
* ``leaf(LeafEvent)`` when the backward pass reaches a leaf with its total cotangent;
* ``update(UpdateEvent)`` when an optimizer's ``step()`` has computed a parameter's new value, before writing it.

Layers run their ``call`` inside ``in_layer(name)`` while something observes, so every ``ForwardEvent`` says
which layer (if any) applied the primitive, and a recorded node keeps that name (``context.layer``) for the
``VjpEvent`` of its backward pass.

An observer raising stops the operation (that is how ``detect_anomaly`` stops at the first NaN). With no
observer open the cost is one attribute read per primitive.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["ForwardEvent", "LeafEvent", "Observer", "UpdateEvent", "VjpEvent", "current_layer", "in_layer",
           "layer_of", "observers", "observing", "run_vjp", "send_forward", "send_leaf", "send_update"]


@dataclass(frozen=True)
class ForwardEvent:
    """``function`` (a ``Function`` class) applied to ``inputs`` with ``params`` gave ``output`` in ``seconds``."""

    function: type
    inputs: tuple
    params: dict
    output: Any
    seconds: float
    in_vjp: bool
    layer: str | None = None


@dataclass(frozen=True)
class VjpEvent:
    """``node``'s vjp mapped its cotangent ``g`` to ``grads`` (one per input of ``node``'s primitive, or None)."""

    function: type
    node: Any
    inputs: tuple
    g: Any
    grads: tuple
    seconds: float


@dataclass(frozen=True)
class UpdateEvent:
    """``optimizer``'s step is about to set ``params[index]`` (``param``) to ``new_value`` (an array) from its
    gradient ``grad`` (an array) at learning rate ``learning_rate``."""

    optimizer: Any
    index: int
    param: Any
    grad: Any
    new_value: Any
    learning_rate: float


@dataclass(frozen=True)
class LeafEvent:
    """The backward pass reached ``node`` (a leaf) with the total cotangent ``g``."""

    node: Any
    g: Any


class Observer:
    """Base class of the engine's observers: override the events you need (each does nothing by default)."""

    def forward(self, event: ForwardEvent) -> None:
        pass

    def vjp(self, event: VjpEvent) -> None:
        pass

    def leaf(self, event: LeafEvent) -> None:
        pass

    def update(self, event: UpdateEvent) -> None:
        pass


class _Observers(threading.local):
    active: tuple = ()
    vjp_depth = 0
    layers: tuple = ()


_STATE = _Observers()
clock = time.perf_counter


def observers() -> tuple:
    """The observers open in this thread, outermost first (empty when nothing is observing)."""
    return _STATE.active


@contextlib.contextmanager
def observing(observer: Observer):
    """Send ``observer`` the engine's events (in this thread) while the context is open; yields the observer."""
    if not isinstance(observer, Observer):
        raise TypeError(f"observing: observer must be an Observer; got {type(observer).__name__}")
    previous = _STATE.active
    _STATE.active = previous + (observer,)
    try:
        yield observer
    finally:
        _STATE.active = previous


@contextlib.contextmanager
def in_layer(name: str):
    """Mark the primitives applied inside as the work of the layer ``name`` (the innermost one wins)."""
    previous = _STATE.layers
    _STATE.layers = previous + (name,)
    try:
        yield
    finally:
        _STATE.layers = previous


def current_layer() -> str | None:
    """The innermost layer running (in this thread), or None."""
    return _STATE.layers[-1] if _STATE.layers else None


def layer_of(node) -> str | None:
    """The layer that applied the primitive of ``node`` (a non-leaf Tensor) while something observed, or None."""
    return getattr(node._ctx, "layer", None) if node._ctx is not None else None


def run_vjp(node, g) -> tuple:
    """Apply ``node``'s vjp to ``g`` and, if anything is observing, time it and send the ``VjpEvent``."""
    ctx = node._ctx
    active = _STATE.active
    if not active:
        return ctx.function.vjp(ctx, g)
    _STATE.vjp_depth += 1
    start = clock()
    try:
        grads = ctx.function.vjp(ctx, g)
    finally:
        _STATE.vjp_depth -= 1
    event = VjpEvent(ctx.function, node, ctx.inputs, g, tuple(grads), clock() - start)
    for observer in active:
        observer.vjp(event)
    return grads


def send_forward(active: tuple, function, inputs, params, output, start: float) -> None:
    """Send ``ForwardEvent`` to the ``active`` observers (``start``: the ``clock()`` reading before the forward)."""
    layer = current_layer()
    if output._ctx is not None:
        output._ctx.layer = layer
    event = ForwardEvent(function, inputs, params, output, clock() - start, _STATE.vjp_depth > 0, layer)
    for observer in active:
        observer.forward(event)


def send_leaf(active: tuple, node, g) -> None:
    """Send ``LeafEvent`` to the ``active`` observers."""
    event = LeafEvent(node, g)
    for observer in active:
        observer.leaf(event)


def send_update(active: tuple, optimizer, index: int, param, grad, new_value, learning_rate: float) -> None:
    """Send ``UpdateEvent`` to the ``active`` observers."""
    event = UpdateEvent(optimizer, index, param, grad, new_value, learning_rate)
    for observer in active:
        observer.update(event)
