"""What every benchmark script shares: interleaved timing, the machine line, thread caps, a competing load, memory.

* :func:`time_interleaved`: steps of several frameworks run in turn (a, b, c, a, b, c, ...) so that machine noise
  hits all alike; medians and minima in ms.
* :func:`machine_info`: CPU model (``/proc/cpuinfo``), core count, BLAS kernel and threads (threadpoolctl), the
  1-minute load average, NumPy/PyTorch/JAX versions.
* :func:`threads_env`: the environment of a child process in which every pool (OpenBLAS/MKL/OpenMP and XLA's
  Eigen pool, which threadpoolctl cannot reach) starts with n threads.
* :func:`competing_load`: one CPU-bound process beside the benchmark, bounded in time, killed on exit.
* :func:`step_memory`: the peak RSS of a process around a few steps, and tracemalloc's working set of one step.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
import tracemalloc

import numpy as np


# -- timing -----------------------------------------------------------------------------------------------
def time_interleaved(steps: dict, repeats: int, warmup: int = 3) -> tuple[dict, dict]:
    """Run every ``steps[name]()`` ``warmup`` times, then ``repeats`` rounds of one call each, in turn.

    Returns ``(medians, minima)``: two dicts name -> milliseconds per call.
    """
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return ({name: float(np.median(ts) * 1e3) for name, ts in times.items()},
            {name: float(np.min(ts) * 1e3) for name, ts in times.items()})


# -- the machine ----------------------------------------------------------------------------------------------
def blas_info() -> str:
    """Every BLAS/OpenMP library loaded in the process: its API, version, kernel and thread count."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(" ".join(str(i[k]) for k in ("internal_api", "prefix", "version", "architecture") if i.get(k))
                     + f" threads={i.get('num_threads')}" for i in threadpool_info())


def torch_available(threads: int | None = None) -> str | None:
    """None when torch imports (its intra-op pool then set to ``threads``, default every core), else a note why not."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 (any import failure means: no torch)
        return f"torch not importable ({type(exc).__name__}: {exc}); PyTorch columns skipped"
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return None


def torch_sgd_step(net, xt, y: np.ndarray, lr: float):
    """One PyTorch training step of ``net`` on the batch ``xt`` (a torch tensor) with integer labels ``y``:
    softmax cross-entropy (mean over the batch), backward, plain SGD at learning rate ``lr``; returns the step
    as a function of no arguments that gives the loss."""
    import torch

    opt = torch.optim.SGD(net.parameters(), lr=lr)
    yt = torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def cpu_model() -> str:
    """The CPU's ``model name`` from /proc/cpuinfo (``platform.processor()`` where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> dict:
    """NumPy's, PyTorch's and JAX's installed versions (None for one not installed), read without importing them."""
    from importlib import metadata

    out = {}
    for name in ("numpy", "torch", "jax"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict:
    """CPU model and count, BLAS kernel and threads, 1-minute load average now, library versions."""
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "blas": blas_info(), "load_1min": os.getloadavg()[0],
            "versions": versions(), "python": platform.python_version()}


# -- threads and load -----------------------------------------------------------------------------------------
def threads_env(n: int, env=None) -> dict:
    """``env`` (default ``os.environ``) for a child process whose every thread pool starts with ``n`` threads.

    OpenBLAS, MKL and OpenMP read their variables when they load; XLA's CPU client reads ``XLA_FLAGS`` when the
    backend starts (no runtime call changes it), so a one-thread JAX needs a fresh process. The child still caps
    the pools at run time too (threadpoolctl, ``torch.set_num_threads``).
    """
    env = dict(os.environ if env is None else env)
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[key] = str(n)
    if n == 1:  # XLA has a switch for one thread, no count: with n > 1 JAX keeps its own pool size
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


_SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextlib.contextmanager
def competing_load(seconds: float = 1800.0):
    """One CPU-bound process (a pure-Python busy loop, one core) for the duration of the block.

    It stops by itself after ``seconds`` whatever happens to this process, and is killed when the block exits.
    Yields the ``subprocess.Popen``.
    """
    proc = subprocess.Popen([sys.executable, "-c", _SPIN.format(seconds=float(seconds))])
    try:
        time.sleep(0.2)  # let it reach its loop before anything is timed
        yield proc
    finally:
        proc.kill()
        proc.wait()


# -- memory ------------------------------------------------------------------------------------------------
def status_kb(key: str) -> int:
    """A ``/proc/self/status`` field in kB (``VmRSS``, ``VmHWM``, ...); 0 where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def step_memory(fn, steps: int = 3, traced: bool = False, before_trace=None) -> dict:
    """Memory of ``fn()`` (one step) in this process, which should be fresh and hold one framework only.

    ``peak_rss_mb``: VmHWM after one warm-up call and ``steps`` calls (what the process needed in all, framework
    and data included). ``step_rise_mb``: that peak above the RSS just before the steps (the peak is reset through
    /proc/self/clear_refs; None where it cannot be). With ``traced``, ``tracemalloc_peak_mb``: tracemalloc's peak
    of the allocations of one more call (NumPy's arrays included), after ``before_trace()`` (e.g. emptying a
    buffer cache so that its buffers count in the step's working set).
    """
    fn()  # compile / first-touch
    before = status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    for _ in range(steps):
        fn()
    peak = status_kb("VmHWM")
    out = {"peak_rss_mb": peak / 1024, "step_rise_mb": (peak - before) / 1024 if reset else None}
    if traced:
        if before_trace is not None:
            before_trace()
        tracemalloc.start()
        try:
            fn()
            out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    return out
