"""One engine call and its JAX twin over the same arrays: the common start of every engine-vs-JAX vjp comparison
(``conftest.check_vjp``, jitted, and the fuzzers' ``fuzzing.differential``, eager), and ``max_rel_error``, the
elementwise relative error such comparisons are graded by.

Tests import these helpers from here, never from ``conftest``: each test directory may have its own
``conftest.py``, and ``from conftest import ...`` picks whichever of them was imported first.

Floating arrays are the differentiated arguments: each becomes an engine leaf with ``requires_grad=True`` and a
positional argument of ``jax_of_floats``; integer arrays (labels, indices) are passed to both sides unchanged.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

import tinygrad_cnn as tg


class VjpPair(NamedTuple):
    arrays: list          # every argument, as NumPy arrays
    floats: list          # indices of the differentiated (floating) arguments
    out: tg.Tensor        # the engine's output, with its graph
    jax_of_floats: Callable  # f(*float arrays) = jax_fn(*arrays with the floats replaced)
    engine_vjp: Callable  # v -> [v^T d out / d arrays[i] for i in floats] (zeros where out does not depend on it)


def strided_view(a: np.ndarray) -> np.ndarray:
    """A non-contiguous view holding ``a``'s values: every other element of a buffer twice as long on the last axis
    (rank 0 stays a fresh array; it has no stride to break)."""
    if a.ndim == 0:
        return a.copy()
    buffer = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    buffer[..., ::2] = a
    return buffer[..., ::2]


def vjp_pair(engine_fn, jax_fn, arrays, strided: bool = False) -> VjpPair:
    """Run ``engine_fn`` on fresh leaves made from ``arrays`` and wrap ``jax_fn`` over the floating ones.

    ``strided``: the leaves' data are non-contiguous views (``strided_view``), as a user's sliced arrays are."""
    arrays = [np.asarray(a) for a in arrays]
    floats = [i for i, a in enumerate(arrays) if np.issubdtype(a.dtype, np.floating)]
    layout = strided_view if strided else np.copy
    leaves = [tg.Tensor(layout(a), requires_grad=i in floats) for i, a in enumerate(arrays)]
    out = engine_fn(*leaves)

    def engine_vjp(v):
        return [g.data for g in tg.grad(out, [leaves[i] for i in floats], grad_output=np.asarray(v, out.dtype))]

    return VjpPair(arrays, floats, out, of_floats(jax_fn, arrays), engine_vjp)


def of_floats(fn, arrays) -> Callable:
    """``f(*float values) = fn(*arrays)`` with the floating arrays replaced, in order, by the values."""
    arrays = [np.asarray(a) for a in arrays]
    floats = [i for i, a in enumerate(arrays) if np.issubdtype(a.dtype, np.floating)]

    def f(*values):
        args = list(arrays)
        for i, value in zip(floats, values, strict=True):
            args[i] = value
        return fn(*args)

    return f


def max_rel_error(a, b) -> float:
    """The largest ``|a - b| / max(1e-8, |a| + |b|)`` (inf if the shapes differ or a NaN appears)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities and NaN at the same place agree
    with np.errstate(invalid="ignore"):
        rel = np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))
    rel = np.where(same, 0.0, np.where(np.isfinite(rel), rel, np.inf))
    return float(rel.max())
