"""One training step of the reference CNN: the engine against jax.jit and PyTorch (when installed), side by side.

Model (Keras words, float32, NHWC): input 28x28x1; Conv2D(32, 3, same, relu); MaxPooling2D(2);
Conv2D(64, 3, same, relu); MaxPooling2D(2); Flatten; Dense(128, relu); Dense(10); softmax
cross-entropy (mean over the batch); plain SGD (learning rate 0.01). One step = forward, loss,
backward, update. The three frameworks start from the same weights and see the same batch.

* engine: ``tinygrad_cnn.nn.Sequential`` + ``F.cross_entropy`` + ``tinygrad_cnn.optim.SGD``.
* JAX: the twin ``jax_ref.from_engine(model)`` and ``optax.sgd``, the whole step under one ``jax.jit``.
* PyTorch (optional): ``torch.nn`` with ``channels_last`` activations (its fastest CPU layout here),
  ``torch.optim.SGD``; eager mode. Skipped, with a note, when torch cannot be imported.
* floor: the step's unavoidable GEMMs alone, at their exact shapes, on NumPy's BLAS (see ``step_gemms``):
  what no im2col implementation of this step can go below. ``engine/floor`` is the yardstick.

Steps are interleaved (engine, JAX, torch, engine, ...) so machine noise hits all alike; each
figure is the median of ``--repeats`` steps after warm-up. Memory: every framework runs a few
steps in its own fresh subprocess that imports only that framework; we report its peak RSS
(VmHWM: what the process needed in all, framework and data included) and the rise of the peak
during the steps above the RSS just before them (the step's own working memory; the peak is
reset through /proc/self/clear_refs). For the engine, tracemalloc's peak of NumPy allocations
during one step is given too. The engine profile comes from ``tinygrad_cnn.profiler``.

    python benchmarks/bench_train_step.py [--batches 64 256] [--repeats 20] [--json out.json]

OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (set on some machines for old OpenBLAS builds) slow a current
NumPy (Haswell instead of SkylakeX: 19.6 against 10.8 ms for conv2's forward GEMM at batch 256, one
thread); for a benchmark, unset both in that one command. The kernel in use is printed, with a note
when the variable is set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import blas_info, step_memory, time_interleaved, torch_available, torch_sgd_step  # noqa: E402, F401  (shared; re-exported)

# Three frameworks share this process and 2 cores: OpenMP's default active wait (torch's pool spins after each
# parallel region) starves OpenBLAS's second thread on the engine's next step (measured: engine median 1124 ms
# against 58 ms with passive waiting, torch itself 215 -> 36 ms). Read when libgomp loads; an explicit
# OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LR = 0.01


# -- the model and its weights --------------------------------------------------------------------------
def with_nonzero_biases(model, seed: int = 0):
    """``model`` with ``0.01 N(0, 1)`` (from ``seed``) added to every 1-D weight: nonzero biases, so that a wrong
    bias path cannot hide behind the zero initializer."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + (0.01 * rng.standard_normal(w.shape)).astype(w.dtype) if w.ndim == 1 else w
                       for w in model.get_weights()])
    return model


def engine_model(seed: int = 0):
    from tinygrad_cnn import nn

    return with_nonzero_biases(nn.reference_cnn(), seed)


def make_batch(batch: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, batch)


def engine_step_fn(model, x, y):
    import tinygrad_cnn as tg
    from tinygrad_cnn import functional as F
    from tinygrad_cnn.optim import SGD

    opt = SGD(model.parameters(), learning_rate=LR)
    xt = tg.Tensor(x)

    def step():
        loss = F.cross_entropy(model(xt, training=True), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss.item()
    return step


def jax_step_fn(model, x, y):
    import jax
    import optax

    import jax_ref

    twin = jax_ref.from_engine(model)
    tx = optax.sgd(LR)
    state = {"params": twin.params, "opt": tx.init(twin.params)}

    def loss_fn(params, xb, yb):
        logits = twin.apply(params, xb, training=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def train_step(params, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    xj, yj = jax.device_put(x), jax.device_put(y.astype(np.int32))

    def step():
        state["params"], state["opt"], loss = train_step(state["params"], state["opt"], xj, yj)
        return float(jax.block_until_ready(loss))
    return step


def step_gemms(model, batch: int, forward_only: bool = False) -> list[tuple[str, tuple, tuple, bool]]:
    """The GEMMs of one training step of ``model`` at batch ``batch``, as ``(what, a_shape, b_shape, a_transposed)``.

    A conv with kernel k1 x ... x C_in x C_out (one group; Conv1D, Conv2D or Conv3D, any strides and padding)
    over an input with O output positions per example is, as im2col, forward ``cols (N O, K) @ W (K, C_out)``
    with ``K = k1 ... C_in``; its weight gradient ``cols^T (K, N O) @ g (N O, C_out)``; its input gradient
    ``g (N O, C_out) @ W^T (C_out, K)`` (the col2im scatter that follows is not a GEMM). A dense layer
    (D_in, D_out) is the same with O = 1 (or the positions of its input's middle axes), K = D_in. A layer that
    reads a model input needs no input gradient, so it has no input-gradient GEMM. Shapes come from each layer's
    one call in the model's graph (``layer.input`` / ``layer.output``), so Sequential and graph models (skip
    connections, BatchNormalization between the convs: not GEMMs) alike. ``forward_only``: the forward GEMMs
    only (inference). Raises ``ValueError`` for a grouped conv (not one GEMM).
    """
    from tinygrad_cnn import nn

    model_inputs = {id(t) for t in model.inputs}
    gemms = []
    for layer in model.layers:
        if not isinstance(layer, (nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Dense)):
            continue
        if getattr(layer, "groups", 1) != 1:
            raise ValueError(f"step_gemms: layer {layer.name!r} has groups={layer.groups}; only groups=1 (one GEMM "
                             f"per conv) is modelled")
        kernel, out = layer.kernel.shape, layer.output.shape
        rows, k, c_out = batch * int(np.prod(out[1:-1])), int(np.prod(kernel[:-1])), kernel[-1]
        gemms.append((f"{layer.name} forward", (rows, k), (k, c_out), False))
        if forward_only:
            continue
        gemms.append((f"{layer.name} weight gradient", (k, rows), (rows, c_out), True))
        if id(layer.input) not in model_inputs:
            gemms.append((f"{layer.name} input gradient", (rows, c_out), (c_out, k), False))
    return gemms


def floor_step_fn(model, x, y=None, forward_only: bool = False):
    """The step's GEMMs (:func:`step_gemms`) on random operands of their exact shapes and ``x``'s dtype, one after
    another (``y`` is unused: the signature of the other step makers)."""
    rng = np.random.default_rng(0)
    operands = []
    for _, a_shape, b_shape, a_transposed in step_gemms(model, x.shape[0], forward_only):
        a = rng.standard_normal(a_shape[::-1] if a_transposed else a_shape).astype(x.dtype)
        operands.append((a.T if a_transposed else a, rng.standard_normal(b_shape).astype(x.dtype),
                         np.empty((a_shape[0], b_shape[1]), x.dtype)))

    def step():
        for a, b, out in operands:
            np.matmul(a, b, out=out)
        return float("nan")  # no loss: the floor computes no model
    return step


def torch_net(model):
    """The reference CNN in ``torch.nn`` (``channels_last``) with ``model``'s weights (Keras layouts transposed)."""
    import torch

    weights = model.get_weights()  # k1 b1 k2 b2 d1 db1 d2 db2 (Keras layouts)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        _torch_flatten_cls()(), torch.nn.Linear(7 * 7 * 64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    with torch.no_grad():
        for conv, (k, b) in ((net[0], weights[0:2]), (net[3], weights[2:4])):
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))))
            conv.bias.copy_(torch.from_numpy(b))
        for lin, (k, b) in ((net[7], weights[4:6]), (net[9], weights[6:8])):
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.T)))
            lin.bias.copy_(torch.from_numpy(b))
    return net.to(memory_format=torch.channels_last)


def torch_input(x):
    """NHWC array -> NCHW torch tensor in ``channels_last`` memory (the same bytes order as ``x``)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).contiguous(
        memory_format=torch.channels_last)


def torch_step_fn(model, x, y):

    net = torch_net(model)
    return torch_sgd_step(net, torch_input(x), y, LR)


def _torch_flatten_cls():
    import torch

    class NhwcFlatten(torch.nn.Module):
        """Flatten in (H, W, C) order, as Keras' Flatten on NHWC (so the dense weights are the same)."""

        def forward(self, h):
            return h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
    return NhwcFlatten


MAKERS = {"engine": engine_step_fn, "jax": jax_step_fn, "torch": torch_step_fn, "floor": floor_step_fn}


def check_losses_agree(steps: dict) -> dict:
    """The first step's loss of every framework (same weights, same batch: they must agree)."""
    return {name: fn() for name, fn in steps.items()}


# -- memory ------------------------------------------------------------------------------------------------
def memory_child(framework: str, batch: int, steps: int = 3) -> dict:
    """Run in a fresh process: peak RSS in all, and the step's rise of the peak above the RSS before it."""
    if framework == "torch":
        torch_available()
    model = engine_model()
    x, y = make_batch(batch)
    fn = MAKERS[framework](model, x, y)
    return step_memory(fn, steps, traced=framework == "engine", before_trace=_clear_engine_buffers)


def _clear_engine_buffers():
    """Empty the engine's buffer cache: inside the traced step its buffers are allocated again, so the traced
    peak is the step's whole working set."""
    from tinygrad_cnn.ops import buffers

    buffers.clear()


def memory(framework: str, batch: int) -> dict | None:
    cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", framework, "--batches", str(batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- engine profile ----------------------------------------------------------------------------------------
def engine_profile(batch: int, steps: int = 5) -> tuple[str, dict]:
    from tinygrad_cnn import profiler

    model = engine_model()
    x, y = make_batch(batch)
    fn = engine_step_fn(model, x, y)
    fn()
    with profiler.profile() as prof:
        for _ in range(steps):
            fn()
    figures = {name: {"forward_calls": s.forward_calls / steps, "forward_ms": s.forward_s * 1e3 / steps,
                      "vjp_calls": s.vjp_calls / steps, "vjp_ms": s.vjp_s * 1e3 / steps}
               for name, s in prof.stats.items()}
    return prof.table(steps), figures


def keep_freed_memory() -> bool:
    """Ask glibc malloc to keep freed memory for reuse (``mallopt``: trim threshold 1 GB, mmap threshold 32 MB).

    By default, every large temporary is a fresh ``mmap`` that the kernel zero-fills page by page (the
    engine's batch-64 step took ~7,000 minor page faults, ~20 ms of system time, before its conv and pooling
    primitives cached their buffers in ``tinygrad_cnn.ops.buffers``; now 0 without this option). Process-wide,
    so it applies to every framework in this process alike. Returns False where glibc is not available.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, 1 << 30)) and bool(libc.mallopt(m_mmap_threshold, 32 << 20))
    except (OSError, AttributeError):
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-framework memory subprocesses")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--frameworks", nargs="+", default=["engine", "jax", "torch", "floor"])
    parser.add_argument("--threads", type=int, default=None,
                        help="cap every BLAS/OpenMP pool in the process (threadpoolctl) at this many threads")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="glibc mallopt: reuse freed memory instead of returning it to the OS (all frameworks)")
    parser.add_argument("--memory-child", metavar="FRAMEWORK", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.batches[0])))
        return
    if args.threads:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.threads):
            return run(args)
    return run(args)


def run(args):
    """The interleaved timing, memory and profile runs of :func:`main`."""
    frameworks = list(args.frameworks)
    if "torch" in frameworks:
        note = torch_available(args.threads)  # one pool size for every framework
        if note:
            print(note)
            frameworks.remove("torch")
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                       "OMP_WAIT_POLICY")}
    if args.keep_freed_memory:
        env["keep_freed_memory"] = keep_freed_memory()
    if args.threads:
        env["threads"] = args.threads
    print(f"numpy {np.__version__}; BLAS: {blas_info()}; env {env}")
    if env["OPENBLAS_CORETYPE"]:
        print(f"note: OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} pins the engine's BLAS to that kernel (on this "
              "machine kind Haswell runs the conv GEMMs 1.8x slower than the SkylakeX kernel OpenBLAS picks itself); "
              "run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...` to compare like with like")
    report = {"frameworks": frameworks, "batches": {}, "blas": blas_info(), "env": env}
    for batch in args.batches:
        model = engine_model()
        x, y = make_batch(batch)
        steps = {name: MAKERS[name](model, x, y) for name in frameworks}
        losses = check_losses_agree(steps)
        times, fastest = time_interleaved(steps, args.repeats)
        entry = {"ms": times, "min_ms": fastest, "first_loss": losses,
                 "load_average": os.getloadavg()[0]}
        if "torch" in times:
            entry["engine/torch"] = times["engine"] / times["torch"]
        if "jax" in times:
            entry["engine/jax"] = times["engine"] / times["jax"]
        if "floor" in times:
            entry["engine/floor"] = times["engine"] / times["floor"]
        report["batches"][batch] = entry
        model_losses = ", ".join(f"{k} {v:.5f}" for k, v in losses.items() if k != "floor")
        print(f"\nbatch {batch}: median (min) of {args.repeats} interleaved steps; 1-min load average "
              f"{entry['load_average']:.1f}; first-step losses {model_losses}")
        for name, t in times.items():
            print(f"  {name:<7} {t:8.2f} ms  ({fastest[name]:.2f})")
        for key in ("engine/floor", "engine/torch", "engine/jax"):
            if key in entry:
                a, b = key.split("/")
                print(f"  {key:<13} {entry[key]:.2f}  (of the minima: {fastest[a] / fastest[b]:.2f})")
    if len(args.batches) > 1:
        b0, b1 = min(args.batches), max(args.batches)
        print(f"\nlinearity: time({b1}) / time({b0}) against the batch ratio {b1 / b0:.1f}")
        report["linearity"] = {}
        for name in frameworks:
            r = report["batches"][b1]["ms"][name] / report["batches"][b0]["ms"][name]
            report["linearity"][name] = r
            print(f"  {name:<7} {r:5.2f}  (per-example time ratio {r / (b1 / b0):.2f})")
    if not args.no_memory:
        print("\nmemory (fresh subprocess per framework): peak RSS in all | rise of the peak during a step")
        report["memory"] = {}
        for batch in args.batches:
            for name in (f for f in frameworks if f != "floor"):  # the floor holds only its operands
                m = memory(name, batch)
                report["memory"].setdefault(batch, {})[name] = m
                if "error" in m:
                    print(f"  batch {batch} {name:<7} failed: {m['error']}")
                    continue
                rise = "n/a" if m["step_rise_mb"] is None else f"{m['step_rise_mb']:7.1f} MB"
                extra = f" | tracemalloc peak {m['tracemalloc_peak_mb']:.1f} MB" if "tracemalloc_peak_mb" in m else ""
                print(f"  batch {batch:<4} {name:<7} {m['peak_rss_mb']:7.1f} MB | {rise}{extra}")
    if not args.no_profile:
        report["profile"] = {}
        for batch in args.batches:
            table, figures = engine_profile(batch)
            report["profile"][batch] = figures
            print(f"\nengine profile, batch {batch}, per step (vjp times include the ops they run):\n{table}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
