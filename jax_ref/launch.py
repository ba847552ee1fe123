"""Start N local JAX processes that form one distributed job, as a cluster scheduler would.

``python -m jax_ref.launch --processes 2 [--devices-per-process 2] [--timeout 600] script.py args...`` (or
``launch(["script.py", "args"], processes=2)``) runs ``python script.py args...`` N times on this machine, each
with the environment a scheduler would give it:

- ``JAX_COORDINATOR_ADDRESS=127.0.0.1:<free port>`` and ``JAX_COORDINATOR_BIND_ADDRESS`` the same (the
  coordinator listens on the loopback only; both read by ``jax.distributed.initialize`` itself),
  ``JAX_NUM_PROCESSES=N`` and ``JAX_PROCESS_ID=i`` (read by ``initialize`` below);
- ``JAX_PLATFORMS=cpu``, ``JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo`` (the cross-process all-reduce on CPU) and
  ``XLA_FLAGS=--xla_force_host_platform_device_count=K`` (K CPU devices per process).

The script calls ``jax_ref.launch.initialize()`` before any other JAX call: under this launcher it joins the
job with those values; under SLURM or Open MPI it calls ``jax.distributed.initialize()``, which reads the
scheduler's variables itself; alone it does nothing (one process). So the same script runs on a laptop, a
cluster, or alone.

If a process exits with a non-zero code (or the ``timeout`` passes) the launcher stops the others (SIGTERM,
then SIGKILL after ``grace`` seconds) and raises ``LaunchError`` naming the process and its exit code (the CLI
prints it and exits with 1): no process is left waiting forever on a collective whose peer is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["LaunchError", "free_port", "initialize", "launch"]

_ADDRESS, _COUNT, _ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


class LaunchError(RuntimeError):
    """A launched process failed or the job ran out of time; the other processes were stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS picks it; it stays free unless someone else binds it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"jax_ref.launch: {name} must be a positive int; got {value!r}")
    return value


def _child_env(base, address, processes, process_id, devices_per_process):
    flags = " ".join(f for f in base.get("XLA_FLAGS", "").split()
                     if not f.startswith("--xla_force_host_platform_device_count"))
    return {**base, _ADDRESS: address, "JAX_COORDINATOR_BIND_ADDRESS": address, _COUNT: str(processes),
            _ID: str(process_id), "JAX_PLATFORMS": "cpu",
            "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
            "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices_per_process}".strip()}


def _stop(procs, grace):
    """SIGTERM every running process, SIGKILL those still alive after ``grace`` seconds."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(deadline - time.monotonic(), 0))
        if p.poll() is None:
            p.kill()
            p.wait()


def _tail(log_dir, i, lines=20):
    if log_dir is None:
        return ""
    text = (Path(log_dir) / f"process_{i}.log").read_text(errors="replace").splitlines()
    return "\nlast lines of its log:\n" + "\n".join(text[-lines:])


def launch(argv, processes=2, devices_per_process=1, timeout=None, env=None, log_dir=None, grace=5.0,
           python=None) -> list[int]:
    """Run ``python *argv`` as ``processes`` processes of one JAX job on 127.0.0.1 (see the module docstring).

    ``argv``: the script and its arguments (``["train.py", "--epochs", "3"]``, or ``["-m", "pkg.mod"]``);
    ``devices_per_process``: CPU devices per process; ``timeout``: seconds for the whole job (None: no limit);
    ``env``: the base environment (default ``os.environ``); ``log_dir``: if given, process ``i`` writes its
    stdout and stderr to ``log_dir/process_i.log`` (else they go to this process' own); ``grace``: seconds
    between SIGTERM and SIGKILL when stopping; ``python``: the interpreter (default ``sys.executable``).
    Returns the exit codes (all 0); raises ``LaunchError`` when a process fails or the timeout passes.
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise ValueError("jax_ref.launch: argv must name the script to run; got an empty list")
    _positive_int("processes", processes)
    _positive_int("devices_per_process", devices_per_process)
    if timeout is not None and not timeout > 0:
        raise ValueError(f"jax_ref.launch: timeout must be a positive number of seconds or None; got {timeout!r}")
    address = f"127.0.0.1:{free_port()}"
    base = dict(os.environ if env is None else env)
    logs = []
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i in range(processes):
            out = None
            if log_dir is not None:
                out = open(Path(log_dir) / f"process_{i}.log", "w")  # noqa: SIM115  (closed in finally)
                logs.append(out)
            procs.append(subprocess.Popen([python or sys.executable, *argv],
                                          env=_child_env(base, address, processes, i, devices_per_process),
                                          stdout=out, stderr=subprocess.STDOUT if out else None))
        start = time.monotonic()
        while True:
            codes = [p.poll() for p in procs]
            failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i = failed[0]
                _stop(procs, grace)
                raise LaunchError(f"jax_ref.launch: process {i} of {processes} exited with code {codes[i]} "
                                  f"(running {' '.join(argv)}); stopped the other processes{_tail(log_dir, i)}")
            if all(c == 0 for c in codes):
                return codes
            if timeout is not None and time.monotonic() - start > timeout:
                running = [i for i, c in enumerate(codes) if c is None]
                _stop(procs, grace)
                raise LaunchError(f"jax_ref.launch: timeout={timeout} s passed with processes {running} of "
                                  f"{processes} still running (running {' '.join(argv)}); stopped them")
            time.sleep(0.05)
    finally:
        _stop(procs, grace)
        for f in logs:
            f.close()


def initialize(initialization_timeout=60, heartbeat_timeout_seconds=30) -> bool:
    """Join the distributed job this process belongs to; call it before any other JAX call.

    Under ``launch``: ``jax.distributed.initialize(JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
    JAX_PROCESS_ID)``. Under SLURM (``SLURM_NTASKS`` > 1) or Open MPI (``OMPI_COMM_WORLD_SIZE`` > 1):
    ``jax.distributed.initialize()``, which reads the scheduler's variables. Otherwise nothing (one process).
    ``initialization_timeout``: seconds to wait for every process to connect; ``heartbeat_timeout_seconds``:
    after this long without a heartbeat JAX declares a process dead and aborts the others (the launcher
    stops them sooner). Returns whether a multi-process job was joined.
    """
    import jax

    timeouts = {"initialization_timeout": initialization_timeout,
                "heartbeat_timeout_seconds": heartbeat_timeout_seconds}
    if _COUNT in os.environ:
        count, pid = (_env_int(k) for k in (_COUNT, _ID))
        if count == 1:
            return False
        jax.distributed.initialize(os.environ.get(_ADDRESS), count, pid, **timeouts)
        return True
    if any(_env_int(k, 1) > 1 for k in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")):
        jax.distributed.initialize(**timeouts)
        return True
    return False


def _env_int(name, default=None):
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ValueError(f"jax_ref.launch.initialize: {_COUNT} is set but {name} is not")
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"jax_ref.launch.initialize: environment variable {name}={value!r} must be an "
                         f"integer") from None


def main(args=None) -> int:
    """The ``python -m jax_ref.launch`` command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m jax_ref.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", "-n", type=int, default=2, help="number of processes (default 2)")
    parser.add_argument("--devices-per-process", type=int, default=1, help="CPU devices per process (default 1)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds for the whole job (default: none)")
    parser.add_argument("--log-dir", default=None, help="write process i's output to LOG_DIR/process_i.log")
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    ns = parser.parse_args(args)
    try:
        launch([ns.script, *ns.args], ns.processes, ns.devices_per_process, ns.timeout, log_dir=ns.log_dir)
    except (LaunchError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the finally in launch has stopped the processes
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
