"""Prints the fuzzers' case counts (per op family) and the worst engine-vs-JAX error in the terminal summary."""

from __future__ import annotations

import fuzzing


def pytest_terminal_summary(terminalreporter):
    if fuzzing.CASES:
        total = sum(fuzzing.CASES.values())
        terminalreporter.write_line(
            f"fuzz ({fuzzing.PROFILE} profile): {total} differential cases vs JAX, worst normwise error "
            f"{fuzzing.WORST['err']:.2e} ({fuzzing.WORST['where']})")
        terminalreporter.write_line("  per op: " + ", ".join(f"{k} {v}" for k, v in sorted(fuzzing.CASES.items())))
