"""The gradient checker's grading scale and its structured report (``tinygrad_cnn.gradcheck`` runs the checks).

A ``TensorCheck`` is one check of one input or parameter: its AD mode (``"rev"``: the vjp ``J^T v`` against
central differences of ``<v, fn>``; ``"fwd"``: the jvp ``J u`` against central differences of ``fn`` along ``u``,
element by element; ``"fwd-vs-rev"``: ``<v, J u>`` against ``<J^T v, u>``, exact to rounding; ``"batched"``: the
vjp of the whole batch against the per-sample vjps), the derivative order it checks (1: ``fn``'s gradient; 2:
the gradient of ``x -> J(x)^T v``, the gradient of the gradient), which elements (``"full"`` or
``"projection"``), the worst index and both values there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GOOD = 1e-7
FINE_WITH_KINKS = 1e-4
WRONG = 1e-2
DENOMINATOR_FLOOR = 1e-8
NOISE_FACTOR = 8.0

__all__ = ["DENOMINATOR_FLOOR", "FINE_WITH_KINKS", "GOOD", "NOISE_FACTOR", "WRONG", "GradcheckReport",
           "GradcheckWarning", "TensorCheck", "grade", "relative_error"]


class GradcheckWarning(UserWarning):
    """A gradient check ran with a caveat (float32 input checked as float64, non-float64 output)."""


def relative_error(autodiff, numerical, atol: float = 0.0) -> np.ndarray:
    """Elementwise ``|a - n| / max(1e-8, |a| + |n|, atol / GOOD)`` (NaN or Inf anywhere gives inf)."""
    a, n = np.asarray(autodiff, np.float64), np.asarray(numerical, np.float64)
    floor = max(DENOMINATOR_FLOOR, atol / GOOD)
    with np.errstate(invalid="ignore", over="ignore"):
        rel = np.abs(a - n) / np.maximum(floor, np.abs(a) + np.abs(n))
    return np.where(np.isfinite(rel), rel, np.inf)


def grade(rel_error: float) -> str:
    """``"good"`` (<= 1e-7), ``"fine-with-kinks"`` (<= 1e-4), ``"suspect"`` (<= 1e-2) or ``"wrong"``."""
    rel_error = float(rel_error)
    if not np.isfinite(rel_error) or rel_error > WRONG:
        return "wrong"
    if rel_error <= GOOD:
        return "good"
    return "fine-with-kinks" if rel_error <= FINE_WITH_KINKS else "suspect"


@dataclass
class TensorCheck:
    """The result of one check of one input or parameter.

    ``mode`` is ``"full"`` (every element) or ``"projection"`` (random
    directions; ``worst_index`` is then ``"u<k>"``). ``ad_mode`` and ``order``
    say what was checked (module docstring); a ``"fwd"`` check's
    ``worst_index`` names the direction and the output element
    (``"(i, j) -> out[k]"``). ``max_rel_error`` and ``grade`` ignore
    kink-straddling elements, listed in ``kinks`` (their own worst error is
    ``kink_max_rel_error``). ``passed``: ``max_rel_error <= rtol``.
    """

    name: str
    shape: tuple
    mode: str
    checked: int
    max_abs_error: float
    max_rel_error: float
    worst_index: object
    autodiff: float
    numerical: float
    grade: str
    passed: bool
    kinks: list = field(default_factory=list)
    kink_max_rel_error: float = 0.0
    ad_mode: str = "rev"
    order: int = 1

    @property
    def label(self) -> str:
        """``"inputs[0] (rev, order 1)"``: what was checked, in words."""
        return f"{self.name} ({self.ad_mode}, order {self.order})"


@dataclass
class GradcheckReport:
    """Per-check results (``tensors``) and the settings used.

    ``report["inputs[0]"]`` is that tensor's first-order reverse check; ``report["inputs[0]", "fwd", 2]`` names
    the AD mode and the order too. ``failures`` lists the checks that failed.
    """

    tensors: list
    eps: float
    seed: int
    rtol: float
    atol: float
    evaluations: int
    seconds: float

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tensors)

    @property
    def failures(self) -> list:
        return [t for t in self.tensors if not t.passed]

    @property
    def max_rel_error(self) -> float:
        return max((t.max_rel_error for t in self.tensors), default=0.0)

    @property
    def any_kinks(self) -> bool:
        return any(t.kinks for t in self.tensors)

    def __getitem__(self, key) -> TensorCheck:
        name, ad_mode, order = (key, "rev", 1) if isinstance(key, str) else (tuple(key) + ("rev", 1)[len(key) - 1:])
        for t in self.tensors:
            if (t.name, t.ad_mode, t.order) == (name, ad_mode, order):
                return t
        have = sorted({(t.name, t.ad_mode, t.order) for t in self.tensors})
        raise KeyError(f"GradcheckReport: no tensor named {name!r} checked in mode {ad_mode!r} at order {order}; "
                       f"have {have}")

    def __str__(self) -> str:
        bad = [t.label for t in self.tensors if not t.passed]
        status = "passed" if not bad else f"FAILED for {', '.join(bad)}"
        head = (f"gradcheck {status} (rtol={self.rtol:.0e}, eps={self.eps:.0e}, float64, cotangent seed "
                f"{self.seed}, {self.evaluations} evaluations in {self.seconds:.2f} s)\n"
                f"rel = |a-n| / max(1e-8, |a|+|n|, atol/1e-7), atol={self.atol:.1e} (rounding noise of S = <v, y>)")
        cols = ("order", "ad mode", "tensor", "shape", "check", "max abs", "max rel", "worst", "autodiff",
                "numerical", "grade", "kinks")
        rows = [cols]
        for t in self.tensors:
            rows.append((str(t.order), t.ad_mode, t.name, str(t.shape), f"{t.mode} {t.checked}",
                         f"{t.max_abs_error:.2e}", f"{t.max_rel_error:.2e}", str(t.worst_index), f"{t.autodiff:.10g}",
                         f"{t.numerical:.10g}", t.grade if t.passed else f"{t.grade} FAIL",
                         f"{len(t.kinks)}" + (f" (rel {t.kink_max_rel_error:.1e})" if t.kinks else "")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        lines = [head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        if self.any_kinks:
            lines.append("kinks: elements where x+eps and x-eps fall on different sides of a kink (ReLU sign, "
                         "max winner, ...); their finite differences are unreliable and are not graded")
        if any(t.ad_mode != "rev" for t in self.tensors):
            lines.append("fwd: jvp J u vs central differences of fn along u; fwd-vs-rev: <v, J u> vs <J^T v, u> "
                         "(no finite step; 'numerical' is the rev side); batched: the batch's vjp vs per-sample "
                         "vjps ('numerical' is the per-sample value)")
        return "\n".join(lines)

    __repr__ = __str__
