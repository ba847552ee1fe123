"""tg.set_num_threads / num_threads / get_num_threads: the BLAS pool's size, set, scoped and refused when bad."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tinygrad_cnn as tg


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_scoped_limit_applies_inside_and_restores_after():
    before = _blas_threads()
    with tg.num_threads(1):
        assert _blas_threads() == {1} and tg.get_num_threads() == 1
        a = np.random.default_rng(0).standard_normal((64, 64))
        one_thread = (tg.Tensor(a) @ tg.Tensor(a)).data
    assert _blas_threads() == before
    np.testing.assert_allclose(one_thread, a @ a, rtol=1e-12)


def test_set_num_threads_sticks_until_set_again_and_auto_gives_the_libraries_their_counts_back():
    original = _blas_threads()
    try:
        tg.set_num_threads(1)
        assert _blas_threads() == {1}
        tg.set_num_threads(1)
        assert _blas_threads() == {1}
    finally:
        tg.set_num_threads("auto")
    assert _blas_threads() == original


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True, None])
def test_bad_counts_are_refused_naming_the_function_and_the_value(bad):
    before = _blas_threads()
    with pytest.raises(ValueError, match=r"set_num_threads: n=.* must be a positive int"):
        tg.set_num_threads(bad)
    with pytest.raises(ValueError, match=r"num_threads: n=.* must be a positive int"):
        with tg.num_threads(bad):
            pass
    assert _blas_threads() == before


class _FakeClock:
    """A clock that a simulated step advances by its cost at the tuner's running count."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _run(tuner, clock, cost, steps):
    ran = []
    for _ in range(steps):
        with tuner.step():
            ran.append(tuner.running)
            clock.now += cost[tuner.running]
    return ran


def test_tuner_keeps_the_faster_count_and_follows_a_change_of_load():
    clock = _FakeClock()
    tuner = tg.ThreadTuner(counts=[2, 1], trials=2, explore=4, clock=clock)
    busy = {2: 20.0, 1: 1.0}  # two threads on a busy machine: the slowest thread waits
    ran = _run(tuner, clock, busy, 5)
    assert ran == [2, 2, 1, 2, 1]  # untimed warm-up, then the interleaved trial
    assert tuner.count == 1
    ran = _run(tuner, clock, busy, 40)
    looks = [i for i, n in enumerate(ran) if n == 2]
    assert looks == [4, 13, 30]  # one look after 4 steps, then the interval doubles while 1 thread wins
    quiet = {2: 0.5, 1: 1.0}
    _run(tuner, clock, quiet, 40)
    assert tuner.count == 2  # the next look finds two threads faster again
    # negative control: with equal costs the kept count never changes
    clock, tuner = _FakeClock(), tg.ThreadTuner(counts=[2, 1], explore=2, clock=clock)
    _run(tuner, clock, {2: 1.0, 1: 1.0}, 30)
    assert tuner.count == 2


def test_a_fixed_count_turns_the_tuner_off_and_auto_turns_it_back_on():
    clock = _FakeClock()
    tuner = tg.ThreadTuner(counts=[2, 1], clock=clock)
    with tg.num_threads(1):
        assert _run(tuner, clock, {None: 0.0}, 3) == [None] * 3
    try:
        tg.set_num_threads(1)
        assert _run(tuner, clock, {None: 0.0}, 2) == [None] * 2
    finally:
        tg.set_num_threads("auto")
    assert _run(tuner, clock, {2: 1.0, 1: 1.0}, 1) == [2]


def test_fit_is_bit_identical_whatever_count_the_tuner_picks():
    """The tuner may run any step at any count: OpenBLAS gives the same bits at every count (GEMMs big enough to
    be split over threads: 64 x 14 x 14 rows)."""
    from tinygrad_cnn import nn

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((128, 16, 16, 1)).astype(np.float32), rng.integers(0, 10, 128)

    def trained():
        nn.set_random_seed(0)
        model = nn.Sequential([nn.Input((16, 16, 1)), nn.Conv2D(16, 3, activation="relu"), nn.Flatten(),
                               nn.Dense(10)])
        model.compile(optimizer="sgd", loss=nn.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=64, epochs=3, verbose=0, shuffle=False)
        return model.get_weights()

    tuned, top = trained(), tg.get_num_threads()
    for n in {1, top}:
        with tg.num_threads(n):
            fixed = trained()
        assert all(np.array_equal(a, b) for a, b in zip(tuned, fixed, strict=True)), n


def test_bad_tuner_counts_are_refused():
    with pytest.raises(ValueError, match=r"ThreadTuner: n=0 must be a positive int"):
        tg.ThreadTuner(counts=[2, 0])
