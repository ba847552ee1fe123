"""Shared pieces of the differential fuzzers: the hypothesis profiles, case counters and the comparison.

Profiles (``TINYGRAD_CNN_FUZZ``): ``ci`` (default) runs a bounded number of examples per test, derandomized
(the same examples on every run, no example database), with shapes drawn from a small pool so that JAX's
per-shape compilations are reused; ``long`` runs many more, randomized, over larger shapes.
"""

from __future__ import annotations

import collections
import os
import warnings

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st
from vjp_pair import of_floats, vjp_pair

import tinygrad_cnn as tg

jax.config.update("jax_enable_x64", True)

PROFILE = os.environ.get("TINYGRAD_CNN_FUZZ", "ci").lower()
if PROFILE not in ("ci", "long"):
    raise ValueError(f"TINYGRAD_CNN_FUZZ={PROFILE!r} is not one of 'ci', 'long'")
LONG = PROFILE == "long"
LONG_FACTOR = 25  # examples per test in the long profile = LONG_FACTOR x the CI count

settings.register_profile("tinygrad-cnn-ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("tinygrad-cnn-long", derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
BASE = settings.get_profile(f"tinygrad-cnn-{PROFILE}")

CASES: collections.Counter = collections.Counter()  # op or family -> cases compared
WORST = {"err": 0.0, "where": ""}
TOL = 1e-10  # normwise relative error, float64


def examples(ci: int) -> settings:
    """Hypothesis settings for a test with ``ci`` examples in the CI profile."""
    return settings(BASE, max_examples=ci * LONG_FACTOR if LONG else ci)


def fixed_examples(arg: str, values, **others):
    """Hypothesis ``@example``s that always run, one per value of ``arg`` (the other arguments fixed): the awkward
    inputs (rank 0, zero-size axes, negative axes) a bounded random draw may miss."""
    def decorate(test):
        for value in reversed(values):
            test = example(**{arg: value}, **others)(test)
        return test
    return decorate


DIMS = st.integers(1, 6) if LONG else st.sampled_from([1, 2, 3])  # sizes where an op needs cells (conv, pool)
MAX_RANK = 4 if LONG else 3
SEEDS = st.integers(0, 2**32 - 1) if LONG else st.integers(0, 3)


# CI draws whole shapes from a small pool (JAX compiles once per primitive and shape, ~50 ms each); rank 0 and
# zero-size axes are in it, because the bugs live there (an empty mean, an axis on a rank-0 array)
SHAPE_POOL = [(), (3,), (2, 3), (3, 1), (1, 2, 3), (2, 2, 3), (0,), (2, 0, 3)]
AXIS_SIZES = st.integers(0, 6)  # the long profile: any size, zero included


def shapes(min_rank=0, max_rank=None, empty=True):
    """Array shapes of rank ``min_rank..max_rank``, with zero-size axes unless ``empty=False``."""
    max_rank = MAX_RANK if max_rank is None else max_rank
    if not LONG:
        return st.sampled_from([s for s in SHAPE_POOL if min_rank <= len(s) <= max_rank and (empty or all(s))])
    return st.lists(AXIS_SIZES if empty else DIMS, min_size=min_rank, max_size=max_rank).map(tuple)


@st.composite
def shapes_and_axes(draw, min_rank=0, max_rank=None):
    """A shape and an ``axis`` argument for it (see ``axes``)."""
    shape = draw(shapes(min_rank, max_rank))
    return shape, axes(draw, len(shape))


def axes(draw, ndim: int, rank0_axis: bool = True):
    """An ``axis`` argument for a rank-``ndim`` array: None, an int or a tuple, with negative axes. For rank 0 also
    ``()`` and (if ``rank0_axis``) ``0``, which NumPy and JAX refuse: the engine must refuse it too."""
    if ndim == 0:
        return draw(st.sampled_from([None, (), 0] if rank0_axis else [None, ()]))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


def normwise_error(a, b, floor: float = 1e-300) -> float:
    """``max|a - b| / max(max|b|, floor)`` (0 for two empty or equal arrays; inf on a shape mismatch or a NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    a, b = np.nan_to_num(a, nan=0.0), np.nan_to_num(b, nan=0.0)  # NaN where the reference has NaN agrees
    if a.size == 0 or np.array_equal(a, b):
        return 0.0
    err = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), floor))
    return err if np.isfinite(err) else float("inf")


def differential(name: str, engine_fn, jax_fn, *arrays, seed: int = 0, tol: float = TOL):
    """Engine vs JAX (eager ``jax.vjp``, so compilations are cached per primitive and shape) on float64 arrays:
    the output and ``v^T J`` for every float argument, with a seeded random cotangent ``v``. Odd seeds give
    the engine non-contiguous leaves (``vjp_pair.strided_view``).

    Where JAX refuses the call (an axis on a rank-0 array, a max over no elements), the engine must refuse it
    too, with its own message (``"op: ..."``), never an error from deep inside NumPy.

    A vjp's error is relative to ``max(max|reference|, 1e-4 max|v|)``: where the true gradient is far below
    the cotangent's scale (tanh'(20) ~ 1e-17) only an absolute error above ~1e-14 |v| counts. JAX's own
    rounding lives there (it computes tanh' as 1 - y^2; the engine's (1 - y)(1 + y) is the more accurate)."""
    floats = [np.asarray(a) for a in arrays if np.issubdtype(np.asarray(a).dtype, np.floating)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref, pullback = jax.vjp(of_floats(jax_fn, arrays), *floats)
    except (TypeError, ValueError, IndexError) as refusal:
        with pytest.raises((TypeError, ValueError, IndexError), match=r"^[\w.]+: ") as engine_refusal:
            engine_fn(*(tg.Tensor(np.asarray(a)) for a in arrays))
        CASES[f"{name} (refused)"] += 1
        return f"refused: JAX {refusal!r}, engine {engine_refusal.value!r}"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*mean of an empty slice", RuntimeWarning)
        pair = vjp_pair(engine_fn, jax_fn, arrays, strided=seed % 2 == 1)
    errors = {"output": normwise_error(pair.out.data, ref)}
    v = np.random.default_rng(seed).standard_normal(pair.out.shape)
    for i, m, r in zip(pair.floats, pair.engine_vjp(v), pullback(v), strict=True):  # float args: same order
        errors[f"d/darg{i}"] = normwise_error(m, r, floor=1e-4 * float(np.max(np.abs(v), initial=0.0)))
    CASES[name] += 1
    worst = max(errors.values())
    if worst > WORST["err"]:
        WORST.update(err=worst, where=name)
    bad = {k: e for k, e in errors.items() if not e <= tol}
    assert not bad, f"{name}: engine differs from JAX: {bad} (shapes {[a.shape for a in arrays]})"
    return worst

