"""SmoothGrad and occlusion speed against their floors and against a per-sample loop (JAX on the CPU, float32).

SmoothGrad n=50 on one image, for the 28x28 reference CNN and a digits-sized
(8x8) CNN, is compared with
  (a) the floor: one jitted batched forward+backward of the 50 noisy images
      (precomputed, so the floor does no noise drawing and no reduction);
  (b) a per-sample loop as PAIR's ``saliency`` library runs SmoothGrad: per
      sample, draw the noise with NumPy, call the same jitted gradient on the
      one noisy image, bring the gradient to the host and add it up there
      (so every sample waits for its gradient);
and with itself chunked (``batch_size`` = n/5) to show what bounding memory costs,
beside the chunked floor: the same jitted gradient called once per chunk of
n/5 precomputed noisy images (what any memory-bounded evaluation must run).
For reference (no target) the same loop is also timed without the host round
trip (gradients summed on the device, dispatched asynchronously), and
SmoothGrad with a new seed on every call (the noise drawn afresh each time:
the library keeps the last few draws, so a repeated seed does not redraw it).
All three differentiate the same function (the library's network, float32)
for the same, given target class. Occlusion is compared with one jitted
batched forward over all the occluded copies (precomputed). Runs are
interleaved (every variant once per round); medians and minima are reported,
ratios of medians, each against its target (PASS / MISS), with the machine's
load average before and after (other processes share the CPU).

    python benchmarks/bench_attribution.py [--rounds 50] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import jax_ref
from jax_ref import attribution as A
from jax_ref.attribution import _net
from jax_ref.attribution.occlusion import window_masks
from tinygrad_cnn import nn


def reference_cnn():
    """The 28x28 reference CNN of the speed anchors."""
    nn.set_random_seed(0)
    return nn.reference_cnn()


def digits_cnn():
    """A digits-sized CNN (8x8x1 inputs)."""
    nn.set_random_seed(0)
    return nn.Sequential([nn.Input((8, 8, 1)), nn.Conv2D(16, 3, padding="same", activation="relu"),
                          nn.MaxPooling2D(2), nn.Conv2D(32, 3, padding="same", activation="relu"), nn.Flatten(),
                          nn.Dense(10)])


def block(out):
    jax.block_until_ready(out)
    return out


def interleaved(fns: dict, rounds: int) -> dict:
    """``{variant: (median, min)}`` seconds, every variant run once per round (after one warm-up call each),
    in an order rotated every round so that no variant always follows the same one (caches, idle threads)."""
    for f in fns.values():
        block(f())
    times = {k: [] for k in fns}
    keys = list(fns)
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            t0 = time.perf_counter()
            block(fns[k]())
            times[k].append(time.perf_counter() - t0)
    return {k: (float(np.median(v)), float(np.min(v))) for k, v in times.items()}


def bench_smoothgrad(engine_model, n: int, rounds: int) -> dict:
    jm = jax_ref.from_engine(engine_model)
    shape = engine_model.input_shape[1:]
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    net, params = _net.as_net(jm)
    sigma = 0.15 * (x.max() - x.min())
    noisy = jnp.asarray(x[None] + sigma * np.random.default_rng(1).standard_normal((n,) + shape).astype(np.float32))
    target = int(np.argmax(np.asarray(jm.apply(params, x[None]))))
    targets = jnp.full((n,), target, jnp.int32)
    score = _net.score_fn(net, "logit")
    batched_grad = jax.jit(lambda p, z, t: jax.grad(lambda u: score(p, u, t).sum())(z))
    one = np.full(1, target, np.int32)
    chunk = n // 5
    chunks = [(noisy[i:i + chunk], targets[i:i + chunk]) for i in range(0, n, chunk)]
    seeds = itertools.count(1)

    def loop(host=True):  # PAIR saliency's GetSmoothedMask: noise, gradient and sum per sample, on the host
        rng, total = np.random.default_rng(1), np.zeros_like(x) if host else 0.0
        for _ in range(n):
            g = batched_grad(params, (x + sigma * rng.standard_normal(shape, np.float32))[None], one)
            total = total + (np.asarray(g)[0] if host else g)
        return (total if host else total[0]) / n

    fns = {
        "smoothgrad": lambda: A.smoothgrad(jm, x, target, n=n),
        f"smoothgrad batch_size={chunk}": lambda: A.smoothgrad(jm, x, target, n=n, batch_size=chunk),
        "floor: one batched fwd+bwd": lambda: batched_grad(params, noisy, targets),
        f"chunked floor: 5 fwd+bwd of {chunk}": lambda: [batched_grad(params, z, t) for z, t in chunks],
        "(smoothgrad, new seed per call)": lambda: A.smoothgrad(jm, x, target, n=n, seed=next(seeds)),
        "per-sample loop": loop,
        "(loop, device sum, async)": lambda: loop(host=False),
    }
    return interleaved(fns, rounds)


def bench_occlusion(engine_model, window: int, stride: int, rounds: int) -> dict:
    jm = jax_ref.from_engine(engine_model)
    shape = engine_model.input_shape[1:]
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    masks = window_masks(shape[:-1], (window,) * 2, (stride,) * 2)
    copies = jnp.asarray(np.where(masks[..., None], 0.0, x[None]).astype(np.float32))
    forward = jax.jit(lambda p, z: jm.apply(p, z))
    fns = {"occlusion": lambda: A.occlusion(jm, x, window=window, stride=stride),
           f"floor: one forward of {len(masks)} copies": lambda: forward(jm.params, copies)}
    return interleaved(fns, rounds)


def report(title: str, times: dict, floor_key: str, lines: list) -> None:
    lines.append(title)
    for k, (med, low) in times.items():
        lines.append(f"  {k:<34} {1e3 * med:8.2f} ms (min {1e3 * low:7.2f})   {med / times[floor_key][0]:5.2f}x floor")


# (ratio, at most / at least, target value per CNN): the first issue's targets
TARGETS = {"smoothgrad / floor": ("<=", {"28x28": 1.1, "8x8": 1.1}),
           "loop / smoothgrad": (">=", {"28x28": 1.4, "8x8": 3.5}),
           "batch_size / smoothgrad": ("<=", {"28x28": 1.1, "8x8": 1.1}),
           "occlusion / floor": ("<=", {"28x28": 1.1, "8x8": 1.1})}


def verdict(name: str, ratio: str, value: float) -> str:
    """``"<= 1.10 PASS"`` etc. for a ratio with a target, ``""`` for one without."""
    if ratio not in TARGETS:
        return ""
    op, per_cnn = TARGETS[ratio]
    want = per_cnn[name.split()[0]]
    ok = value <= want if op == "<=" else value >= want
    return f" (target {op} {want:.2f}: {'PASS' if ok else 'MISS'})"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="few rounds (a smoke run)")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    load = os.getloadavg()
    lines, ratios = [f"JAX {jax.__version__} on {jax.devices()[0].platform}, {len(jax.devices())} device(s), "
                     f"{os.cpu_count()} CPU(s), median of {rounds} interleaved rounds, n = 50"], {}
    for name, model, (window, stride) in (("28x28 reference CNN", reference_cnn(), (4, 2)),
                                          ("8x8 digits CNN", digits_cnn(), (2, 1))):
        sg = bench_smoothgrad(model, 50, rounds)
        floor = "floor: one batched fwd+bwd"
        report(f"SmoothGrad, {name}", sg, floor, lines)
        med = {k: v[0] for k, v in sg.items()}
        chunked = med[next(k for k in sg if k.startswith("smoothgrad batch_size"))]
        chunk_floor = med[next(k for k in sg if k.startswith("chunked floor"))]
        ratios[name] = {"smoothgrad / floor": med["smoothgrad"] / med[floor],
                        "loop / smoothgrad": med["per-sample loop"] / med["smoothgrad"],
                        "batch_size / smoothgrad": chunked / med["smoothgrad"],
                        "batch_size / chunked floor": chunked / chunk_floor,
                        "chunked floor / floor": chunk_floor / med[floor],
                        "new seed / floor": med["(smoothgrad, new seed per call)"] / med[floor]}
        occ = bench_occlusion(model, window, stride, rounds)
        ofloor = next(k for k in occ if k.startswith("floor"))
        report(f"Occlusion (window {window}, stride {stride}), {name}", occ, ofloor, lines)
        ratios[name]["occlusion / floor"] = occ["occlusion"][0] / occ[ofloor][0]
    lines.append(f"load average (1, 5, 15 min) before {tuple(round(v, 1) for v in load)}, after "
                 f"{tuple(round(v, 1) for v in os.getloadavg())}")
    lines.append("ratios of medians against the targets (a ratio without a target is there to explain one):")
    for name, r in ratios.items():
        lines.append(f"  {name}:")
        lines.extend(f"    {k:<28} {v:5.2f}{verdict(name, k, v)}" for k, v in r.items())
    print("\n".join(lines))
    return ratios


if __name__ == "__main__":
    main()
