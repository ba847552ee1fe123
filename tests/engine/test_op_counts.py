"""Speed regression guards that cannot flake: count operations, never seconds.

A conv's forward + backward must stay a fixed, small number of GEMM calls
whatever the image size and batch (no Python loop over pixels, batch or
channels sneaking in), and a training step of the reference CNN must record
the same graph nodes at every batch size. Timing lives only in
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
def test_conv_forward_backward_is_three_gemms_at_any_size(monkeypatch, strides, relu):
    counts = set()
    for size, batch in ((6, 1), (11, 3), (24, 5)):
        counter = _CountMatmul(monkeypatch)
        with profiler.profile() as prof:
            _conv_step(size, batch, strides, relu)
        counts.add((counter.calls, tuple(sorted(prof.counts("forward").items())),
                    tuple(sorted(prof.counts("nested").items()))))
    assert len(counts) == 1, counts  # independent of image size and batch
    gemms, forward, nested = counts.pop()
    # forward GEMM, input-gradient GEMM, kernel-gradient GEMM (the bias gradient is a GEMV via @)
    assert gemms == 3
    assert dict(forward) == {"Conv": 1}
    expected = {"ConvTranspose": 1, "ConvKernelGrad": 1, "ChannelSum": 1}
    if relu:
        expected["Mul"] = 1  # the relu mask applied to the cotangent
    assert dict(nested) == expected


def test_negative_control_counter_sees_extra_gemms(monkeypatch):
    counter = _CountMatmul(monkeypatch)
    _conv_step(6, 1)
    _conv_step(6, 1)
    assert counter.calls == 6  # the counter does count every call


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
    forward = counts[0][0]
    assert forward["Conv"] == 2 and forward["MaxPool"] == 2 and forward["MatMul"] == 2
    assert "Relu" in forward and forward["Relu"] == 1  # the conv layers' relu is fused into Conv
    assert profs[0].total_nodes() <= 24  # 21 today: regressions in graph bookkeeping show up here
    assert sum(counts[0][1].values()) <= profs[0].total_nodes()  # no node ran its vjp twice
    assert sum(counts[0][2].values()) <= 40  # ops run inside the vjps (37 today)


def test_profiler_restores_the_primitives():
    from tinygrad_cnn.function import Function
    from tinygrad_cnn.ops.conv import Conv
    apply_before, vjp_before = Function.__dict__["apply"], Conv.__dict__["vjp"]
    with profiler.profile():
        pass
    assert Function.__dict__["apply"] is apply_before and Conv.__dict__["vjp"] is vjp_before
    assert "total" in profiler.Profile().table()
