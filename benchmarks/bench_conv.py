"""Forward + backward of the reference CNN's conv and pool layers: the engine against jax.jit, side by side.

Shapes (float32, NHWC): x (B, 28, 28, 1) -> Conv 32 3x3 same + bias + relu -> max_pool 2
-> Conv 64 3x3 same + bias -> max_pool 2. Each stage and the whole chain is timed as
forward + backward (gradients for the kernels, biases and, for the second layer on, the
input), engine and JAX interleaved in one process, median of ``--repeats`` runs after warm-up.
Same work on both sides: the loss is ``1e-3 * sum(output)``, so the engine's cotangent (the constant
1e-3, built once per stage outside the timed call, as JAX's comes free from the traced sum) is an input,
not timed; conv1 + relu runs through the fused conv+relu primitive, the path ``nn.Conv2D(activation="relu")``
takes, and like JAX the engine computes no input gradient for the first layer.

    python benchmarks/bench_conv.py [--batch 64] [--repeats 20] [--profile]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F


def make_params(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {
        "x": rng.standard_normal((batch, 28, 28, 1)).astype(f32),
        "k1": (rng.standard_normal((3, 3, 1, 32)) * 0.3).astype(f32), "b1": np.zeros(32, f32),
        "k2": (rng.standard_normal((3, 3, 32, 64)) * 0.06).astype(f32), "b2": np.zeros(64, f32),
        "h1": rng.standard_normal((batch, 28, 28, 32)).astype(f32),
        "p1": rng.standard_normal((batch, 14, 14, 32)).astype(f32),
        "h2": rng.standard_normal((batch, 14, 14, 64)).astype(f32),
    }


# -- the engine ---------------------------------------------------------------------------------------------
def engine_stages(p):
    """name -> (function running forward + backward once, output shape)."""
    cotangents = {}

    def run(fn, inputs, needs):
        ts = [tg.Tensor(p[n], requires_grad=r) for n, r in zip(inputs, needs, strict=True)]
        y = fn(*ts)
        if y.shape not in cotangents:
            cotangents[y.shape] = np.full(y.shape, 1e-3, dtype=np.float32)
        y.backward(cotangents[y.shape])
        return y

    def conv_relu(x, k, b):  # what nn.Conv2D(activation="relu") runs: one fused primitive
        return F._conv("conv2d", x, k, b, padding="same", rank=2, relu=True)

    stages = {
        "conv1+relu": lambda: run(conv_relu, ("x", "k1", "b1"), (False, True, True)),
        "maxpool1": lambda: run(lambda h: F.max_pool(h, 2), ("h1",), (True,)),
        "conv2": lambda: run(lambda x, k, b: F.conv2d(x, k, b, padding="same"), ("p1", "k2", "b2"),
                             (True, True, True)),
        "maxpool2": lambda: run(lambda h: F.max_pool(h, 2), ("h2",), (True,)),
        "chain": lambda: run(lambda x, k1, b1, k2, b2: F.max_pool(F.conv2d(F.max_pool(
            conv_relu(x, k1, b1), 2), k2, b2, padding="same"), 2),
            ("x", "k1", "b1", "k2", "b2"), (False, True, True, True, True)),
    }
    return stages


# -- JAX ----------------------------------------------------------------------------------------------------
def jax_stages(p):
    import jax
    import jax.numpy as jnp
    from jax import lax

    spec = ("NHWC", "HWIO", "NHWC")

    def conv(x, k, b):
        return lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=spec) + b

    def pool(h):
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    def grad_of(f, argnums):
        return jax.jit(jax.grad(lambda *a: f(*a).sum() * 1e-3, argnums=argnums))

    fns = {
        "conv1+relu": (grad_of(lambda x, k, b: jax.nn.relu(conv(x, k, b)), (1, 2)), ("x", "k1", "b1")),
        "maxpool1": (grad_of(pool, 0), ("h1",)),
        "conv2": (grad_of(conv, (0, 1, 2)), ("p1", "k2", "b2")),
        "maxpool2": (grad_of(pool, 0), ("h2",)),
        "chain": (grad_of(lambda x, k1, b1, k2, b2: pool(conv(pool(jax.nn.relu(conv(x, k1, b1))), k2, b2)),
                          (1, 2, 3, 4)), ("x", "k1", "b1", "k2", "b2")),
    }
    args = {n: jax.device_put(v) for n, v in p.items()}
    return {name: (lambda f=f, names=names: jax.block_until_ready(f(*(args[n] for n in names))))
            for name, (f, names) in fns.items()}


def time_interleaved(engine, jax_fns, repeats: int):
    results = {}
    for name in engine:
        for fn in (engine[name], jax_fns[name]):
            for _ in range(3):
                fn()
        te, tj = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            engine[name]()
            te.append(time.perf_counter() - t)
            t = time.perf_counter()
            jax_fns[name]()
            tj.append(time.perf_counter() - t)
        results[name] = (np.median(te) * 1e3, np.median(tj) * 1e3)
    return results


def profile(stage, repeats=5):
    import cProfile
    import pstats
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(repeats):
        stage()
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(15)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile the engine's whole chain")
    args = parser.parse_args()
    p = make_params(args.batch)
    engine, jfns = engine_stages(p), jax_stages(p)
    results = time_interleaved(engine, jfns, args.repeats)
    print(f"batch {args.batch}, float32, forward+backward, median of {args.repeats} (ms)")
    print(f"{'stage':<12} {'engine':>9} {'jax.jit':>9} {'engine/jax':>11}")
    for name, (te, tj) in results.items():
        print(f"{name:<12} {te:9.2f} {tj:9.2f} {te / tj:11.2f}")
    if args.profile:
        profile(engine["chain"])


if __name__ == "__main__":
    main()
