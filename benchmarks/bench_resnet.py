"""One training step of the small ResNet: the engine against PyTorch and jax.jit of the twin, side by side.

Model: ``nn.small_resnet()`` (input 8x8x1 as the digits; stem Conv2D(16, 3) -> BN -> ReLU; three stages of two
basic blocks, 16, 32, 64 channels, the first block of stages 2 and 3 with stride 2 and a 1x1 conv + BN shortcut;
global average pooling; Dense(10)), float32, convs without bias, BatchNormalization in training mode (batch
statistics, moving statistics updated: momentum 0.99, epsilon 1e-3, PyTorch's ``momentum=0.01, eps=1e-3``).
Softmax cross-entropy (mean over the batch); plain SGD (learning rate 0.01). One step = forward, loss, backward,
update. The three frameworks start from the same weights (perturbed from the initializers so that gamma, beta
and the moving statistics are not their trivial values) and see the same batch; their first losses are printed.

* engine: the graph ``nn.Model`` + ``F.cross_entropy`` + ``tinygrad_cnn.optim.SGD``.
* JAX: the twin ``jax_ref.from_engine(model)``, ``apply_with_state`` (the moving statistics as their own pytree)
  and ``optax.sgd``, the whole step under one ``jax.jit``.
* PyTorch (optional): the same architecture in ``torch.nn`` (``channels_last``), ``torch.optim.SGD``, eager.
  Skipped, with a note, when torch cannot be imported.

Inference (``--inference``, on by default): the engine's forward pass in inference mode with conv +
BatchNormalization (+ ReLU) folded (``nn.fusion``) against the same model layer by layer
(``nn.fusion.disabled()``), and against PyTorch's eval-mode forward under ``torch.no_grad``.

Steps are interleaved (engine, JAX, torch, engine, ...) so machine noise hits all alike; each figure is the median
of ``--repeats`` steps after warm-up (``bench_train_step.time_interleaved``). The machine line gives the BLAS,
its threads, the CPUs and the 1-minute load average before and after: on a shared machine read the ratios with
the load beside them.

    python benchmarks/bench_resnet.py [--batches 64 256] [--repeats 10] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_step import (  # noqa: E402  (the shared helpers)
    LR,
    blas_info,
    engine_step_fn,
    time_interleaved,
    torch_available,
    torch_sgd_step,
)


def engine_model(seed: int = 0):
    """``nn.small_resnet()`` with its weights perturbed: nonzero beta, gamma around 1, moving mean around 0,
    moving variance around 1 (so that a wrong path through any of them cannot hide)."""
    from tinygrad_cnn import nn

    nn.set_random_seed(seed)
    model = nn.small_resnet()
    rng = np.random.default_rng(seed)
    arrays = []
    for layer in model.layers:
        for name, w in zip(layer.weight_names, layer.get_weights(), strict=True):
            noise = (0.1 * rng.standard_normal(w.shape)).astype(w.dtype)
            arrays.append(np.abs(w + noise) if name == "moving_variance" else w + noise if w.ndim == 1 else w)
    model.set_weights(arrays)
    return model


def make_batch(batch: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (batch, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, batch)


def jax_resnet_step_fn(model, x, y):
    """:func:`bench_train_step.jax_step_fn` with the twin's BatchNormalization state threaded through the step."""
    import jax
    import optax

    import jax_ref

    twin = jax_ref.from_engine(model)
    tx = optax.sgd(LR)
    carry = {"params": twin.params, "state": twin.state, "opt": tx.init(twin.params)}

    def loss_fn(params, state, xb, yb):
        logits, new_state = twin.apply_with_state(params, state, xb, training=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), new_state

    @jax.jit
    def train_step(params, state, opt_state, xb, yb):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, xb, yb)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    xj, yj = jax.device_put(x), jax.device_put(y.astype(np.int32))

    def step():
        carry["params"], carry["state"], carry["opt"], loss = train_step(carry["params"], carry["state"],
                                                                         carry["opt"], xj, yj)
        return float(jax.block_until_ready(loss))
    return step


def torch_resnet(model):
    """The same ResNet in ``torch.nn`` with the engine model's weights (Keras layouts transposed to PyTorch's)."""
    import torch
    from torch import nn as tnn

    def conv_bn(prefix, c_in, c_out, k, stride):
        conv = tnn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False)
        bn = tnn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01)
        (kernel,) = model.get_layer(f"{prefix}_conv").get_weights()
        gamma, beta, mean, var = model.get_layer(f"{prefix}_bn").get_weights()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
            for t, a in ((bn.weight, gamma), (bn.bias, beta), (bn.running_mean, mean), (bn.running_var, var)):
                t.copy_(torch.from_numpy(a))
        return tnn.Sequential(conv, bn)

    class Block(tnn.Module):
        def __init__(self, tag, c_in, c_out, stride):
            super().__init__()
            self.a = conv_bn(f"{tag}_a", c_in, c_out, 3, stride)
            self.b = conv_bn(f"{tag}_b", c_out, c_out, 3, 1)
            self.proj = conv_bn(f"{tag}_proj", c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else None

        def forward(self, h):
            shortcut = h if self.proj is None else self.proj(h)
            return torch.relu(self.b(torch.relu(self.a(h))) + shortcut)

    layers, c_in = [conv_bn("stem", 1, 16, 3, 1), tnn.ReLU()], 16
    for stage, width in enumerate((16, 32, 64), start=1):
        for block in (1, 2):
            layers.append(Block(f"s{stage}b{block}", c_in, width, 2 if stage > 1 and block == 1 else 1))
            c_in = width
    dense = tnn.Linear(64, 10)
    kernel, bias = model.get_layer("logits").get_weights()
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        dense.bias.copy_(torch.from_numpy(bias))
    layers += [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), dense]
    return tnn.Sequential(*layers).to(memory_format=torch.channels_last)


def _torch_input(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).contiguous(
        memory_format=torch.channels_last)


def torch_resnet_step_fn(model, x, y):

    net = torch_resnet(model).train()
    return torch_sgd_step(net, _torch_input(x), y, LR)


def inference_fns(model, x, with_torch: bool) -> dict:
    """Forward passes in inference mode: the engine folded, the engine layer by layer, PyTorch in eval mode."""
    import tinygrad_cnn as tg
    from tinygrad_cnn import nn

    xt = tg.Tensor(x)

    def unfused():
        with nn.fusion.disabled():
            return model(xt)
    fns = {"folded": lambda: model(xt), "unfused": unfused}
    if with_torch:
        import torch

        net, xtorch = torch_resnet(model).eval(), _torch_input(x)

        def torch_eval():
            with torch.no_grad():
                return net(xtorch)
        fns["torch"] = torch_eval
    return fns


MAKERS = {"engine": engine_step_fn, "jax": jax_resnet_step_fn, "torch": torch_resnet_step_fn}


def machine_line() -> str:
    return (f"numpy {np.__version__}; BLAS: {blas_info()}; {os.cpu_count()} CPUs; 1-min load "
            f"{os.getloadavg()[0]:.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="small ResNet training step: engine vs PyTorch vs jax.jit")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None,
                        help="cap every BLAS/OpenMP pool in the process (threadpoolctl) at this many threads")
    parser.add_argument("--no-inference", action="store_true", help="skip the inference (fusion) timing")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            return run(args)
    return run(args)


def run(args):
    frameworks = ["engine", "jax", "torch"]
    note = torch_available()
    if note:
        print(note)
        frameworks.remove("torch")
    if args.threads:
        import tinygrad_cnn as tg

        tg.set_num_threads(args.threads)
        if "torch" in frameworks:
            import torch

            torch.set_num_threads(args.threads)
    print(machine_line() + (f"; threads capped at {args.threads}" if args.threads else ""))
    report = {"blas": blas_info(), "threads": args.threads, "batches": {}}
    for batch in args.batches:
        x, y = make_batch(batch)
        steps = {name: MAKERS[name](engine_model(), x, y) for name in frameworks}
        losses = {name: fn() for name, fn in steps.items()}
        times, fastest = time_interleaved(steps, args.repeats, warmup=2)
        entry = {"train_ms": times, "train_min_ms": fastest, "first_loss": losses,
                 "load_average": os.getloadavg()[0]}
        print(f"\nbatch {batch}, training step: median (min) of {args.repeats} interleaved steps; 1-min load "
              f"{entry['load_average']:.1f}; first-step losses "
              + ", ".join(f"{k} {v:.5f}" for k, v in losses.items()))
        for name, t in times.items():
            print(f"  {name:<7} {t:8.2f} ms  ({fastest[name]:.2f})")
        for other in frameworks[1:]:
            entry[f"engine/{other}"] = times["engine"] / times[other]
            print(f"  engine/{other:<6} {entry[f'engine/{other}']:.2f}  (of the minima: "
                  f"{fastest['engine'] / fastest[other]:.2f})")
        if not args.no_inference:
            fns = inference_fns(engine_model(), x, "torch" in frameworks)
            out = {name: np.asarray(fn().numpy()) for name, fn in fns.items()}
            gap = float(np.abs(out["folded"] - out["unfused"]).max())
            inf_times, inf_fastest = time_interleaved(fns, args.repeats, warmup=2)
            entry.update({"inference_ms": inf_times, "folded_vs_unfused_max_abs": gap,
                          "unfused/folded": inf_times["unfused"] / inf_times["folded"]})
            print(f"batch {batch}, inference forward (BN on moving statistics): median (min); folded vs layer by "
                  f"layer max |diff| {gap:.1e}")
            for name, t in inf_times.items():
                print(f"  {name:<7} {t:8.2f} ms  ({inf_fastest[name]:.2f})")
            print(f"  unfused/folded {entry['unfused/folded']:.2f}"
                  + (f"; folded/torch {inf_times['folded'] / inf_times['torch']:.2f}" if "torch" in inf_times
                     else ""))
        report["batches"][batch] = entry
    print(f"\n1-min load after: {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
