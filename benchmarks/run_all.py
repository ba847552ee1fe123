"""Every workload side by side in one command: the engine, PyTorch (when importable), jax.jit of the twin and the
GEMM floor, at default threads, at one thread and under a competing load; peak memory; a scaling plot.

Workloads (``benchmarks/_workloads.py``): ``cnn`` (the reference CNN's training step), ``mnist1d`` (the MNIST-1D
Conv1D CNN's), ``resnet`` (the small ResNet with BatchNorm's), ``cnn-predict`` and ``resnet-predict``
(inference, ``predict`` at batch 256, fusion on, against PyTorch eval/no_grad and ``jax.jit`` of the twin's
``apply``) and ``gradcheck`` (the float64 checker against ``torch.autograd.gradcheck``/``gradgradcheck`` and
``jax.test_util.check_grads``). The GEMM floor is the step's GEMMs alone at their exact shapes
(``bench_train_step.step_gemms``; forward GEMMs only for inference; none for the gradient check).

Conditions: every thread setting of ``--threads`` (``default``: the libraries' own; ``1``: every pool capped,
threadpoolctl + ``torch.set_num_threads`` + XLA's flags, in a fresh process), each again under load (this script
starts one CPU-bound process, bounded in time and killed after) unless ``--no-load``. Each (condition, workload)
runs in its own fresh process; inside it the frameworks' steps are interleaved (engine, PyTorch, jax, floor,
engine, ...) so machine noise hits all alike. Memory (``--no-memory`` skips it): per framework, a fresh process
that imports that framework only: peak RSS, its rise during the steps, and the engine's tracemalloc working set
of one step.

    python benchmarks/run_all.py [--out DIR] [--workloads cnn resnet ...] [--threads default 1] [--no-load]
                                 [--no-memory] [--repeats N] [--quick]

writes ``DIR/results.md`` (also printed), ``DIR/results.json`` and ``DIR/scaling.png`` (time per training step
against the batch size, log-log, with a dashed line of slope 1 through the engine's first point: linear scaling
shown, not claimed). Figures for the README come from a quiet machine; ``--quick`` is a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench_train_step: torch's spinning pool starves BLAS

import _harness  # noqa: E402
import _report  # noqa: E402

FRAMEWORKS = ("engine", "torch", "jax", "floor")
CHILD_TIMEOUT = 3600.0  # seconds for one (condition, workload) process


def _threads_label(threads) -> str:
    return "default threads" if threads is None else f"{threads} thread" + ("s" if threads > 1 else "")


def conditions(threads: list, load: bool) -> list[dict]:
    """``[{"threads": None or n, "load": bool, "label": str}, ...]``: every thread setting, then each under load."""
    out = [{"threads": t, "load": False, "label": _threads_label(t)} for t in threads]
    if load:
        out += [{"threads": t, "load": True, "label": _threads_label(t) + ", under load"} for t in threads]
    return out


# -- in a child process --------------------------------------------------------------------------------------
def available(frameworks) -> tuple[list, list]:
    """``(keep, notes)``: the frameworks among ``frameworks`` that can run here, and a note on each that cannot."""
    keep, notes = [], []
    for fw in frameworks:
        if fw == "torch":
            note = _harness.torch_available()
            if note:
                notes.append(note)
                continue
        if fw == "jax":
            try:
                import jax  # noqa: F401
            except ImportError as exc:
                notes.append(f"jax not importable ({exc}); jax.jit columns skipped")
                continue
        keep.append(fw)
    return keep, notes


def cap_threads(n: int) -> None:
    """Every BLAS/OpenMP pool loaded by now (``tg.set_num_threads``) and PyTorch's intra-op pool at ``n``."""
    import tinygrad_cnn as tg

    tg.set_num_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def measure(spec: dict) -> dict:
    """Time one workload at each of its settings: ``{"results": {setting: {...}}, "machine": ..., "notes": [...]}``."""
    from _workloads import WORKLOADS

    workload = WORKLOADS[spec["workload"]]
    frameworks, notes = available(spec["frameworks"])
    results = {}
    for setting in spec["settings"]:
        steps = workload.steps(setting, frameworks)
        if spec["threads"]:
            cap_threads(spec["threads"])  # after the frameworks are imported: their pools exist now
        first = {fw: fn() for fw, fn in steps.items()}
        load = os.getloadavg()[0]
        medians, minima = _harness.time_interleaved(steps, spec["repeats"], warmup=spec["warmup"])
        results[str(setting)] = {"ms": medians, "min_ms": minima, "agreement": workload.agreement(first),
                                 "load_1min": [load, os.getloadavg()[0]]}
    return {"results": results, "machine": _harness.machine_info(), "notes": notes}


def memory(spec: dict) -> dict:
    """Peak RSS (and the rise during the steps) of one framework's step in this fresh process; tracemalloc's
    working set of one step for the engine (its buffer cache emptied first, so the buffers count)."""
    import bench_train_step
    from _workloads import WORKLOADS

    workload = WORKLOADS[spec["workload"]]
    frameworks, notes = available([spec["framework"]])
    if not frameworks:
        return {"error": "; ".join(notes)}
    steps = workload.steps(spec["setting"], frameworks)
    if spec["framework"] not in steps:
        return {"skipped": f"{spec['workload']} {spec['setting']} has no {spec['framework']} step"}
    return _harness.step_memory(steps[spec["framework"]], steps=1 if workload.kind == "gradcheck" else 3,
                                traced=spec["framework"] == "engine",
                                before_trace=bench_train_step._clear_engine_buffers)


# -- the parent ------------------------------------------------------------------------------------------------
def child(kind: str, spec: dict, env=None, timeout: float = CHILD_TIMEOUT) -> dict:
    """Run :func:`measure` or :func:`memory` on ``spec`` in a fresh Python; its JSON result, or ``{"error": ...}``."""
    cmd = [sys.executable, os.path.abspath(__file__), f"--{kind}-child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def settings_for(workload, args, scaling: bool) -> list:
    """The workload's settings: ``--batches`` for training (plus the scaling batches when ``scaling``), else its own."""
    if workload.kind != "train":
        return workload.settings(args.quick)
    batches = args.batches or workload.settings(args.quick)
    if scaling:
        batches = sorted(set(batches) | set(args.scaling_batches))
    return batches


def run(args) -> dict:
    from _workloads import WORKLOADS

    repeats = args.repeats or (2 if args.quick else 10)
    report = {"machine": _harness.machine_info(), "quick": args.quick, "repeats": repeats, "runs": [],
              "memory": [], "notes": [], "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    conds = conditions(args.threads, not args.no_load)
    report["conditions"] = conds
    for i, cond in enumerate(conds):
        env = None if cond["threads"] is None else _harness.threads_env(cond["threads"])
        load_before = os.getloadavg()[0]
        for name in args.workloads:
            workload = WORKLOADS[name]
            spec = {"workload": name, "settings": settings_for(workload, args, scaling=i == 0),
                    "frameworks": args.frameworks, "threads": cond["threads"], "warmup": 1 if args.quick else 3,
                    "repeats": max(2, repeats // 2) if workload.kind == "gradcheck" else repeats}
            print(f"[{cond['label']}] {name} {spec['settings']} ...", file=sys.stderr, flush=True)
            # a fresh competing process per child, outliving the child's timeout: the load cannot end mid-run
            load = _harness.competing_load(CHILD_TIMEOUT + 60) if cond["load"] else contextlib.nullcontext()
            with load as spinner:
                res = child("measure", spec, env, CHILD_TIMEOUT)
                if spinner is not None and spinner.poll() is not None:
                    res = {"error": "the competing process ended before the measurement did"}
            report["runs"].append({"workload": name, "kind": workload.kind, "condition": cond["label"], **res})
            report["notes"] += [n for n in res.get("notes", []) if n not in report["notes"]]
        cond["load_1min"] = [load_before, os.getloadavg()[0]]
    if not args.no_memory:
        for name in args.workloads:
            workload = WORKLOADS[name]
            for setting in settings_for(workload, args, scaling=False):
                for fw in (f for f in args.frameworks if f != "floor"):  # the floor holds only its operands
                    print(f"[memory] {name} {setting} {fw} ...", file=sys.stderr, flush=True)
                    res = child("memory", {"workload": name, "setting": setting, "framework": fw})
                    report["memory"].append({"workload": name, "setting": str(setting), "framework": fw, **res})
    report["load_1min_after"] = os.getloadavg()[0]
    return report


def main(argv=None) -> dict | None:
    from _workloads import WORKLOADS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"),
                        help="directory for results.md, results.json, scaling.png (default benchmarks/results)")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument("--threads", nargs="+", type=_thread_setting, default=[None, 1],
                        help="thread settings, each 'default' or a positive int (default: default 1)")
    parser.add_argument("--no-load", action="store_true", help="skip the conditions with a competing process")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-framework memory processes")
    parser.add_argument("--repeats", type=int, help="interleaved steps per figure (default 10; 2 with --quick)")
    parser.add_argument("--batches", type=int, nargs="+", help="training batch sizes (default 64 256)")
    parser.add_argument("--scaling-batches", type=int, nargs="+",
                        help="batch sizes of the scaling plot, default threads (default 16 64 256)")
    parser.add_argument("--quick", action="store_true", help="tiny batches and repeats: a smoke run (tests)")
    parser.add_argument("--measure-child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_child or args.memory_child:
        fn, spec = (measure, args.measure_child) if args.measure_child else (memory, args.memory_child)
        print(json.dumps(fn(json.loads(spec))))
        return None
    if args.scaling_batches is None:
        args.scaling_batches = [8, 16] if args.quick else [16, 64, 256]
    report = run(args)
    print(_report.write(report, args.out))
    return report


def _thread_setting(text: str):
    if text == "default":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--threads: {text!r} is neither 'default' nor a positive int")
    return int(text)


if __name__ == "__main__":
    main()
