"""The gradient checker against PyTorch's and JAX's, side by side, on one conv2d in float64.

Function: ``conv2d(x, kernel)``, x 2x3x8x8 (NCHW), kernel 3x3x3x4 (Keras' HWIO; PyTorch's 4x3x3x3), valid padding,
both x and the kernel checked (384 + 108 elements; the output has 288). Pairs, each timed in one interleaved run
(engine, other, engine, ...) so machine noise hits both alike; figures are medians of ``--repeats`` runs:

* full Jacobian: ``gradcheck(..., max_full=inf)`` (every element, central differences of S = <v, y>) against
  ``torch.autograd.gradcheck`` (every element; it also builds the analytical Jacobian row by row, 288 vjps);
* projection: ``gradcheck(..., max_full=0, n_projections=1)`` (one random direction per tensor) against
  ``torch.autograd.gradcheck(fast_mode=True)`` (one random u, v per input);
* order 2: ``gradcheck(..., order=2)`` full (it checks order 1 as well) against ``torch.autograd.gradgradcheck``
  (order 2 only, and also over the cotangent), and both in their fast/projection modes;
* JAX: ``gradcheck(..., order=k, modes=("rev", "fwd"), max_full=0, n_projections=1)`` against
  ``jax.test_util.check_grads(f, order=k, modes=("fwd", "rev"))`` (one random direction per mode and order) with
  ``f`` under ``jax.jit`` (compiled in the warm-up), k = 1 and 2.

    python benchmarks/bench_gradcheck.py [--repeats 5] [--json out.json]

The machine line (BLAS, threads, 1-minute load average before and after) comes with the figures: on a shared
machine, read the ratios with the load beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_step import blas_info, time_interleaved, torch_available  # noqa: E402  (the shared helpers)

X_SHAPE, K_SHAPE = (2, 3, 8, 8), (3, 3, 3, 4)


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(X_SHAPE), 0.3 * rng.standard_normal(K_SHAPE)


def engine_checks(x, k):
    """name -> a call of the engine's checker (each asserts that the check passed)."""
    import tinygrad_cnn as tg
    from tinygrad_cnn import functional as F
    from tinygrad_cnn.gradcheck import gradcheck

    def run(**kwargs):
        kernel = tg.Tensor(k.copy(), requires_grad=True)
        report = gradcheck(lambda t: F.conv2d(t, kernel, data_format="channels_first"), [x],
                           params={"kernel": kernel}, **kwargs)
        assert report.passed, report
        return report

    full = 10 ** 9
    return {
        "full": lambda: run(max_full=full),
        "projection": lambda: run(max_full=0, n_projections=1),
        "order 2 full": lambda: run(max_full=full, order=2),
        "order 2 projection": lambda: run(max_full=0, n_projections=1, order=2),
        "jax order 1": lambda: run(max_full=0, n_projections=1, modes=("rev", "fwd")),
        "jax order 2": lambda: run(max_full=0, n_projections=1, modes=("rev", "fwd"), order=2),
    }


def torch_checks(x, k):
    import torch

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(np.transpose(k, (3, 2, 0, 1)).copy(), requires_grad=True)  # HWIO -> OIHW

    def fn(a, b):
        return torch.nn.functional.conv2d(a, b)

    def ok(value):
        assert value is True
        return value

    return {
        "full": lambda: ok(torch.autograd.gradcheck(fn, (xt, wt))),
        "projection": lambda: ok(torch.autograd.gradcheck(fn, (xt, wt), fast_mode=True)),
        "order 2 full": lambda: ok(torch.autograd.gradgradcheck(fn, (xt, wt))),
        "order 2 projection": lambda: ok(torch.autograd.gradgradcheck(fn, (xt, wt), fast_mode=True)),
    }


def jax_checks(x, k):
    import jax

    jax.config.update("jax_enable_x64", True)
    from jax.test_util import check_grads

    @jax.jit
    def fn(a, b):
        return jax.lax.conv_general_dilated(a, b, (1, 1), "VALID", dimension_numbers=("NCHW", "HWIO", "NCHW"))

    return {f"jax order {order}": (lambda order=order: check_grads(fn, (x, k), order=order, modes=("fwd", "rev")))
            for order in (1, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)
    x, k = data()
    ours = engine_checks(x, k)
    theirs = {}
    note = torch_available()
    if note:
        print(note)
    else:
        import torch

        theirs.update({name: ("torch", fn) for name, fn in torch_checks(x, k).items()})
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    theirs.update({name: ("jax", fn) for name, fn in jax_checks(x, k).items()})
    load_before = os.getloadavg()
    print(f"numpy {np.__version__}; BLAS: {blas_info()}; {os.cpu_count()} CPUs; 1-min load {load_before[0]:.1f}")
    figures = {}
    for name, (other, fn) in theirs.items():
        medians, fastest = time_interleaved({"engine": ours[name], other: fn}, args.repeats, warmup=1)
        ratio = medians["engine"] / medians[other]
        figures[name] = {"engine_ms": medians["engine"], f"{other}_ms": medians[other], "engine/" + other: ratio,
                         "min_ms": fastest, "load_average": os.getloadavg()[0]}
        print(f"{name:<20} engine {medians['engine']:9.1f} ms   {other} {medians[other]:9.1f} ms   "
              f"engine/{other} {ratio:5.2f}   (min {fastest['engine']:.1f} / {fastest[other]:.1f} ms; "
              f"load {figures[name]['load_average']:.1f})")
    print(f"1-min load average: {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"({os.cpu_count()} CPUs)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"figures": figures, "blas": blas_info(), "load_before": load_before}, fh, indent=1)


if __name__ == "__main__":
    main()
