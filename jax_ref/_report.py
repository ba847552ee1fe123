"""Number-by-number comparison of engine and JAX arrays, and the report tables built from it.

For an engine array ``a`` and its JAX twin ``b`` the elementwise relative error
is the gradient checker's (``tinygrad_cnn.gradcheck.relative_error``):

    rel_i = |a_i - b_i| / max(1e-8, |a_i| + |b_i|, atol / 1e-7),   atol = 1e-7 * sqrt(eps) * max_j |b_j|

so an element far below the array's scale (where two correct programs differ
only by rounding, ``eps * scale``) is judged against ``sqrt(eps) * scale``
instead of against itself: float64 rounding grades "good", float32 rounding
"fine-with-kinks" at worst. Grades use the checker's scale: good <= 1e-7,
fine-with-kinks <= 1e-4, suspect <= 1e-2, wrong above.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import jax
import numpy as np

from tinygrad_cnn import gradcheck


@dataclass
class Entry:
    """One compared array: engine value ``engine`` vs JAX value ``jax`` at the worst element ``worst_index``."""

    name: str
    kind: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    engine: float
    jax: float
    grade: str


def compare_arrays(name: str, kind: str, engine, twin) -> Entry:
    """Entry for two arrays of the same shape (a shape mismatch is graded ``wrong`` with inf errors)."""
    a = np.asarray(engine, np.float64)
    b = np.asarray(twin, np.float64)
    if a.shape != b.shape:
        return Entry(name, kind, f"{a.shape} vs {b.shape}", np.inf, np.inf, (), np.nan, np.nan, "wrong")
    if a.size == 0:
        return Entry(name, kind, a.shape, 0.0, 0.0, (), np.nan, np.nan, "good")
    dtype = np.result_type(np.asarray(engine).dtype, np.asarray(twin).dtype)
    eps = np.finfo(dtype).eps if np.issubdtype(dtype, np.floating) else np.finfo(np.float64).eps
    scale = float(np.max(np.abs(b))) if np.isfinite(b).all() else 0.0
    rel = gradcheck.relative_error(a, b, atol=gradcheck.GOOD * np.sqrt(eps) * scale)
    flat = int(np.argmax(rel))
    idx = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    with np.errstate(invalid="ignore"):
        abs_err = np.abs(a - b)
    max_abs = float(np.nanmax(abs_err)) if np.isfinite(abs_err).all() else np.inf
    worst = float(rel.flat[flat])
    return Entry(name, kind, a.shape, max_abs, worst, idx, float(a.flat[flat]), float(b.flat[flat]),
                 gradcheck.grade(worst))


def _fmt(v) -> str:
    return f"{v:.2e}" if isinstance(v, float) else str(v)


@dataclass
class Report:
    """A table of ``Entry`` rows; ``passed`` when every ``max_rel_error <= rtol``.

    ``suspect`` is the first failing row in ``order`` (compare_gradients lists
    rows from the loss backwards, so it names the layer where the error enters).
    """

    title: str
    entries: list = field(default_factory=list)
    rtol: float = gradcheck.FINE_WITH_KINKS
    notes: list = field(default_factory=list)

    @property
    def max_rel_error(self) -> float:
        return max((e.max_rel_error for e in self.entries), default=0.0)

    @property
    def grade(self) -> str:
        return gradcheck.grade(self.max_rel_error)

    @property
    def passed(self) -> bool:
        return all(e.max_rel_error <= self.rtol for e in self.entries)

    @property
    def failures(self) -> list:
        return [e for e in self.entries if e.max_rel_error > self.rtol]

    @property
    def suspect(self) -> Entry | None:
        fails = self.failures
        return fails[0] if fails else None

    def __getitem__(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"Report: no row named {name!r}; have {[e.name for e in self.entries]}")

    def table(self) -> str:
        cols = ("name", "kind", "shape", "max abs", "max rel", "worst", "engine", "jax", "grade")
        rows = [cols] + [(e.name, e.kind, str(e.shape), _fmt(e.max_abs_error), _fmt(e.max_rel_error),
                          str(e.worst_index), f"{e.engine:.6g}", f"{e.jax:.6g}", e.grade) for e in self.entries]
        widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        status = "passed" if self.passed else f"FAILED ({len(self.failures)} rows above rtol)"
        head = f"{self.title}: {status}, worst rel {self.max_rel_error:.2e} ({self.grade}), rtol {self.rtol:.0e}"
        if self.suspect is not None:
            head += f"\nfirst failing row (from the loss backwards): {self.suspect.name} ({self.suspect.kind})"
        return "\n".join([head, self.table(), *self.notes])

    __repr__ = __str__


@contextlib.contextmanager
def float64():
    """Enable ``jax_enable_x64`` inside the block and restore the previous setting afterwards."""
    previous = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
