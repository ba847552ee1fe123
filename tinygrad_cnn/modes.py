"""Whether the engine records the graph: a per-thread mode, switched by ``no_grad`` and ``enable_grad``."""

from __future__ import annotations

import contextlib
import threading

__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]


class _GradMode(threading.local):
    enabled = True


_GRAD = _GradMode()


def is_grad_enabled() -> bool:
    """Whether new operations are recorded in the graph (in this thread)."""
    return _GRAD.enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager and decorator that records the graph if ``enabled``, and not otherwise (as PyTorch's).

    Args:
        enabled: bool: True records the graph (as ``enable_grad``), False not (as ``no_grad``).
    """

    def __init__(self, enabled: bool):
        self._enabled = bool(enabled)
        self._previous: list[bool] = []

    def __enter__(self):
        self._previous.append(_GRAD.enabled)
        _GRAD.enabled = self._enabled
        return self

    def __exit__(self, *exc):
        _GRAD.enabled = self._previous.pop()
        return False


def no_grad() -> set_grad_enabled:
    """Context manager and decorator inside which no graph is recorded."""
    return set_grad_enabled(False)


def enable_grad() -> set_grad_enabled:
    """Context manager and decorator that records the graph (undoes an enclosing ``no_grad``)."""
    return set_grad_enabled(True)
