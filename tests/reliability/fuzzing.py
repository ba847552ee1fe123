"""Shared pieces of the differential fuzzers: the hypothesis profiles, case counters and the comparison.

Profiles (``TINYGRAD_CNN_FUZZ``): ``ci`` (default) runs a bounded number of examples per test, derandomized
(the same examples on every run, no example database), with shapes drawn from a small pool so that JAX's
per-shape compilations are reused; ``long`` runs many more, randomized, over larger shapes.
"""

from __future__ import annotations

import collections
import os

import jax
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from vjp_pair import vjp_pair

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


DIMS = st.integers(1, 6) if LONG else st.sampled_from([1, 2, 3])
MAX_RANK = 4 if LONG else 3
SEEDS = st.integers(0, 2**32 - 1) if LONG else st.integers(0, 3)


# CI draws whole shapes from a small pool (JAX compiles once per primitive and shape, ~50 ms each)
SHAPE_POOL = [(), (3,), (2, 3), (3, 1), (1, 2, 3), (2, 2, 3)]


def shapes(min_rank=0, max_rank=None):
    max_rank = MAX_RANK if max_rank is None else max_rank
    if not LONG:
        return st.sampled_from([s for s in SHAPE_POOL if min_rank <= len(s) <= max_rank])
    return st.lists(DIMS, min_size=min_rank, max_size=max_rank).map(tuple)


def normwise_error(a, b, floor: float = 1e-300) -> float:
    """``max|a - b| / max(max|b|, floor)`` (0 for two empty or equal arrays; inf on a shape mismatch or a NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0 or np.array_equal(a, b):
        return 0.0
    err = float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), floor))
    return err if np.isfinite(err) else float("inf")


def differential(name: str, engine_fn, jax_fn, *arrays, seed: int = 0, tol: float = TOL):
    """Engine vs JAX (eager ``jax.vjp``, so compilations are cached per primitive and shape) on float64 arrays:
    the output and ``v^T J`` for every float argument, with a seeded random cotangent ``v``.

    A vjp's error is relative to ``max(max|reference|, 1e-4 max|v|)``: where the true gradient is far below
    the cotangent's scale (tanh'(20) ~ 1e-17) only an absolute error above ~1e-14 |v| counts. JAX's own
    rounding lives there (it computes tanh' as 1 - y^2; the engine's (1 - y)(1 + y) is the more accurate)."""
    pair = vjp_pair(engine_fn, jax_fn, arrays)
    ref, pullback = jax.vjp(pair.jax_of_floats, *(pair.arrays[i] for i in pair.floats))
    errors = {"output": normwise_error(pair.out.data, ref)}
    v = np.random.default_rng(seed).standard_normal(pair.out.shape)
    for i, m, r in zip(pair.floats, pair.engine_vjp(v), pullback(v), strict=True):
        errors[f"d/darg{i}"] = normwise_error(m, r, floor=1e-4 * float(np.max(np.abs(v), initial=0.0)))
    CASES[name] += 1
    worst = max(errors.values())
    if worst > WORST["err"]:
        WORST.update(err=worst, where=name)
    bad = {k: e for k, e in errors.items() if not e <= tol}
    assert not bad, f"{name}: engine differs from JAX: {bad} (shapes {[a.shape for a in arrays]})"
    return worst
