"""How many threads the engine's BLAS (and any OpenMP pool in the process) may use.

The engine's time goes to NumPy's BLAS (OpenBLAS, MKL or BLIS), which starts one thread per core. On a quiet
machine every core helps a large GEMM; on a busy one a GEMM split over every core waits for its slowest,
descheduled thread (measured on 2 cores at load 16-20: the reference CNN's batch-16 step 1,194 ms with two
threads, 46 ms with one). No fixed count is right for both, so the default policy, ``"auto"``, measures:
``fit``, ``evaluate`` and ``predict`` time their own steps at each candidate count and keep the fastest
(:class:`ThreadTuner`). ``set_num_threads(n)`` fixes the count instead (and so does a thread-count environment
variable set before the start, e.g. ``OMP_NUM_THREADS``); ``with num_threads(n):`` fixes it for a block.
threadpoolctl does the work, for every BLAS and OpenMP library loaded in the process.

The count does not change results with OpenBLAS, which never splits a GEMM's inner (summed) dimension over
threads (a test checks the engine's step bit for bit); MKL may, unless ``MKL_CBWR`` is set.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections import deque

from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

from tinygrad_cnn import validation

__all__ = ["ThreadTuner", "get_num_threads", "num_threads", "set_num_threads"]

_ENV_COUNTS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
# "auto" (tune in fit/evaluate/predict) unless the user fixed the count in the environment before the start
_policy: str | int = "fixed by the environment" if any(os.environ.get(k) for k in _ENV_COUNTS) else "auto"
_before_fixed = None  # the limiter of the first set_num_threads(n): it restores the libraries' own counts


def _check(fn: str, n, allow_auto: bool = False) -> int | str:
    if allow_auto and n == "auto":
        return "auto"
    if not validation.is_int(n) or isinstance(n, bool) or n < 1:
        expected = 'a positive int (the number of BLAS/OpenMP threads) or "auto"' if allow_auto else \
            "a positive int (the number of BLAS/OpenMP threads)"
        raise ValueError(f"{fn}: n={n!r} must be {expected}")
    return int(n)


def set_num_threads(n: int | str) -> None:
    """Cap every BLAS and OpenMP thread pool of the process at ``n`` threads, from now on, or let fit tune it.

    Args:
        n: a positive int: ``1`` runs every GEMM on the calling thread (best on a machine whose cores are busy
            with other work), ``os.cpu_count()`` is the libraries' own default; or ``"auto"`` (the default
            policy): the libraries get their own counts back, and ``fit``/``evaluate``/``predict`` pick theirs
            by timing their own steps (:class:`ThreadTuner`).
    """
    global _policy, _before_fixed
    n = _check("set_num_threads", n, allow_auto=True)
    if n == "auto":
        if _before_fixed is not None:
            _before_fixed.restore_original_limits()
            _before_fixed = None
    elif _before_fixed is None:
        _before_fixed = threadpool_limits(limits=n)  # every library loaded by now
    else:
        threadpool_limits(limits=n)
    _policy = n


def get_num_threads() -> int:
    """The largest thread count of the BLAS/OpenMP pools loaded in the process (1 if none is loaded)."""
    return max((info["num_threads"] for info in threadpool_info()), default=1)


@contextlib.contextmanager
def num_threads(n: int):
    """Within the block, cap every BLAS and OpenMP pool at ``n`` threads (tuning off); restore everything after.

    Args:
        n: positive int, the thread cap inside the block.
    """
    global _policy
    limiter = threadpool_limits(limits=_check("num_threads", n))
    previous, _policy = _policy, n
    try:
        yield
    finally:
        _policy = previous
        limiter.restore_original_limits()


class ThreadTuner:
    """Runs a repeated step at the BLAS thread count that is fastest now, found by timing the step itself.

    The candidates are the libraries' count ``n`` and its halvings down to 1 (``n, n // 2, ..., 1``). The first
    step runs at ``n`` untimed (it allocates the step's buffers); then every candidate runs ``trials`` times,
    interleaved so that machine noise hits all alike, and the one with the smallest median time is kept. The
    load changes, so after ``explore`` steps one step runs at another candidate (in turn); if it beats the
    median of the kept count's last five steps by 10%, it is kept instead and exploring starts again at
    ``explore`` steps, otherwise the interval doubles (up to ``max_explore``): the cost of looking is at most
    one slow step in ``explore``, falling fast while the choice holds.

    Only under the ``"auto"`` policy (see :func:`set_num_threads`); otherwise :meth:`step` changes nothing.

    Args:
        counts: the candidate counts, largest first; default: the libraries' count and its halvings.
        trials: timed steps per candidate in the first comparison (>= 1).
        explore: steps between looks at another candidate, at first (>= 1).
        max_explore: the longest interval between looks.
        clock: the timer (seconds); tests pass a fake one.
    """

    def __init__(self, counts=None, trials: int = 2, explore: int = 16, max_explore: int = 512,
                 clock=time.perf_counter):
        self._controller = ThreadpoolController()
        if counts is None:
            counts = [max((lib.num_threads for lib in self._controller.lib_controllers), default=1)]
            while counts[-1] > 1:
                counts.append(counts[-1] // 2)
        self.counts = [_check("ThreadTuner", n) for n in counts]
        top = self.counts[0]
        self._explore, self._max_explore, self._clock = explore, max_explore, clock
        self._times = {n: deque(maxlen=5) for n in self.counts}
        self._schedule = [None] + [n for _ in range(trials) for n in self.counts]  # None: the untimed warm-up
        self._interval, self._since, self._turn = explore, 0, 0
        self.count = top  # the count kept
        self.running = None  # the count of the step being run

    def _next(self) -> int | None:
        """The count the next step runs at (None: the untimed warm-up at the top count)."""
        if self._schedule:
            return self._schedule.pop(0)
        if len(self.counts) > 1 and self._since >= self._interval:
            others = [n for n in self.counts if n != self.count]
            self._turn += 1
            return others[self._turn % len(others)]
        return self.count

    def _record(self, n: int, seconds: float, trial: bool) -> None:
        self._times[n].append(seconds)
        if trial:
            if not self._schedule:  # the first comparison is complete
                self.count = min(self.counts, key=lambda c: statistics.median(self._times[c]))
            return
        if n == self.count:
            self._since += 1
            return
        self._since = 0
        if seconds < 0.9 * statistics.median(self._times[self.count]):
            self.count, self._interval = n, self._explore
        else:
            self._interval = min(2 * self._interval, self._max_explore)

    @contextlib.contextmanager
    def step(self, size: int = 1):
        """Run the block (one step over ``size`` examples) at the count the tuner chooses, timed per example.

        The pools' counts are restored after the block; a step that raises is not recorded.

        Args:
            size: positive int, default 1: the examples in the step (the time is divided by it).
        """
        if _policy != "auto" or not self._controller.lib_controllers:
            yield
            return
        trial = bool(self._schedule)
        n = self._next()
        self.running = self.counts[0] if n is None else n
        limiter = self._controller.limit(limits=self.running)
        start = self._clock()
        try:
            yield
        finally:
            elapsed = self._clock() - start
            limiter.restore_original_limits()
            self.running = None
        if n is not None:
            self._record(n, elapsed / max(size, 1), trial)
