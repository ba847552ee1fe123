"""The gradient checker's finite-difference sweeps and their summaries (``tinygrad_cnn.gradcheck`` drives them).

A sweep perturbs one tensor along its directions (each element, or seeded random unit projections), evaluates
``fn`` at ``x +- eps u`` and keeps both sides: the scalar ``S = <v, y>`` for reverse mode, the whole output for
forward mode, and whether the kink states differ. ``summarise`` turns engine values against numerical ones into
a ``TensorCheck``.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.gradcheck_report import TensorCheck, grade, relative_error

__all__ = ["Sweep", "kinks_differ", "output_labels", "summarise", "summarise_fwd", "sweep"]


def kinks_differ(a: list, b: list) -> bool:
    if len(a) != len(b):
        return True
    return any(np.shape(x) != np.shape(y) or not np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def output_labels(outs):
    sizes = np.cumsum([0] + [t.size for t in outs])

    def label(k):
        j = int(np.searchsorted(sizes, k, side="right") - 1)
        idx = tuple(int(i) for i in np.unravel_index(k - sizes[j], outs[j].shape))
        return f"out[{j}]{list(idx)}" if len(outs) > 1 else f"out{list(idx)}"

    return label


class Sweep:
    """The central differences of one tensor along its directions (elements or projections), with the engine's
    values: ``rev_a``/``rev_n`` (scalars per direction), ``fwd_a``/``fwd_n`` (output vectors per direction)."""

    def __init__(self, kind, n, label):
        self.kind, self.label = kind, label
        self.rev_a, self.rev_n, self.kink = np.empty(n), np.empty(n), np.zeros(n, bool)
        self.fwd_a, self.fwd_n = [], []


def sweep(name, data, autodiff, evaluate, s, rng, jvp) -> Sweep:
    """Central differences of ``evaluate`` along the directions of ``data`` (perturbed in place, restored): each
    element when ``data.size <= s.max_full``, else ``s.n_projections`` seeded random unit directions; the
    engine's ``<u, autodiff>`` beside them, and with ``jvp`` (a function of the direction) its ``J u`` too."""
    full = data.size <= s.max_full
    n = data.size if full else s.n_projections
    label = ((lambda i: tuple(int(j) for j in np.unravel_index(i, data.shape))) if full else (lambda k: f"u{k}"))
    result = Sweep("full" if full else "projection", n, label)
    original = data.copy()
    flat, a_flat = data.reshape(-1), autodiff.reshape(-1)  # a view: data is C-contiguous float64 owned by the check
    for k in range(n):
        if full:
            u = None
            result.rev_a[k] = a_flat[k]
            flat[k] = original.flat[k] + s.eps
        else:
            u = rng.standard_normal(data.shape)
            u /= np.linalg.norm(u)
            result.rev_a[k] = float(np.sum(u * autodiff))
            np.add(original, s.eps * u, out=data)
        sp, _, kp, yp = evaluate()
        if full:
            flat[k] = original.flat[k] - s.eps
        else:
            np.subtract(original, s.eps * u, out=data)
        sm, _, km, ym = evaluate()
        if full:
            flat[k] = original.flat[k]
        else:
            data[...] = original
        result.rev_n[k] = (sp - sm) / (2 * s.eps)
        result.kink[k] = kinks_differ(kp, km)
        if jvp is not None:
            if u is None:
                u = np.zeros(data.shape)
                u.flat[k] = 1.0
            result.fwd_a.append(jvp(u))
            result.fwd_n.append((yp - ym) / (2 * s.eps))
    return result


def summarise(name, shape, kind, a, numerical, kink, noise, rtol, label, ad_mode, order) -> TensorCheck:
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
        name=name, shape=tuple(shape), mode=kind, checked=int(a.size),
        max_abs_error=float(abs_err.max(initial=0.0)), max_rel_error=max_rel, worst_index=label(worst),
        autodiff=float(a[worst]) if a.size else 0.0, numerical=float(numerical[worst]) if a.size else 0.0,
        grade=grade(max_rel), passed=max_rel <= rtol, kinks=kinks,
        kink_max_rel_error=float(rel[kink].max(initial=0.0)), ad_mode=ad_mode, order=order,
    )


def summarise_fwd(name, shape, sweep: Sweep, out_noise, rtol, out_label, order) -> TensorCheck:
    """The jvp vectors against the central differences of the output, element by element (direction, output)."""
    a, n = np.array(sweep.fwd_a), np.array(sweep.fwd_n)  # (directions, output elements)
    kink = np.repeat(sweep.kink[:, None], a.shape[1], axis=1).reshape(-1)
    size = max(a.shape[1], 1)
    check = summarise(name, shape, sweep.kind, a.reshape(-1), n.reshape(-1), kink, out_noise, rtol,
                       lambda i: f"{sweep.label(i // size)} -> {out_label(i % size)}", "fwd", order)
    check.kinks = [sweep.label(int(i)) for i in np.flatnonzero(sweep.kink)]
    return check
