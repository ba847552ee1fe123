"""Finite-difference gradient checking with a structured report.

``fn`` maps Tensors to a Tensor ``y`` of any shape. A seeded random cotangent
``v`` (never all ones) turns the check into one of the scalar

    S(x) = <v, fn(x)>,     dS/dx = J^T v   (one backward pass of the engine).

Every input and every parameter ``x`` is then checked element by element
(*full* check, when ``x.size <= max_full``) against central differences

    n_i = (S(x + eps e_i) - S(x - eps e_i)) / (2 eps),

or, for larger tensors, along ``n_projections`` seeded random unit directions
``u`` (*projection* check): ``<u, J^T v>`` against
``(S(x + eps u) - S(x - eps u)) / (2 eps)``. Errors use the relative error
``|a - n| / max(1e-8, |a| + |n|)`` (autodiff ``a``, numerical ``n``), graded
good <= 1e-7 < fine-with-kinks <= 1e-4 < suspect <= 1e-2 < wrong. Rounding
limits what central differences can resolve: S is known to about
``atol = 8 * machine-eps * sum|v * y| / eps``, so the denominator's floor is
raised to ``atol / 1e-7`` (a difference at the noise level grades "good" at
worst; tiny gradient elements are not failed for rounding noise).

Kinks: each evaluation is observed by a ``KinkRecorder``, which collects every
primitive's ``kink_state`` (ReLU sign, max winner, clip side, ...). When the
states at ``x + eps`` and ``x - eps`` differ, that element (or direction)
straddles a kink: its finite difference is meaningless, so it is flagged and
left out of the grade (its error is reported separately).

``fn`` must be deterministic. Draws made without a seed (``dropout(...,
seed=None)``) are pinned with ``ops.random.fixed_seed(seed)`` so every
evaluation sees the same mask; any remaining randomness (a Generator that
advances between calls) is detected and refused with a ``ValueError``.

Precision: the check runs in float64. Float32/float16 inputs and parameters
are checked as float64 copies (parameters are restored afterwards) and a
``GradcheckWarning`` says so; integer inputs (labels, indices) are passed to
``fn`` unchanged and not checked.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.modes import no_grad
from tinygrad_cnn.observe import ForwardEvent, Observer, observing
from tinygrad_cnn.ops.random import fixed_seed
from tinygrad_cnn.tensor import Tensor

GOOD = 1e-7
FINE_WITH_KINKS = 1e-4
WRONG = 1e-2
DENOMINATOR_FLOOR = 1e-8
NOISE_FACTOR = 8.0

__all__ = [
    "DENOMINATOR_FLOOR", "FINE_WITH_KINKS", "GOOD", "WRONG", "GradcheckReport", "GradcheckWarning",
    "TensorCheck", "assert_gradcheck", "grade", "gradcheck", "relative_error",
]


class KinkRecorder(Observer):
    """Collects the ``kink_state`` of every primitive applied while it observes, in order (``states``)."""

    def __init__(self):
        self.states: list[np.ndarray] = []

    def forward(self, event: ForwardEvent) -> None:
        if event.function.kink_state is not None:
            self.states.append(event.function.kink_state(*(t.data for t in event.inputs), **event.params))


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
    """The result for one input or parameter.

    ``mode`` is ``"full"`` (every element) or ``"projection"`` (random
    directions; ``worst_index`` is then ``"u<k>"``). ``max_rel_error`` and
    ``grade`` ignore kink-straddling elements, listed in ``kinks`` (their own
    worst error is ``kink_max_rel_error``). ``passed``: ``max_rel_error <= rtol``.
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


@dataclass
class GradcheckReport:
    """Per-tensor results (``tensors``, also by name: ``report["inputs[0]"]``) and the settings used."""

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
    def max_rel_error(self) -> float:
        return max((t.max_rel_error for t in self.tensors), default=0.0)

    @property
    def any_kinks(self) -> bool:
        return any(t.kinks for t in self.tensors)

    def __getitem__(self, name: str) -> TensorCheck:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"GradcheckReport: no tensor named {name!r}; have {[t.name for t in self.tensors]}")

    def __str__(self) -> str:
        bad = [t.name for t in self.tensors if not t.passed]
        status = "passed" if not bad else f"FAILED for {', '.join(bad)}"
        head = (f"gradcheck {status} (rtol={self.rtol:.0e}, eps={self.eps:.0e}, float64, cotangent seed "
                f"{self.seed}, {self.evaluations} evaluations in {self.seconds:.2f} s)\n"
                f"rel = |a-n| / max(1e-8, |a|+|n|, atol/1e-7), atol={self.atol:.1e} (rounding noise of S = <v, y>)")
        cols = ("tensor", "shape", "check", "max abs", "max rel", "worst", "autodiff", "numerical", "grade",
                "kinks")
        rows = [cols]
        for t in self.tensors:
            rows.append((t.name, str(t.shape), f"{t.mode} {t.checked}", f"{t.max_abs_error:.2e}",
                         f"{t.max_rel_error:.2e}", str(t.worst_index), f"{t.autodiff:.10g}",
                         f"{t.numerical:.10g}", t.grade if t.passed else f"{t.grade} FAIL",
                         f"{len(t.kinks)}" + (f" (rel {t.kink_max_rel_error:.1e})" if t.kinks else "")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        lines = [head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        if self.any_kinks:
            lines.append("kinks: elements where x+eps and x-eps fall on different sides of a kink (ReLU sign, "
                         "max winner, ...); their finite differences are unreliable and are not graded")
        return "\n".join(lines)

    __repr__ = __str__


# -- preparation --------------------------------------------------------------------------------------------
def _float64_copy(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype != np.float64:
        warnings.warn(f"gradcheck: {name} is {array.dtype}; it is checked as a float64 copy (central differences "
                      f"in {array.dtype} are dominated by rounding)", GradcheckWarning, stacklevel=4)
    return np.array(array, dtype=np.float64, order="C", copy=True)


def _prepare_inputs(inputs):
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = (inputs,)
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(f"gradcheck: inputs must be a Tensor, an array or a sequence of them; "
                        f"got {type(inputs).__name__}")
    args, checked = [], []
    for i, x in enumerate(inputs):
        data = x.data if isinstance(x, Tensor) else np.asarray(x) if isinstance(x, (list, float, int)) else x
        if isinstance(data, np.ndarray) and np.issubdtype(data.dtype, np.floating):
            t = Tensor(_float64_copy(f"inputs[{i}]", data), requires_grad=True)
            args.append(t)
            checked.append((f"inputs[{i}]", t))
        else:
            args.append(x)  # labels, indices, flags: passed through, not checked
    return args, checked


def _named_params(params):
    items = list(params.items()) if isinstance(params, dict) else [(f"params[{i}]", p)
                                                                  for i, p in enumerate(params)]
    for name, p in items:
        if not isinstance(p, Tensor) or not np.issubdtype(p.dtype, np.floating):
            raise TypeError(f"gradcheck: {name} must be a floating Tensor (e.g. from model.parameters()); "
                            f"got {type(p).__name__}" + (f" of dtype {p.dtype}" if isinstance(p, Tensor) else ""))
    return items


def _kinks_differ(a: list, b: list) -> bool:
    if len(a) != len(b):
        return True
    return any(np.shape(x) != np.shape(y) or not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# -- the check ----------------------------------------------------------------------------------------------
def gradcheck(fn, inputs, params=(), eps: float = 1e-6, seed: int = 0, max_full: int = 1000,
              n_projections: int = 20, rtol: float = FINE_WITH_KINKS, atol: float | None = None) -> GradcheckReport:
    """Compare the engine's ``J^T v`` with central differences for every input and parameter of ``fn``.

    ``fn(*inputs) -> Tensor``; ``params``: Tensors ``fn`` uses besides its
    inputs (``model.parameters()``, or a dict name -> Tensor). See the module
    docstring for the method, the grading and the kink flag.
    """
    if not callable(fn):
        raise TypeError(f"gradcheck: fn must be callable; got {type(fn).__name__}")
    if not (isinstance(eps, float) and eps > 0):
        raise ValueError(f"gradcheck: eps must be a positive float; got {eps!r}")
    validation.positive_int("gradcheck", "seed", seed, minimum=0)
    validation.positive_int("gradcheck", "max_full", max_full, minimum=0)
    validation.positive_int("gradcheck", "n_projections", n_projections)
    validation.number_in("gradcheck", "rtol", rtol, 0.0, float("inf"))
    if atol is not None:
        validation.number_in("gradcheck", "atol", atol, 0.0, float("inf"))
    start = time.perf_counter()
    args, checked = _prepare_inputs(inputs)
    named = _named_params(params)
    saved = [(p, p.data, p.requires_grad) for _, p in named]
    try:
        for name, p in named:
            p.data, p.requires_grad = _float64_copy(name, p.data), True
            checked.append((name, p))
        return _run(fn, args, checked, eps, seed, max_full, n_projections, rtol, atol, start)
    finally:
        for p, data, req in saved:
            p.data, p.requires_grad = data, req


def _as_output(out) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor; got {type(out).__name__}")
    if not np.issubdtype(out.dtype, np.floating):
        raise TypeError(f"gradcheck: fn must return a floating Tensor; got dtype {out.dtype}")
    return out


def _run(fn, args, checked, eps, seed, max_full, n_projections, rtol, atol, start):
    with fixed_seed(seed):
        out = _as_output(fn(*args))
    if out.dtype != np.float64:
        warnings.warn(f"gradcheck: fn returned {out.dtype} for float64 inputs; finite differences lose "
                      f"precision", GradcheckWarning, stacklevel=3)
    if not np.isfinite(out.data).all():
        raise ValueError(f"gradcheck: fn's output (shape {out.shape}) holds NaN or Inf at the given inputs")
    v = np.random.default_rng(seed).standard_normal(out.shape)
    autodiff = [g.data.astype(np.float64) for g in grad(out, [t for _, t in checked], grad_output=v)]
    counter = [0]

    def evaluate():
        counter[0] += 1
        with no_grad(), fixed_seed(seed), observing(KinkRecorder()) as kinks:
            y = _as_output(fn(*args)).data
        prods = v * y
        return float(np.sum(prods)), float(np.sum(np.abs(prods))), kinks.states, y

    s0, sabs, _, y0 = evaluate()
    if y0.shape != out.shape or not np.array_equal(y0, out.data, equal_nan=True):
        diff = np.max(np.abs(y0 - out.data)) if y0.shape == out.shape else "shape"
        raise ValueError(f"gradcheck: fn is not deterministic: two evaluations at the same inputs differ "
                         f"(max difference {diff}). fn must be a pure function of its inputs and params; draw "
                         f"dropout with an explicit seed or training=False")
    noise = NOISE_FACTOR * np.finfo(np.float64).eps * max(sabs, 1e-300) / eps if atol is None else float(atol)

    results = []
    for index, ((name, t), a) in enumerate(zip(checked, autodiff, strict=True)):
        data = t.data
        if data.size <= max_full:
            results.append(_full(name, data, a, evaluate, eps, noise, rtol))
        else:
            rng = np.random.default_rng([seed, 1, index])
            results.append(_projections(name, data, a, evaluate, eps, noise, rtol, rng, n_projections))
    return GradcheckReport(results, eps, seed, rtol, noise, counter[0], time.perf_counter() - start)


def _full(name, data, autodiff, evaluate, eps, noise, rtol) -> TensorCheck:
    flat = data.reshape(-1)  # a view: data is C-contiguous float64 owned by the check
    numerical = np.empty(flat.size)
    kink = np.zeros(flat.size, bool)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        sp, _, kp, _ = evaluate()
        flat[i] = orig - eps
        sm, _, km, _ = evaluate()
        flat[i] = orig
        numerical[i] = (sp - sm) / (2 * eps)
        kink[i] = _kinks_differ(kp, km)
    a = autodiff.reshape(-1)
    return _summarise(name, data.shape, "full", a, numerical, kink, noise, rtol,
                      lambda i: tuple(int(j) for j in np.unravel_index(i, data.shape)))


def _projections(name, data, autodiff, evaluate, eps, noise, rtol, rng, n) -> TensorCheck:
    original = data.copy()
    a, numerical, kink = np.empty(n), np.empty(n), np.zeros(n, bool)
    for k in range(n):
        u = rng.standard_normal(data.shape)
        u /= np.linalg.norm(u)
        a[k] = float(np.sum(u * autodiff))
        np.add(original, eps * u, out=data)
        sp, _, kp, _ = evaluate()
        np.subtract(original, eps * u, out=data)
        sm, _, km, _ = evaluate()
        numerical[k] = (sp - sm) / (2 * eps)
        kink[k] = _kinks_differ(kp, km)
    data[...] = original
    return _summarise(name, data.shape, "projection", a, numerical, kink, noise, rtol, lambda k: f"u{k}")


def _summarise(name, shape, mode, a, numerical, kink, noise, rtol, label) -> TensorCheck:
    abs_err = np.abs(a - numerical)
    abs_err = np.where(np.isfinite(abs_err), abs_err, np.inf)
    rel = relative_error(a, numerical, noise)
    smooth = ~kink
    max_rel = float(rel[smooth].max(initial=0.0))
    if not smooth.any():
        worst = int(np.argmax(rel)) if rel.size else 0
    else:
        worst = int(np.argmax(np.where(smooth, rel, -1.0)))
    kinks = [label(int(i)) for i in np.flatnonzero(kink)]
    return TensorCheck(
        name=name, shape=tuple(shape), mode=mode, checked=int(a.size),
        max_abs_error=float(abs_err.max(initial=0.0)), max_rel_error=max_rel, worst_index=label(worst),
        autodiff=float(a[worst]) if a.size else 0.0, numerical=float(numerical[worst]) if a.size else 0.0,
        grade=grade(max_rel), passed=max_rel <= rtol, kinks=kinks,
        kink_max_rel_error=float(rel[kink].max(initial=0.0)),
    )


def assert_gradcheck(fn, inputs, params=(), **kwargs) -> GradcheckReport:
    """Run ``gradcheck`` and raise ``AssertionError`` with the report's table unless every tensor passed."""
    report = gradcheck(fn, inputs, params, **kwargs)
    if not report.passed:
        raise AssertionError("\n" + str(report))
    return report
