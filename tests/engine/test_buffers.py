"""The caching allocator of the hot primitives: a buffer is reused only when nothing refers to it."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn.ops import buffers

BIG = (512, 1024)  # 2 MiB of float32: above the caching threshold


@pytest.fixture(autouse=True)
def empty_cache():
    buffers.clear()
    yield
    buffers.clear()


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_a_freed_buffer_is_reused_and_a_live_one_never():
    a = buffers.empty(BIG, np.float32)
    b = buffers.empty(BIG, np.float32)
    assert _address(a) != _address(b)  # a is alive: b gets its own memory
    view = a[3:]  # a view keeps the buffer in use after the array itself goes
    address = _address(a)
    del a
    assert _address(buffers.empty(BIG, np.float32)) != address
    del view
    # same byte count, another shape and dtype: the freed buffer comes back
    c = buffers.empty((BIG[0] * BIG[1] // 2,), np.float64)
    assert _address(c) == address and c.shape == (BIG[0] * BIG[1] // 2,) and c.flags.c_contiguous


def test_zeros_and_full_fill_a_reused_buffer():
    a = buffers.empty(BIG, np.float32)
    a.fill(7)
    address = _address(a)
    del a
    zeros = buffers.zeros(BIG, np.float32)
    assert _address(zeros) == address and not zeros.any()  # the dirty buffer itself came back, cleared
    zeros.fill(7)
    del zeros
    full = buffers.full(BIG, -np.inf, np.float32)
    assert _address(full) == address and (full == -np.inf).all()


def test_small_arrays_are_not_cached():
    a = buffers.empty((4, 4), np.float64)
    assert buffers.cached_bytes() == 0 and a.shape == (4, 4)


def test_the_cache_stays_under_max_bytes(monkeypatch):
    nbytes = BIG[0] * BIG[1] * 4
    monkeypatch.setattr(buffers, "max_bytes", 2 * nbytes)
    held = [buffers.empty(BIG, np.float32) for _ in range(3)]  # the third is not cached: no room
    assert buffers.cached_bytes() == 2 * nbytes
    del held
    other = buffers.empty((2 * BIG[0], BIG[1]), np.float32)  # 2x the size: both free buffers make room
    assert buffers.cached_bytes() == 2 * nbytes and other.nbytes == 2 * nbytes


def test_clear_keeps_buffers_in_use():
    a = buffers.empty(BIG, np.float32)
    b = buffers.empty(BIG, np.float32)
    del b
    buffers.clear()
    assert buffers.cached_bytes() == a.nbytes


def _conv_outputs_survive_later_steps():
    """Outputs and gradients a user keeps are not overwritten by later forwards and backwards."""
    rng = np.random.default_rng(0)
    k = tg.Tensor(rng.standard_normal((3, 3, 8, 32)).astype(np.float32), requires_grad=True)
    kept = []
    for _ in range(3):
        x = tg.Tensor(rng.standard_normal((16, 32, 32, 8)).astype(np.float32), requires_grad=True)
        y = F.max_pool(F._conv("conv", x, k, padding="same", relu=True), 2)
        y.backward(np.ones(y.shape, np.float32))
        kept.append((y.data, x.grad, y.data.copy(), x.grad.copy()))
    return all(np.array_equal(a, a_copy) and np.array_equal(g, g_copy) for a, g, a_copy, g_copy in kept)


def test_kept_outputs_and_gradients_are_never_overwritten():
    assert _conv_outputs_survive_later_steps()
    assert buffers.cached_bytes() > 0  # the primitives did go through the cache


def test_negative_control_a_cache_that_ignores_references_is_caught(monkeypatch):
    monkeypatch.setattr(buffers, "_free_index", lambda bucket: 0 if bucket else None)
    assert not _conv_outputs_survive_later_steps()
