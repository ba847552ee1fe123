"""Shared test fixtures: JAX in float64 for the whole session and engine-vs-JAX vjp comparison.

``check_vjp(engine_fn, jax_fn, *arrays)`` runs both functions on the same
float64 arrays, draws a seeded random cotangent ``v`` over the whole output
(never ones) and compares the outputs and every ``v^T J`` given by
``tinygrad_cnn.grad`` and ``jax.vjp``. Integer arrays (labels, indices) are
passed to both functions and not differentiated. It asserts the largest
elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)`` is below
``tol`` and records it; the worst value seen in the session is printed in the
terminal summary (run without xdist, ``-p no:xdist``, to see it).
"""

from __future__ import annotations

import os

# Tests are compile-bound (many small shapes, each run once or twice): XLA's cheapest backend optimisation
# level compiles several times faster and changes no result beyond rounding. Example scripts run as
# subprocesses inherit it. A flag already set by the user wins.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from vjp_pair import max_rel_error, vjp_pair  # noqa: E402

WORST = {"rel": 0.0, "where": "", "checks": 0}


def _record(rel: float, where: str) -> None:
    WORST["checks"] += 1
    if rel > WORST["rel"]:
        WORST["rel"], WORST["where"] = rel, where


def check_vjp(engine_fn, jax_fn, *arrays, seed: int = 0, tol: float = 1e-9, name: str = "", record: bool = True):
    """Assert engine and JAX agree on the output and on ``v^T J`` for every float argument; return max rel."""
    pair = vjp_pair(engine_fn, jax_fn, arrays)
    out = pair.out
    v = np.random.default_rng(seed).standard_normal(out.shape)

    @jax.jit  # one XLA compilation for forward and vjp: ~3x cheaper than op-by-op dispatch on new shapes
    def reference(floats, cotangent):
        y, pullback = jax.vjp(pair.jax_of_floats, *floats)
        return y, pullback(cotangent.astype(y.dtype))

    ref_out, ref = reference(tuple(jnp.asarray(pair.arrays[i]) for i in pair.floats), jnp.asarray(v))
    rel = max_rel_error(out.data, ref_out)
    assert rel <= tol, f"{name}: forward differs from JAX: max rel error {rel:.3e}"
    worst = rel
    for i, m, r in zip(pair.floats, pair.engine_vjp(v), ref, strict=True):
        e = max_rel_error(m, r)
        assert e <= tol, (f"{name}: vjp wrt argument {i} differs from JAX: max rel error {e:.3e}\n"
                          f"engine:\n{m}\njax:\n{np.asarray(r)}")
        worst = max(worst, e)
    if record:
        _record(worst, name)
    return worst


@pytest.fixture(name="check_vjp")
def check_vjp_fixture(request):
    """``check_vjp(engine_fn, jax_fn, *arrays, seed=0, tol=1e-9)``, named after the running test."""

    def run(engine_fn, jax_fn, *arrays, **kwargs):
        kwargs.setdefault("name", request.node.name)
        return check_vjp(engine_fn, jax_fn, *arrays, **kwargs)

    return run


@pytest.fixture
def rng():
    """A fixed-seed NumPy Generator (a fresh one per test)."""
    return np.random.default_rng(1234)


def pytest_terminal_summary(terminalreporter):
    if WORST["checks"]:
        terminalreporter.write_line(
            f"engine vs JAX: {WORST['checks']} vjp checks, largest relative error {WORST['rel']:.3e} "
            f"({WORST['where']})")
