"""Randomness with explicit seeds: the same seed gives bit-identical results."""

from __future__ import annotations

import contextlib
import threading

import numpy as np


class _Pinned(threading.local):
    seed = None
    count = 0


_PINNED = _Pinned()
_GLOBAL: dict = {"generator": None}  # set by set_global_seed (nn.set_random_seed); None: fresh entropy per draw


def set_global_seed(seed: int) -> None:
    """Make every later draw without a seed reproducible: the k-th one after this call uses a child of
    ``default_rng(seed)`` (``keras.utils.set_random_seed``'s global seed generator). Shared by all threads."""
    _GLOBAL["generator"] = np.random.default_rng(seed)


@contextlib.contextmanager
def fixed_seed(seed: int):
    """Inside, the k-th draw made without a seed (``seed=None``) uses ``default_rng([seed, k])``.

    Each entry restarts at k = 0, so running the same function twice inside
    two ``fixed_seed(s)`` blocks draws the same numbers (``gradcheck`` uses
    this to freeze dropout masks between its evaluations). Explicit seeds and
    Generators passed by the caller are not affected.
    """
    previous = (_PINNED.seed, _PINNED.count)
    _PINNED.seed, _PINNED.count = int(seed), 0
    try:
        yield
    finally:
        _PINNED.seed, _PINNED.count = previous


def rng(seed, fn: str = "rng") -> np.random.Generator:
    """A NumPy Generator from a seed (int or None) or an existing Generator (returned as is). None: inside
    ``fixed_seed`` the pinned sequence; after ``set_global_seed`` the next child of the global generator; else
    fresh entropy."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise TypeError(f"{fn}: seed must be a non-negative int, a numpy Generator or None; got {seed!r}")
    if seed is None and _PINNED.seed is not None:
        _PINNED.count += 1
        return np.random.default_rng([_PINNED.seed, _PINNED.count - 1])
    if seed is None and _GLOBAL["generator"] is not None:
        return np.random.default_rng(_GLOBAL["generator"].integers(2 ** 63))
    return np.random.default_rng(seed)


def dropout_mask(shape, rate: float, dtype, seed) -> np.ndarray:
    """The inverted-dropout multiplier: 0 with probability ``rate``, else 1 / (1 - rate) (all 0 when rate = 1)."""
    keep = rng(seed, "dropout").random(shape) >= rate
    scale = 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)
    return (keep * scale).astype(dtype)
