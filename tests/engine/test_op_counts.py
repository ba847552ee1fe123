"""Speed regression guards that cannot flake: count operations, never seconds.

A conv's forward + backward must stay a fixed, small number of GEMM calls
whatever the image size and batch (one per kernel tap at most; no Python loop
over pixels, batch or channels sneaking in), and a training step of the reference CNN must record
the same graph nodes at every batch size; the im2col buffer stays within 2x (input
bytes x kernel taps), measured in bytes with tracemalloc. Timing lives only in
``benchmarks/bench_train_step.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, profiler
from tinygrad_cnn.optim import SGD


class _CountMatmul:
    """Wrap ``np.matmul`` (the conv primitives' only GEMM entry point) and count its calls."""

    def __init__(self, monkeypatch):
        self.calls = 0
        original = np.matmul

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(np, "matmul", counted)


def _conv_step(size, batch, strides=1, relu=False, seed=0):
    rng = np.random.default_rng(seed)
    x = tg.Tensor(rng.standard_normal((batch, size, size, 3)).astype(np.float32), requires_grad=True)
    k = tg.Tensor(rng.standard_normal((3, 3, 3, 4)).astype(np.float32), requires_grad=True)
    b = tg.Tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    y = F.conv(x, k, b, strides=strides, padding="same", _relu=relu)
    y.backward(rng.standard_normal(y.shape).astype(np.float32))
    return x, k, b


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("relu", [False, True])
def test_conv_forward_backward_gemms_are_fixed_at_any_size(monkeypatch, strides, relu):
    counts = set()
    for size, batch in ((6, 1), (11, 3), (24, 5)):
        counter = _CountMatmul(monkeypatch)
        with profiler.profile() as prof:
            _conv_step(size, batch, strides, relu)
        counts.add((counter.calls, tuple(sorted(prof.counts("forward").items())),
                    tuple(sorted(prof.counts("nested").items()))))
    assert len(counts) == 1, counts  # independent of image size and batch
    gemms, forward, nested = counts.pop()
    # forward GEMM, kernel-gradient GEMM and one input-gradient GEMM per kernel tap (9 for 3x3) into one reused
    # buffer; the bias gradient is a GEMV via @
    assert gemms == 2 + 9
    assert dict(forward) == {"Conv": 1}
    expected = {"ConvTranspose": 1, "ConvKernelGrad": 1, "ChannelSum": 1}
    if relu:
        expected["Mul"] = 1  # the relu mask applied to the cotangent
    assert dict(nested) == expected


@pytest.mark.parametrize("input_grad", [True, False])
def test_fused_conv_relu_pool_gemms_are_fixed_at_any_size(monkeypatch, input_grad):
    from tinygrad_cnn.ops import conv as conv_ops
    from tinygrad_cnn.ops import conv_pool
    counts = set()
    for size, batch in ((6, 1), (12, 3), (26, 5)):
        rng = np.random.default_rng(size)
        x = tg.Tensor(rng.standard_normal((batch, size, size, 3)).astype(np.float32), requires_grad=input_grad)
        k = tg.Tensor(rng.standard_normal((3, 3, 3, 4)).astype(np.float32), requires_grad=True)
        b = tg.Tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
        geo = conv_ops.make_geometry((3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)), 1)
        counter = _CountMatmul(monkeypatch)
        with profiler.profile() as prof:
            z = conv_pool.conv_relu_max_pool(x, k, b, geo=geo, pool=(2, 2))
            z.backward(np.ones(z.shape, np.float32))
        counts.add((counter.calls, tuple(sorted(prof.counts("nested").items()))))
    assert len(counts) == 1, counts  # independent of image size and batch
    gemms, nested = counts.pop()
    # forward GEMM, kernel + bias gradient in one GEMM, and one input-gradient GEMM per kernel tap
    assert gemms == 2 + 9 * input_grad
    assert nested == ()  # the vjp records no primitives


def test_negative_control_counter_sees_extra_gemms(monkeypatch):
    counter = _CountMatmul(monkeypatch)
    _conv_step(6, 1)
    _conv_step(6, 1)
    assert counter.calls == 2 * (2 + 9)  # the counter does count every call


def test_fused_relu_matches_separate_relu():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 7, 3))
    k = rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal(4)
    cot = rng.standard_normal((2, 7, 7, 4))
    grads = []
    for fused in (False, True):
        ts = [tg.Tensor(a, requires_grad=True) for a in (x, k, b)]
        y = F.conv(*ts, padding="same", _relu=fused)
        y = y if fused else F.relu(y)
        y.backward(cot)
        grads.append([y.data] + [t.grad for t in ts])
    for a, f in zip(*grads, strict=True):
        np.testing.assert_allclose(f, a, rtol=1e-12, atol=1e-12)


def _train_step_counts(batch):
    model = nn.reference_cnn()
    opt = SGD(model.parameters(), learning_rate=0.01)
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    with profiler.profile() as prof:
        loss = F.cross_entropy(model(x, training=True), y)
        loss.backward()
        opt.step()
    return prof


def test_training_step_records_a_fixed_small_graph():
    profs = [_train_step_counts(b) for b in (2, 5)]
    counts = [(p.counts("forward"), p.counts("vjp"), p.counts("nested")) for p in profs]
    assert counts[0] == counts[1]  # independent of the batch size
    forward, nested = counts[0][0], counts[0][2]
    # each conv + relu + max-pool pair is one primitive; the dense layers are two MatMuls
    assert forward["ConvReluMaxPool"] == 2 and forward["MatMul"] == 2
    assert "Conv" not in forward and "MaxPool" not in forward
    assert forward["Relu"] == 1  # the Dense(128) one
    assert profs[0].total_nodes() <= 21  # 19 today: regressions in graph bookkeeping show up here
    assert sum(counts[0][1].values()) <= profs[0].total_nodes()  # no node ran its vjp twice
    assert not any(name.startswith(("Conv", "MaxPool")) for name in nested)  # the fused vjp is plain NumPy
    assert sum(nested.values()) <= 30  # ops run inside the vjps (28 today)


def test_profiler_leaves_nothing_behind_and_sees_only_its_thread():
    import threading

    from tinygrad_cnn import observe
    x = tg.Tensor(np.ones(3), requires_grad=True)
    with profiler.profile() as prof:
        other = threading.Thread(target=lambda: (x * 2.0).sum())  # another thread's ops are not this profile's
        other.start()
        other.join()
        (x + 1.0).sum().backward()
    assert observe.observers() == ()
    assert prof.counts("forward") == {"Add": 1, "Sum": 1} and prof.counts("vjp") == {"Add": 1, "Sum": 1}
    assert "total" in profiler.Profile().table()


# -- memory: the im2col buffer (tracemalloc sees every NumPy data buffer; byte counts, never seconds) ---------
_MEMORY_CASES = [  # x shape, kernel shape, strides, padding, dilation, groups
    ((4, 28, 28, 1), (3, 3, 1, 32), 1, "same", 1, 1),  # the reference CNN's conv1 (the per-tap copy, C = 1)
    ((4, 14, 14, 32), (3, 3, 32, 64), 1, "same", 1, 1),  # its conv2 (the window-view copy)
    ((3, 11, 11, 3), (5, 5, 3, 4), 2, "valid", 1, 1),
    ((2, 12, 12, 4), (3, 3, 4, 6), 1, "same", 2, 1),
    ((2, 9, 9, 6), (3, 3, 3, 4), 1, "same", 1, 2),  # grouped
    ((2, 10, 10, 8), (3, 3, 8, 4), 1, "same", 1, 1),  # C_out < C_in: the input gradient is an im2col of g
    ((2, 6, 7, 5, 2), (3, 2, 3, 2, 3), 1, "same", 1, 1),  # 3-D
]


def _im2col_peaks(monkeypatch, x, k, b, strides, padding, dilation, groups, backward):
    """Run a conv (forward, optionally + backward) and return, per ``_im2col`` call, the bytes it added at
    its peak (tracemalloc peak during the call minus the traced memory before it), and the output shape.
    The input gradient (``conv_input_adjoint``: a slab per tap) is measured the same way. The buffer cache
    is emptied first, so that every buffer is a fresh allocation that tracemalloc sees.
    """
    import tracemalloc

    from tinygrad_cnn.ops import buffers
    from tinygrad_cnn.ops import conv as conv_ops
    buffers.clear()
    peaks = []

    def measured(original):
        def wrapper(*args, **kwargs):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = original(*args, **kwargs)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
            return result
        return wrapper
    for name in ("_im2col", "conv_input_adjoint"):
        monkeypatch.setattr(conv_ops, name, measured(getattr(conv_ops, name)))
    ts = [tg.Tensor(a, requires_grad=True) for a in (x, k, b)]
    tracemalloc.start()
    try:
        y = F.conv(*ts, strides=strides, padding=padding, dilation_rate=dilation, groups=groups, _relu=True)
        if backward:
            y.backward(np.full(y.shape, 0.5, dtype=y.data.dtype))
    finally:
        tracemalloc.stop()
    return peaks, y.shape


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "forward+backward"])
@pytest.mark.parametrize("case", _MEMORY_CASES, ids=lambda c: f"x{c[0]}-k{c[1]}")
def test_im2col_peak_memory_within_twice_input_times_taps(monkeypatch, case, backward):
    x_shape, k_shape, strides, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x, k, b = (rng.standard_normal(s).astype(np.float32) for s in (x_shape, k_shape, k_shape[-1:]))
    peaks, y_shape = _im2col_peaks(monkeypatch, x, k, b, strides, padding, dilation, groups, backward)
    assert peaks, "the conv did not go through _im2col"
    bound = 2 * x.nbytes * int(np.prod(k_shape[:-2]))  # the requirement: 2 x (input bytes x kernel taps)
    assert all(p <= bound for p in peaks), (peaks, bound)  # forward columns and the input gradient's
    assert len(peaks) == (2 + (k_shape[-1] < x_shape[-1] and groups == 1) if backward else 1), peaks
    # positive check that the measure sees the buffer: the forward's (M, T*C) columns were allocated in the call
    assert peaks[0] >= int(np.prod(y_shape[:-1])) * int(np.prod(k_shape[:-2])) * x_shape[-1] * 4


def test_negative_control_im2col_memory_measure_sees_a_wasteful_copy(monkeypatch):
    from tinygrad_cnn.ops import conv as conv_ops
    original = conv_ops._im2col

    def wasteful(x, geo, ones=False):  # a float64 detour: 2x the columns' bytes on top of them
        cols, out = original(x, geo, ones)
        return cols.astype(np.float64).astype(cols.dtype), out
    monkeypatch.setattr(conv_ops, "_im2col", wasteful)
    x_shape, k_shape, strides, padding, dilation, groups = _MEMORY_CASES[1]
    rng = np.random.default_rng(0)
    x, k, b = (rng.standard_normal(s).astype(np.float32) for s in (x_shape, k_shape, k_shape[-1:]))
    peaks, _ = _im2col_peaks(monkeypatch, x, k, b, strides, padding, dilation, groups, backward=False)
    assert peaks[0] > 2 * x.nbytes * 9, peaks
