"""Agreement with JAX tallied per test module: how many configurations were compared and the worst error."""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-10


def rel_err(a, b) -> float:
    """max |a - b| / max |b| over the whole array (shapes must match)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)) if a.size else 0.0


class Tally:
    """``record(*errors)`` counts one configuration and asserts each error is below ``TOLERANCE``."""

    def __init__(self, what: str):
        self.what, self.configs, self.worst = what, 0, 0.0

    def record(self, *errors) -> None:
        self.configs += 1
        self.worst = max(self.worst, *errors)
        assert max(errors) < TOLERANCE, errors

    def report(self) -> None:
        """Print the tally (run pytest with -s to see it)."""
        print(f"\n{self.what}: {self.configs} configurations compared, worst relative error {self.worst:.2e}")
        assert self.worst < TOLERANCE
