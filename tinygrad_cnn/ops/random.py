"""Randomness with explicit seeds: the same seed gives bit-identical results."""

from __future__ import annotations

import numpy as np


def rng(seed) -> np.random.Generator:
    """A NumPy Generator from a seed (int or None) or an existing Generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise TypeError(f"seed must be a non-negative int, a numpy Generator or None; got {seed!r}")
    return np.random.default_rng(seed)


def dropout_mask(shape, rate: float, dtype, seed) -> np.ndarray:
    """The inverted-dropout multiplier: 0 with probability ``rate``, else 1 / (1 - rate) (all 0 when rate = 1)."""
    keep = rng(seed).random(shape) >= rate
    scale = 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)
    return (keep * scale).astype(dtype)
