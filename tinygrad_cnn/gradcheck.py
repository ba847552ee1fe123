"""Finite-difference gradient checking, first and second order, reverse and forward mode, with a structured report.

``fn`` maps Tensors to a Tensor ``y`` of any shape (or a pytree of them). A seeded random cotangent
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

Modes (``modes``, as ``jax.test_util.check_grads``): ``"rev"`` is the check above. ``"fwd"`` checks the jvp
``J u`` (``tinygrad_cnn.jvp``, the double-vjp) along the same directions against the central differences of the
whole output ``(fn(x + eps u) - fn(x - eps u)) / (2 eps)``, element by element (its rounding floor:
``8 * machine-eps * max|y| / eps``), and then the two modes against each other: ``<v, J u> = <J^T v, u>``
(``"fwd-vs-rev"``, no finite step, so graded at ``GOOD``). The jvp reuses the rev check's evaluations.

Orders (``order``, as JAX's ``order`` and PyTorch's ``gradgradcheck``): order 2 repeats every mode on the
function ``x -> J(x)^T v`` (the first-order vjp, recorded with ``create_graph=True``), i.e. it checks the
gradient of the gradient: ``H v`` directions, with a fresh random cotangent.

``batched=True`` checks that the vjp of a batch equals the batch of per-sample vjps: every floating input whose
first axis is the batch (the output's first axis) is split into samples, ``fn`` runs on each, and the
per-sample input gradients must equal the batch's rows, the parameter gradients their sum (graded at ``GOOD``).
It catches vjps (and forwards) that mix samples; leave it off for functions that couple samples on purpose
(batch statistics).

Kinks: each evaluation is observed by a ``KinkRecorder``, which collects every
primitive's ``kink_state`` (ReLU sign, max winner, clip side, ...), including the primitives a vjp applies at
order 2. When the states at ``x + eps`` and ``x - eps`` differ, that element (or direction)
straddles a kink: its finite difference is meaningless, so it is flagged and
left out of the grade (its error is reported separately), in every mode and at every order.

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

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.gradcheck_report import (
    DENOMINATOR_FLOOR,
    FINE_WITH_KINKS,
    GOOD,
    NOISE_FACTOR,
    WRONG,
    GradcheckReport,
    GradcheckWarning,
    TensorCheck,
    grade,
    relative_error,
)
from tinygrad_cnn.gradcheck_sweep import output_labels, summarise, summarise_fwd, sweep
from tinygrad_cnn.modes import enable_grad, is_grad_enabled, no_grad
from tinygrad_cnn.observe import ForwardEvent, Observer, observing
from tinygrad_cnn.ops.random import fixed_seed
from tinygrad_cnn.pytree import tree_flatten
from tinygrad_cnn.tensor import Tensor

__all__ = [
    "DENOMINATOR_FLOOR", "FINE_WITH_KINKS", "GOOD", "WRONG", "GradcheckReport", "GradcheckWarning",
    "TensorCheck", "assert_gradcheck", "grade", "gradcheck", "relative_error",
]

MODES = ("rev", "fwd")


class KinkRecorder(Observer):
    """Collects the ``kink_state`` of every primitive applied while it observes, in order (``states``)."""

    def __init__(self):
        self.states: list[np.ndarray] = []

    def forward(self, event: ForwardEvent) -> None:
        if event.function.kink_state is not None:
            self.states.append(event.function.kink_state(*(t.data for t in event.inputs), **event.params))


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


def _modes(modes) -> tuple:
    modes = (modes,) if isinstance(modes, str) else tuple(modes) if isinstance(modes, (tuple, list)) else None
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise ValueError(f"gradcheck: modes must be a non-empty tuple of distinct names from {MODES} (as "
                         f"jax.test_util.check_grads); got {modes!r}")
    return modes


# -- the check ----------------------------------------------------------------------------------------------
def gradcheck(fn, inputs, params=(), eps: float = 1e-6, seed: int = 0, max_full: int = 1000,
              n_projections: int = 20, rtol: float = FINE_WITH_KINKS, atol: float | None = None, order: int = 1,
              modes=("rev",), batched: bool = False) -> GradcheckReport:
    """Compare the engine's derivatives of ``fn`` with central differences, for every input and parameter.

    ``fn(*inputs) -> Tensor`` (or a pytree of Tensors); ``params``: Tensors ``fn`` uses besides its inputs
    (``model.parameters()``, or a dict name -> Tensor). ``order``: 1 (gradients) or 2 (also gradients of
    gradients); ``modes``: ``("rev",)``, ``("fwd",)`` or ``("rev", "fwd")``; ``batched``: also check the batch
    against per-sample vjps. See the module docstring for the method, the grading and the kink flag.
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
    if order not in (1, 2) or isinstance(order, bool):
        raise ValueError(f"gradcheck: order must be 1 (gradients) or 2 (gradients of gradients); got {order!r}")
    modes = _modes(modes)
    start = time.perf_counter()
    args, checked = _prepare_inputs(inputs)
    named = _named_params(params)
    saved = [(p, p.data, p.requires_grad) for _, p in named]
    try:
        for name, p in named:
            p.data, p.requires_grad = _float64_copy(name, p.data), True
            checked.append((name, p))
        settings = _Settings(eps, seed, max_full, n_projections, rtol, atol, modes)
        results, evaluations, noise = [], 0, None
        level = _first_order(fn, args)
        for k in range(1, order + 1):
            checks, count, level_noise, cotangents = _check_level(level, checked, settings, k)
            results.extend(checks)
            evaluations += count
            noise = level_noise if noise is None else noise
            if k < order:
                level = _next_order(level, checked, cotangents)
        if batched:
            results.extend(_batched(fn, args, checked, seed, rtol))
        return GradcheckReport(results, eps, seed, rtol, noise, evaluations, time.perf_counter() - start)
    finally:
        for p, data, req in saved:
            p.data, p.requires_grad = data, req


class _Settings:
    def __init__(self, eps, seed, max_full, n_projections, rtol, atol, modes):
        self.eps, self.seed, self.max_full, self.n_projections = eps, seed, max_full, n_projections
        self.rtol, self.atol, self.modes = rtol, atol, modes


def _as_outputs(out) -> list[Tensor]:
    if isinstance(out, Tensor) and np.issubdtype(out.dtype, np.floating):
        return [out]  # the common case, without the pytree walk (it runs at every evaluation)
    leaves, treedef = tree_flatten(out)
    for i, t in enumerate(leaves):
        where = "" if treedef.kind == "leaf" else f" (output leaf {i})"
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor{where}; got {type(t).__name__}")
        if not np.issubdtype(t.dtype, np.floating):
            raise TypeError(f"gradcheck: fn must return a floating Tensor{where}; got dtype {t.dtype}")
    if not leaves:
        raise TypeError("gradcheck: fn returned no Tensor")
    return leaves


def _first_order(fn, args):
    """Level 1: the outputs of ``fn`` itself."""
    return lambda: _as_outputs(fn(*args))


def _next_order(level, checked, cotangents):
    """The next level: ``x -> J(x)^T v`` of ``level`` (the vjp, recorded so that it can be differentiated)."""
    tensors = [t for _, t in checked]

    def vjp_level():
        record = is_grad_enabled()  # evaluations for the finite differences run under no_grad: nothing to record
        with enable_grad():
            return grad(level(), tensors, grad_output=cotangents, create_graph=record)

    return vjp_level


def _check_level(level, checked, s: _Settings, order: int):
    """Every mode at one order: ``(checks, evaluations, rounding noise of S, the cotangents used)``."""
    with fixed_seed(s.seed), enable_grad():
        outs = level()
    for t in outs:
        if t.dtype != np.float64:
            warnings.warn(f"gradcheck: fn returned {t.dtype} for float64 inputs; finite differences lose "
                          f"precision", GradcheckWarning, stacklevel=4)
        if not np.isfinite(t.data).all():
            raise ValueError(f"gradcheck: fn's output (shape {t.shape}) holds NaN or Inf at the given inputs"
                             + ("" if order == 1 else f" (its order-{order - 1} gradient)"))
    rng = np.random.default_rng([s.seed, 0, order] if order > 1 else s.seed)
    vs = [rng.standard_normal(t.shape) for t in outs]
    tensors = [t for _, t in checked]
    live = [(t, v) for t, v in zip(outs, vs, strict=True) if t.requires_grad]
    if "fwd" in s.modes:  # the recorded vjp u -> J^T u, whose own vjp is the jvp (double-vjp)
        dummies = [Tensor(np.zeros(t.shape), requires_grad=True) for t, _ in live]
        linear = grad([t for t, _ in live], tensors, grad_output=dummies, create_graph=True) if live else None
    autodiff = [g.data.astype(np.float64) for g in grad(outs, tensors, grad_output=vs, retain_graph=True)]
    y0_ref = np.concatenate([t.data.reshape(-1) for t in outs])
    v_flat = np.concatenate([v.reshape(-1) for v in vs])
    counter = [0]

    def evaluate():
        counter[0] += 1
        with no_grad(), fixed_seed(s.seed), observing(KinkRecorder()) as kinks:
            y = np.concatenate([t.data.reshape(-1) for t in _as_outputs(level())])
        prods = v_flat * y
        return float(np.sum(prods)), float(np.sum(np.abs(prods))), kinks.states, y

    s0, sabs, _, y0 = evaluate()
    if y0.shape != y0_ref.shape or not np.array_equal(y0, y0_ref, equal_nan=True):
        diff = np.max(np.abs(y0 - y0_ref)) if y0.shape == y0_ref.shape else "shape"
        raise ValueError(f"gradcheck: fn is not deterministic: two evaluations at the same inputs differ "
                         f"(max difference {diff}). fn must be a pure function of its inputs and params; draw "
                         f"dropout with an explicit seed or training=False")
    noise = NOISE_FACTOR * np.finfo(np.float64).eps * max(sabs, 1e-300) / s.eps if s.atol is None else float(s.atol)
    out_noise = NOISE_FACTOR * np.finfo(np.float64).eps * max(float(np.abs(y0).max(initial=0.0)), 1e-300) / s.eps
    out_label = output_labels(outs)

    results = []
    for index, ((name, t), a) in enumerate(zip(checked, autodiff, strict=True)):
        def jvp(direction, index=index):
            if linear is None:
                return np.zeros_like(y0)
            tan = grad([linear[index]], dummies, grad_output=[Tensor(direction)], retain_graph=True)
            full = {id(d): g.data.reshape(-1) for d, g in zip(dummies, tan, strict=True)}
            return np.concatenate([full[id(d)] if t.requires_grad else np.zeros(t.size)
                                   for t, d in _pair(outs, dummies)])

        swept = sweep(name, t.data, a, evaluate, s, np.random.default_rng([s.seed, 1, index]),
                       jvp if "fwd" in s.modes else None)
        if "rev" in s.modes:
            results.append(summarise(name, t.data.shape, swept.kind, swept.rev_a, swept.rev_n, swept.kink, noise,
                                      s.rtol, swept.label, "rev", order))
        if "fwd" in s.modes:
            results.append(summarise_fwd(name, t.data.shape, swept, out_noise, s.rtol, out_label, order))
            dots = np.array([float(v_flat @ j) for j in swept.fwd_a])
            scale = max(float(np.abs(v_flat) @ np.abs(j)) for j in swept.fwd_a) if swept.fwd_a else 0.0
            results.append(summarise(name, t.data.shape, swept.kind, dots, swept.rev_a, np.zeros(dots.size, bool),
                                      64 * np.finfo(np.float64).eps * scale, GOOD, swept.label, "fwd-vs-rev", order))
    return results, counter[0], noise, vs


def _pair(outs, dummies):
    """Each output with its dummy cotangent (None for an output that does not require a gradient)."""
    it = iter(dummies)
    return [(t, next(it) if t.requires_grad else None) for t in outs]


# -- the batched check ------------------------------------------------------------------------------------------
def _batched(fn, args, checked, seed, rtol) -> list[TensorCheck]:
    """The batch's vjp against the per-sample vjps (inputs: row by row; parameters: summed over the samples)."""
    with fixed_seed(seed), enable_grad():
        outs = _as_outputs(fn(*args))
    batch = outs[0].shape[0] if outs[0].ndim else None
    if batch is None or any(t.ndim == 0 or t.shape[0] != batch for t in outs):
        raise ValueError(f"gradcheck: batched=True needs every output to have the batch as its first axis; got "
                         f"output shapes {[t.shape for t in outs]}")
    split = [i for i, a in enumerate(args) if isinstance(a, (Tensor, np.ndarray)) and np.ndim(a) and
             np.shape(a)[0] == batch]
    position = {id(args[i]): i for i in split if isinstance(args[i], Tensor) and args[i].requires_grad}
    if not position:
        raise ValueError(f"gradcheck: batched=True needs a floating input whose first axis is the batch "
                         f"({batch}); got input shapes {[np.shape(a) for a in args]}")
    rng = np.random.default_rng([seed, 2])
    vs = [rng.standard_normal(t.shape) for t in outs]
    tensors = [t for _, t in checked]
    whole = [g.data for g in grad(outs, tensors, grad_output=vs)]
    per = [np.zeros_like(w) for w in whole]
    for b in range(batch):
        sample = list(args)
        for i in split:
            a = args[i]
            sample[i] = Tensor(a.data[b:b + 1], requires_grad=True) if id(a) in position else a[b:b + 1]
        targets = [sample[position[id(t)]] if id(t) in position else t for t in tensors]
        with fixed_seed(seed), enable_grad():
            souts = _as_outputs(fn(*sample))
        for k, (t, g) in enumerate(zip(tensors, grad(souts, targets, grad_output=[v[b:b + 1] for v in vs]),
                                       strict=True)):
            if id(t) in position:  # a batched input: its row
                per[k][b:b + 1] = g.data
            else:  # a parameter (or an input without the batch axis): the sum over the samples
                per[k] += g.data
    results = []
    for (name, t), w, p in zip(checked, whole, per, strict=True):
        scale = float(np.abs(w).max(initial=0.0))
        label = lambda i, shape=t.shape: tuple(int(j) for j in np.unravel_index(i, shape))  # noqa: E731
        results.append(summarise(name, t.shape, "full", w.reshape(-1), p.reshape(-1), np.zeros(w.size, bool),
                                  1e3 * np.finfo(np.float64).eps * scale, min(rtol, GOOD), label, "batched", 1))
    return results


def assert_gradcheck(fn, inputs, params=(), **kwargs) -> GradcheckReport:
    """Run ``gradcheck`` and raise ``AssertionError`` with the report's table unless every check passed."""
    report = gradcheck(fn, inputs, params, **kwargs)
    if not report.passed:
        raise AssertionError("\n" + str(report))
    return report
