"""How many threads the engine's BLAS (and any OpenMP pool in the process) may use.

The engine's time goes to NumPy's BLAS (OpenBLAS, MKL or BLIS), which starts one thread per core. On a busy
machine that is a poor default: when other processes hold the cores, a GEMM split over every core waits for
its slowest thread (see the README's speed section for the measured effect). ``set_num_threads(1)`` (or
``with num_threads(1):``) is the cure, without environment variables; threadpoolctl does the work, for every
BLAS and OpenMP library loaded in the process.
"""

from __future__ import annotations

import contextlib

from threadpoolctl import threadpool_info, threadpool_limits

from tinygrad_cnn import validation

__all__ = ["get_num_threads", "num_threads", "set_num_threads"]

def _check(fn: str, n) -> int:
    if not validation.is_int(n) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{fn}: n={n!r} must be a positive int (the number of BLAS/OpenMP threads)")
    return int(n)


def set_num_threads(n: int) -> None:
    """Cap every BLAS and OpenMP thread pool of the process at ``n`` threads, from now on.

    Args:
        n: a positive int. ``1`` runs every GEMM on the calling thread (best on a machine whose cores are busy
            with other work); ``os.cpu_count()`` is the libraries' own default.
    """
    threadpool_limits(limits=_check("set_num_threads", n))  # every library loaded by now


def get_num_threads() -> int:
    """The largest thread count of the BLAS/OpenMP pools loaded in the process (1 if none is loaded)."""
    return max((info["num_threads"] for info in threadpool_info()), default=1)


@contextlib.contextmanager
def num_threads(n: int):
    """Within the block, cap every BLAS and OpenMP pool at ``n`` threads; restore the previous limits after."""
    limiter = threadpool_limits(limits=_check("num_threads", n))
    try:
        yield
    finally:
        limiter.restore_original_limits()
