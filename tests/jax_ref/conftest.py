"""Records every op configuration compared by tests/jax_ref and prints the count and the worst error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# pytest puts tests/ on sys.path (for tests/conftest.py), where this directory, tests/jax_ref, would be picked
# up as a namespace package named jax_ref; the repository root on the path makes the real package win.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.modules.pop("jax_ref", None) if getattr(sys.modules.get("jax_ref"), "__file__", "") is None else None

OP_CHECKS = {"count": 0, "worst": 0.0, "where": "", "per_op": {}}


@pytest.fixture(name="record_op")
def record_op_fixture():
    """``record_op(report)``: assert the op report passed and count it in the session summary."""

    def record(report, rtol=1e-6):
        OP_CHECKS["count"] += 1
        op = report.title.split()[1].split("(")[0]
        count, worst = OP_CHECKS["per_op"].get(op, (0, 0.0))
        OP_CHECKS["per_op"][op] = (count + 1, max(worst, report.max_rel_error))
        if report.max_rel_error > OP_CHECKS["worst"]:
            OP_CHECKS["worst"], OP_CHECKS["where"] = report.max_rel_error, report.title
        assert report.max_rel_error <= rtol, str(report)
        return report

    return record


def pytest_terminal_summary(terminalreporter):
    if OP_CHECKS["count"]:
        terminalreporter.write_line(
            f"jax_ref.check_op: {OP_CHECKS['count']} op configurations compared (forward + every vjp, float64), "
            f"worst relative error {OP_CHECKS['worst']:.3e} in {OP_CHECKS['where']}")
        per_op = ", ".join(f"{op} {n} ({w:.1e})" for op, (n, w) in sorted(OP_CHECKS["per_op"].items()))
        terminalreporter.write_line(f"  per op: configurations (worst relative error): {per_op}")
