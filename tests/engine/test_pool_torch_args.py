"""PyTorch's pooling and transposed-conv arguments: explicit pool padding, ceil_mode, pool dilation,
count_include_pad, return_indices / max_unpool, adaptive pools, conv_transpose groups and explicit padding.

Each is checked against the twin (``jax_ref.ops``, lax.reduce_window / conv_general_dilated) in float64, forward
and vjp with random cotangents over hypothesis-drawn geometries, and, where the semantics are PyTorch's, against
torch itself (CPU, NCHW, the reference built here from ``torch.nn.functional``).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from agreement import Tally, rel_err
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jax_ref
import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn.ops.conv_args import ceil_extra, pool_args

jax.config.update("jax_enable_x64", True)
torch = pytest.importorskip("torch")
TF = torch.nn.functional
J = jax_ref.ops

STATS = Tally("torch arguments (vs torch)")


@st.composite
def pool_geometries(draw):
    """A pooling call with PyTorch's arguments that leaves every window a real cell."""
    d = draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, {1: 9, 2: 7, 3: 4}[d])) for _ in range(d))
    pool = tuple(draw(st.integers(1, 3)) for _ in range(d))
    kw = dict(strides=tuple(draw(st.integers(1, 3)) for _ in range(d)),
              dilation_rate=tuple(draw(st.integers(1, 2)) for _ in range(d)),
              ceil_mode=draw(st.booleans()),
              padding=draw(st.one_of(st.sampled_from(["valid", "same"]),
                                     st.tuples(*(st.tuples(st.integers(0, 1), st.integers(0, 1)) for _ in range(d))))))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    shape = (2,) + sizes + (3,) if fmt == "channels_last" else (2, 3) + sizes
    try:
        pool_args("pool", shape, pool, kw["strides"], kw["padding"], fmt, kw["dilation_rate"], kw["ceil_mode"])
    except ValueError:
        assume(False)
    return shape, pool, dict(kw, data_format=fmt), draw(st.integers(0, 3))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(pool_geometries(), st.sampled_from(["max", "avg", "avg_include", "lp2"]))
def test_pools_with_torch_arguments_match_jax(check_vjp, geometry, kind):
    shape, pool, kw, seed = geometry
    x = np.random.default_rng(seed).standard_normal(shape)
    name, extra = {"max": ("max_pool", {}), "avg": ("avg_pool", {}), "lp2": ("lp_pool", {}),
                   "avg_include": ("avg_pool", {"count_include_pad": True})}[kind]
    check_vjp(lambda t: getattr(F, name)(t, pool, **kw, **extra),
              lambda a: getattr(J, name)(a, pool, **kw, **extra), x, tol=1e-10)


@pytest.mark.parametrize("name,kw", [
    ("lp_pool", dict(p=3, padding=1, ceil_mode=True, strides=2, dilation_rate=(1, 2))),
    ("avg_pool", dict(padding=((0, 1), 1), ceil_mode=True, strides=2, count_include_pad=True)),
    ("max_pool", dict(padding=1, ceil_mode=True, strides=2, dilation_rate=2))])
def test_second_order_matches_jax(name, kw):
    """d/dx <d/dx <f(x)^2, c>, r>: the pools' vjps are built from differentiable primitives."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 6, 2))
    y_shape = getattr(F, name)(x, 3, **kw).shape
    c, r = rng.standard_normal(y_shape), rng.standard_normal(x.shape)

    def ref(a):
        return (jax.grad(lambda b: (getattr(J, name)(b, 3, **kw) ** 2 * c).sum())(a) * r).sum()

    t = tg.Tensor(x, requires_grad=True)
    (g,) = tg.grad((getattr(F, name)(t, 3, **kw) ** 2 * tg.Tensor(c)).sum(), [t], create_graph=True)
    (h,) = tg.grad((g * tg.Tensor(r)).sum(), [t])
    STATS.record(rel_err(h.data, jax.grad(ref)(x)))


def _nchw(x):
    return torch.tensor(x, requires_grad=True)


def _torch_and_engine(engine_fn, torch_fn, x, seed=0):
    """Forward and the vjp of a random cotangent on both sides: ``(engine y, torch y, engine dx, torch dx)``."""
    tx = tg.Tensor(x, requires_grad=True)
    y = engine_fn(tx)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(g)
    xt = _nchw(x)
    yt = torch_fn(xt)
    yt.backward(torch.tensor(g))
    return y.data, yt.detach().numpy(), tx.grad, xt.grad.numpy()


@pytest.mark.parametrize("kind", ["max", "avg_include", "avg_exclude"])
@pytest.mark.parametrize("size,pool,stride,pad,dil,ceil", [
    ((7, 6), 3, 2, 1, 1, True), ((5, 5), 2, 2, 1, 1, True), ((8, 7), (3, 2), (2, 3), (1, 0), 1, False),
    ((9, 8), 3, 1, 1, 2, False), ((6, 9), 2, 3, 1, (2, 3), True), ((4, 4), 4, 1, 2, 1, True)])
def test_max_and_avg_pool_match_torch(kind, size, pool, stride, pad, dil, ceil):
    if kind != "max" and dil != 1:
        pytest.skip("torch's avg_pool has no dilation")
    x = np.random.default_rng(0).standard_normal((2, 3) + size)
    kw = dict(strides=stride, padding=pad, ceil_mode=ceil, data_format="channels_first")
    if kind == "max":
        ours = lambda t: F.max_pool(t, pool, dilation_rate=dil, **kw)  # noqa: E731
        theirs = lambda t: TF.max_pool2d(t, pool, stride, pad, dil, ceil_mode=ceil)  # noqa: E731
    else:
        include = kind == "avg_include"
        ours = lambda t: F.avg_pool(t, pool, count_include_pad=include, **kw)  # noqa: E731
        theirs = lambda t: TF.avg_pool2d(t, pool, stride, pad, ceil, include)  # noqa: E731
    y, yt, dx, dxt = _torch_and_engine(ours, theirs, x)
    assert y.shape == yt.shape
    STATS.record(rel_err(y, yt), rel_err(dx, dxt))


def test_ceil_mode_drops_a_last_window_that_starts_in_the_right_padding():
    """W=5, pool 2, stride 2, padding 1: ceil((5 + 2 - 2) / 2) + 1 = 4 windows, but the 4th would start at
    padded cell 6 >= 5 + 1, inside the right padding, so PyTorch keeps 3 (negative control: the rule bites)."""
    geo = pool_args("max_pool", (1, 5, 1), 2, 2, 1, "channels_last", ceil_mode=True)[1]
    assert geo.output_size((5,)) == (3,) and ceil_extra(geo.with_pads(((1, 1),)), (5,)) == (0,)
    naive = -(-(5 + 2 - 2) // 2) + 1
    assert naive == 4
    x = np.arange(5.0).reshape(1, 1, 5)
    assert F.max_pool(x, 2, padding=1, ceil_mode=True, data_format="channels_first").shape == \
        TF.max_pool1d(torch.tensor(x), 2, 2, 1, ceil_mode=True).shape == (1, 1, 3)


@pytest.mark.parametrize("pool,stride,pad,size", [(2, 2, 0, (6, 8)), (3, 2, 1, (7, 6)),
                                                  ((2, 3), (2, 1), (1, 1), (6, 5))])
def test_return_indices_and_max_unpool_match_torch(pool, stride, pad, size):
    x = np.random.default_rng(1).standard_normal((2, 3) + size)
    y, idx = F.max_pool(x, pool, strides=stride, padding=pad, data_format="channels_first", return_indices=True)
    yt, it = TF.max_pool2d(torch.tensor(x), pool, stride, pad, return_indices=True)
    assert idx.dtype == np.int64 and np.array_equal(idx.data, it.numpy())
    jy, jidx = J.max_pool(x, pool, strides=stride, padding=pad, data_format="channels_first", return_indices=True)
    assert np.array_equal(np.asarray(jidx), it.numpy())
    ours = lambda t: F.max_unpool(t, idx, pool, stride, pad, "channels_first", output_size=size)  # noqa: E731
    theirs = lambda t: TF.max_unpool2d(t, it, pool, stride, pad, output_size=size)  # noqa: E731
    u, ut, du, dut = _torch_and_engine(ours, theirs, y.data)
    # torch's backward hands g[index] to EVERY input naming a cell; its forward (and ours) keeps one of them, so
    # the two agree where an index is unique in its (batch, channel) slab; ours gives a repeat's g to one only
    flat = it.numpy().reshape(6, -1)
    unique = np.stack([np.isin(row, np.flatnonzero(np.bincount(row) == 1)) for row in flat]).reshape(it.shape)
    STATS.record(rel_err(u, ut), rel_err(du[unique], dut[unique]))
    keys = (np.arange(6)[:, None] * np.prod(size) + flat).reshape(it.shape)[~unique]
    if keys.size:  # per repeated cell, ours gives g once in all; torch gives each repeat g
        count = np.bincount(keys)
        assert np.allclose(np.bincount(keys, du[~unique]), np.bincount(keys, dut[~unique]) / np.maximum(count, 1))


def test_max_unpool_matches_jax_and_is_its_own_adjoint(check_vjp):
    """Overlapping windows (3, stride 2) repeat indices: the last writer is kept, on both sides; the unpool and
    its gather are adjoint, so second order works."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 7, 7, 3))
    y, idx = F.max_pool(x, 3, strides=2, return_indices=True)
    assert len(np.unique(idx.data)) < idx.data.size  # repeats: the case the keep-last rule decides
    check_vjp(lambda t: F.max_unpool(t, idx, 3, 2, output_size=(7, 7)),
              lambda a: J.max_unpool(a, idx.data, 3, 2, output_size=(7, 7)), y.data, tol=1e-12)
    t = tg.Tensor(y.data, requires_grad=True)
    c = rng.standard_normal((2, 7, 7, 3))
    (gt,) = tg.grad((F.max_unpool(t, idx, 3, 2, output_size=(7, 7)) * tg.Tensor(c)).sum(), [t], create_graph=True)
    (gc,) = tg.grad((gt * tg.Tensor(y.data)).sum(), [t])
    assert np.array_equal(gc.data, np.zeros_like(y.data))  # linear: the second derivative is 0
    v = rng.standard_normal(y.shape)
    lhs = float((F.max_unpool(v, idx, 3, 2, output_size=(7, 7)).data * c).sum())
    assert np.isclose(lhs, float((v * gt.data).sum()))


def test_max_pool_indices_point_at_the_first_maximum_of_a_tie():
    x = np.zeros((1, 1, 4, 4))
    y, idx = F.max_pool(x, 2, data_format="channels_first", return_indices=True)
    _, it = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    assert idx.data.ravel().tolist() == it.numpy().ravel().tolist() == [0, 2, 8, 10]


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("size,out", [((9,), (4,)), ((7, 6), (3, 4)), ((5, 4), (5, 4)), ((7, 5), (1, 1)),
                                      ((4, 5, 6), (3, 2, 4)), ((5, 3), (7, 5))])
def test_adaptive_pools_match_torch_and_jax(check_vjp, kind, size, out):
    x = np.random.default_rng(3).standard_normal((2, 3) + size)
    ours = getattr(F, f"adaptive_{kind}_pool")
    theirs = getattr(TF, f"adaptive_{kind}_pool{len(size)}d")
    y, yt, dx, dxt = _torch_and_engine(lambda t: ours(t, out, data_format="channels_first"), lambda t: theirs(t, out),
                                       x)
    STATS.record(rel_err(y, yt), rel_err(dx, dxt))
    xl = np.moveaxis(x, 1, -1)
    check_vjp(lambda t: ours(t, out), lambda a: getattr(J, f"adaptive_{kind}_pool")(a, out), xl, tol=1e-12)


def test_adaptive_max_pool_sends_a_tie_to_the_first_maximum():
    x = np.zeros((1, 5, 4, 1))
    y = tg.Tensor(x, requires_grad=True)
    F.adaptive_max_pool(y, (2, 3)).sum().backward()
    xt = torch.tensor(np.moveaxis(x, -1, 1), requires_grad=True)
    TF.adaptive_max_pool2d(xt, (2, 3)).sum().backward()
    assert np.array_equal(y.grad[0, :, :, 0], xt.grad.numpy()[0, 0])


@pytest.mark.parametrize("groups,stride,pad,out_pad,dil", [(2, 2, 1, 1, 1), (3, 1, 2, 0, 2), (1, 3, 0, 2, 1),
                                                           (2, 2, (1, 0), 0, 1), (6, 2, 1, 1, 1)])
def test_conv_transpose_with_groups_and_padding_matches_torch_and_jax(check_vjp, groups, stride, pad, out_pad, dil):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 4))
    w = rng.standard_normal((6, 2, 3, 2))  # torch's layout (in_channels, filters // groups, kh, kw)
    kernel = np.transpose(w, (2, 3, 1, 0))  # ours: kernel_size + (filters // groups, in_channels)
    kw = dict(strides=stride, padding=pad, output_padding=out_pad, dilation_rate=dil, groups=groups)
    if isinstance(pad, int):
        wt = torch.tensor(w, requires_grad=True)
        y, yt, dx, dxt = _torch_and_engine(
            lambda t: F.conv_transpose(t, kernel, data_format="channels_first", **kw),
            lambda t: TF.conv_transpose2d(t, wt, stride=stride, padding=pad, output_padding=out_pad, groups=groups,
                                          dilation=dil), x)
        STATS.record(rel_err(y, yt), rel_err(dx, dxt))
    check_vjp(lambda t, k: F.conv_transpose(t, k, **kw), lambda a, k: J.conv_transpose(a, k, **kw),
              np.moveaxis(x, 1, -1), kernel, tol=1e-10)


@pytest.mark.parametrize("call,match", [
    (lambda: F.max_pool(np.zeros((1, 4, 1)), 2, padding=3), r"max_pool: padding=3 leaves a window with no input"),
    (lambda: F.max_unpool(np.zeros((1, 2, 1)), np.array([[[0], [9]]]), 2), r"max_unpool: indices must lie in \[0, 4\)"),
    (lambda: F.max_unpool(np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), 2), r"max_unpool: indices must be integers"),
    (lambda: F.conv_transpose(np.zeros((1, 4, 3)), np.zeros((2, 1, 3)), groups=2),
     r"conv_transpose: groups=2 must divide the input's 3 channels"),
    (lambda: F.adaptive_avg_pool(np.zeros((1, 4, 4, 1)), (2, 0)), r"adaptive_avg_pool: output_size must hold"),
    (lambda: F.avg_pool(np.zeros((1, 4, 1)), 2, ceil_mode="yes"), r"avg_pool: ceil_mode must be"),
])
def test_bad_torch_arguments_name_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_report():
    STATS.report()
