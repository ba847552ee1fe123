"""Gradient hooks on Tensors: ``Tensor.register_hook(fn)`` and ``Tensor.retain_grad()``, as PyTorch's.

A hook sees the *total* cotangent ``g = dL/d t`` of its Tensor ``t`` in a backward pass (the sum over all of
``t``'s consumers, once, before ``t``'s own vjp or, for a leaf, before ``.grad`` accumulates) and may replace it:
``fn(g) -> None`` keeps ``g``, ``fn(g) -> Tensor or array`` (shaped like ``t``) sends that instead. Hooks run in
the order they were registered; ``retain_grad`` stores the cotangent after every hook (as PyTorch 2 does) in
``t.grad`` of a non-leaf Tensor, accumulating across ``backward`` calls; ``tinygrad_cnn.grad`` runs hooks but
never touches ``.grad``. Under ``create_graph=True`` the hook receives (and may return) a graph Tensor.

The table lives here, keyed by the Tensor's id and cleared when the Tensor is collected, so a Tensor without
hooks costs the backward pass one dict lookup per node (none at all while no Tensor has a hook).
"""

from __future__ import annotations

import weakref

import numpy as np

__all__ = ["RemovableHandle", "has_hooks", "register_hook", "retain_grad", "run_hooks"]

_RETAIN = object()  # the marker retain_grad puts after the hooks


class _Entry:
    __slots__ = ("ref", "hooks")

    def __init__(self, ref):
        self.ref = ref
        self.hooks: list = []


_TABLE: dict[int, _Entry] = {}


class RemovableHandle:
    """Returned by ``register_hook``: ``handle.remove()`` unregisters the hook (twice is harmless)."""

    def __init__(self, tensor, fn):
        self._key, self._fn = id(tensor), fn

    def remove(self) -> None:
        entry = _TABLE.get(self._key)
        if entry is not None and self._fn in entry.hooks:
            entry.hooks.remove(self._fn)


def _entry(tensor) -> _Entry:
    key = id(tensor)
    entry = _TABLE.get(key)
    if entry is None or entry.ref() is not tensor:
        # the table is bound now: at interpreter exit the module's globals may already be gone
        entry = _Entry(weakref.ref(tensor, lambda _, key=key, table=_TABLE: table.pop(key, None)))
        _TABLE[key] = entry
    return entry


def register_hook(tensor, fn) -> RemovableHandle:
    """Call ``fn(g)`` with ``tensor``'s total cotangent in every backward pass through it (see the module)."""
    if not callable(fn):
        raise TypeError(f"register_hook: fn must be callable (g -> None or a replacement gradient); "
                        f"got {type(fn).__name__}")
    if not tensor.requires_grad:
        raise RuntimeError(f"register_hook: this Tensor (shape {tensor.shape}) does not require a gradient, so no "
                           f"backward pass reaches it; create it with requires_grad=True or from one that has it")
    _entry(tensor).hooks.append(fn)
    return RemovableHandle(tensor, fn)


def retain_grad(tensor) -> None:
    """Keep a non-leaf ``tensor``'s cotangent in ``.grad`` in every ``backward`` (a leaf keeps it anyway)."""
    if not tensor.requires_grad:
        raise RuntimeError(f"retain_grad: this Tensor (shape {tensor.shape}) does not require a gradient, so it "
                           f"never has one")
    if tensor._ctx is None:
        return
    hooks = _entry(tensor).hooks
    if _RETAIN not in hooks:
        hooks.append(_RETAIN)


def has_hooks(node) -> bool:
    """Whether ``node`` has a hook or retains its gradient (one dict lookup; none while no Tensor has hooks)."""
    return bool(_TABLE) and id(node) in _TABLE and _TABLE[id(node)].ref() is node


def run_hooks(node, g, accumulate: bool):
    """``g`` after ``node``'s hooks; with ``accumulate`` (a ``backward`` pass) a retained gradient is stored."""
    tensor_type = type(g)  # the Tensor class (this module sits below tensor.py in the import order)
    retain = False
    for fn in list(_TABLE[id(node)].hooks):
        if fn is _RETAIN:
            retain = True
            continue
        new = fn(g)
        if new is None:
            continue
        new = new if isinstance(new, tensor_type) else tensor_type._from_op(np.asarray(new, dtype=g.dtype), None)
        if new.shape != g.shape:
            raise ValueError(f"register_hook: the hook {getattr(fn, '__name__', fn)!r} returned a gradient of shape "
                             f"{new.shape} for a Tensor of shape {g.shape}; it must return None or the same shape")
        g = new
    if retain and accumulate:
        node.grad = g.data.astype(node.dtype, copy=True) if node.grad is None else node.grad + g.data
    return g
