"""Max, average and Lp pooling against lax.reduce_window in float64; ties, zeros, global pools, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from agreement import Tally, rel_err
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax import lax

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

jax.config.update("jax_enable_x64", True)

STATS = Tally("pool (vs JAX)")
record = STATS.record


def jax_pool(kind, x, pool, strides, pads, fmt, p=2):
    """The Keras definitions on lax.reduce_window: padded cells never win / are not counted."""
    if fmt == "channels_first":
        x = jnp.moveaxis(x, 1, -1)
    dims, steps, padding = (1,) + pool + (1,), (1,) + strides + (1,), ((0, 0),) + pads + ((0, 0),)
    if kind == "max":
        y = lax.reduce_window(x, -jnp.inf, lax.max, dims, steps, padding)
    elif kind == "avg":
        count = lax.reduce_window(jnp.ones((1,) + x.shape[1:-1] + (1,), x.dtype), 0.0, lax.add, dims, steps, padding)
        y = lax.reduce_window(x, 0.0, lax.add, dims, steps, padding) / count
    else:
        y = lax.reduce_window(jnp.abs(x) ** p, 0.0, lax.add, dims, steps, padding) ** (1.0 / p)
    return jnp.moveaxis(y, -1, 1) if fmt == "channels_first" else y


@st.composite
def pool_configs(draw):
    d = draw(st.integers(1, 3))
    hi = {1: 12, 2: 9, 3: 5}[d]
    sizes = tuple(draw(st.integers(1, hi)) for _ in range(d))
    pool = tuple(draw(st.integers(1, n + 1)) for n in sizes)
    strides = draw(st.one_of(st.none(), st.tuples(*(st.integers(1, 3) for _ in range(d)))))
    padding = draw(st.sampled_from(["valid", "same"]))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    steps = pool if strides is None else strides
    try:
        pads = tuple(tg.conv_padding(n, k, s, padding) for n, k, s in zip(sizes, pool, steps, strict=True))
        for n, k, s in zip(sizes, pool, steps, strict=True):
            tg.conv_output_size(n, k, s, padding)
    except ValueError:
        assume(False)
    return dict(sizes=sizes, pool=pool, strides=strides, steps=steps, padding=padding, pads=pads, fmt=fmt,
                seed=draw(st.integers(0, 2**16)))


@settings(max_examples=25, deadline=None)
@given(pool_configs(), st.sampled_from(["max", "avg", "lp2", "lp3"]))
def test_pools_match_jax(cfg, kind):
    rng = np.random.default_rng(cfg["seed"])
    c = 3
    shape = (2,) + cfg["sizes"] + (c,) if cfg["fmt"] == "channels_last" else (2, c) + cfg["sizes"]
    x = rng.permutation(np.arange(np.prod(shape)) - np.prod(shape) / 2).reshape(shape) / 7.0  # distinct: no ties
    p = {"lp2": 2, "lp3": 3}.get(kind, 2)
    args = dict(strides=cfg["strides"], padding=cfg["padding"], data_format=cfg["fmt"])
    tx = tg.Tensor(x, requires_grad=True)
    if kind == "max":
        y = F.max_pool(tx, cfg["pool"], **args)
    elif kind == "avg":
        y = F.avg_pool(tx, cfg["pool"], **args)
    else:
        y = F.lp_pool(tx, cfg["pool"], p=p, **args)
    ct = rng.standard_normal(y.shape)

    def forward_and_vjp(x, ct):
        y_ref, vjp = jax.vjp(lambda x: jax_pool(kind[:3], x, cfg["pool"], cfg["steps"], cfg["pads"], cfg["fmt"], p), x)
        return y_ref, vjp(ct)[0]

    y_ref, g_ref = jax.jit(forward_and_vjp)(x, ct)
    y.backward(ct)
    record(rel_err(y.data, y_ref), rel_err(tx.grad, g_ref))


def test_max_pool_ties_match_jax():
    """A window of equal values sends its whole gradient to its first cell, exactly as jax.grad does."""
    x = np.array([[0.0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0], [2, 2, 2, 2]]).reshape(1, 4, 4, 1)
    ct = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    for pool, strides in [((2, 2), None), ((2, 2), (1, 1)), ((3, 3), (1, 1)), ((4, 4), None)]:
        steps = pool if strides is None else strides
        tx = tg.Tensor(x, requires_grad=True)
        y = F.max_pool(tx, pool, strides)
        c = ct[:, :y.shape[1], :y.shape[2]]
        y.backward(c)
        def loss(x, pool=pool, steps=steps, c=c):
            return (jax_pool("max", x, pool, steps, ((0, 0), (0, 0)), "channels_last") * c).sum()
        g_ref = jax.grad(loss)(x)
        np.testing.assert_array_equal(tx.grad, g_ref)
    ones = tg.Tensor(np.ones((1, 2, 2, 1)), requires_grad=True)
    F.max_pool(ones, 2).sum().backward()
    assert ones.grad[0, :, :, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]  # first in row-major order, no even split


def test_max_pool_kink_state_names_the_winner():
    from tinygrad_cnn.conv_arithmetic import PoolGeometry
    from tinygrad_cnn.ops.pool import MaxPool
    x = np.array([1.0, 3.0, 2.0, 2.0]).reshape(1, 4, 1)
    state = MaxPool.kink_state(x, geo=PoolGeometry((2,), (2,), ((0, 0),)))
    assert state.ravel().tolist() == [1, 0]


def test_same_max_pool_never_picks_padding():
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # all negative: a zero pad would win
    y = F.max_pool(x, 2, padding="same")
    assert y.data[0, :, :, 0].tolist() == [[-1.0, -3.0], [-7.0, -9.0]]
    np.testing.assert_array_equal(y.data, jax_pool("max", x, (2, 2), (2, 2), ((0, 1), (0, 1)), "channels_last"))


def test_lp_pool_all_zero_window_has_zero_gradient():
    x = np.zeros((1, 4, 4, 2))
    x[0, 2:, 2:, 1] = [[1.0, -2.0], [2.0, 4.0]]
    tx = tg.Tensor(x, requires_grad=True)
    y = F.lp_pool(tx, 2)
    y.backward(np.ones(y.shape) * 3.0)
    assert np.isfinite(tx.grad).all()
    assert (tx.grad[0, :2, :2] == 0).all() and (tx.grad[..., 0] == 0).all()
    np.testing.assert_allclose(tx.grad[0, 2:, 2:, 1], 3.0 * np.array([[1.0, -2.0], [2.0, 4.0]]) / 5.0)
    for p in (2, 3):  # second order at zero: finite too
        tx = tg.Tensor(np.zeros((1, 2, 2, 1)), requires_grad=True)
        (g,) = tg.grad(F.lp_pool(tx, 2, p=p).sum(), [tx], create_graph=True)
        (h,) = tg.grad((g * g).sum() + g.sum(), [tx])
        assert np.isfinite(g.data).all() and np.isfinite(h.data).all()


def test_avg_pool_same_divides_by_covered_cells():
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    y = F.avg_pool(x, 2, padding="same").data[0, :, :, 0]
    assert y.tolist() == [[3.0, 4.5], [7.5, 9.0]]


def test_second_order_through_max_and_avg_pool():
    rng = np.random.default_rng(4)
    x = rng.permutation(64).reshape(1, 8, 8, 1) / 10.0 - 3.0
    r = rng.standard_normal(x.shape)

    def ref(x):
        def loss(x):
            a = jax_pool("max", jnp.tanh(x), (3, 3), (2, 2), ((0, 1), (0, 1)), "channels_last")
            return (a ** 2).sum() + (jax_pool("avg", x ** 2, (2, 2), (1, 1), ((0, 0), (0, 0)), "channels_last")).sum()
        return (jax.grad(loss)(x) * r).sum()

    tx = tg.Tensor(x, requires_grad=True)
    loss = (F.max_pool(tx.tanh(), 3, 2, "same") ** 2).sum() + F.avg_pool(tx * tx, 2, 1).sum()
    (g,) = tg.grad(loss, [tx], create_graph=True)
    (h,) = tg.grad((g * tg.Tensor(r)).sum(), [tx])
    record(rel_err(h.data, jax.grad(ref)(x)))


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_global_pools(fmt):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 5, 3))
    axes = (1, 2) if fmt == "channels_last" else (2, 3)
    for fn, ref in [(F.global_max_pool, jnp.max), (F.global_avg_pool, jnp.mean)]:
        for keep in (False, True):
            tx = tg.Tensor(x, requires_grad=True)
            y = fn(tx, data_format=fmt, keepdims=keep)
            y_ref, vjp = jax.vjp(lambda x, ref=ref, keep=keep: ref(x, axis=axes, keepdims=keep), x)
            ct = rng.standard_normal(y.shape)
            y.backward(ct)
            record(rel_err(y.data, y_ref), rel_err(tx.grad, vjp(ct)[0]))


def test_float32_stays_float32():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 6, 6, 3)).astype(np.float32), requires_grad=True)
    for y in (F.max_pool(x, 2), F.avg_pool(x, 3, 2, "same"), F.lp_pool(x, 2)):
        x.zero_grad()
        y.sum().backward()
        assert y.dtype == x.grad.dtype == np.float32


X = np.zeros((1, 8, 8, 3))


@pytest.mark.parametrize("call, message", [
    (lambda: F.max_pool(X, 0), r"max_pool: pool_size must be an integer >= 1; got 0"),
    (lambda: F.max_pool(X, (2, -1)), r"max_pool: pool_size must hold integers >= 1"),
    (lambda: F.avg_pool(X, 2, strides=0), r"avg_pool: strides must be an integer >= 1; got 0"),
    (lambda: F.max_pool(X, 9), r"max_pool: the kernel spans 9 cells .* padded input has only 8"),
    (lambda: F.max_pool(X, 2, padding="causal"), r"max_pool: padding='causal' is not one of 'valid', 'same'"),
    (lambda: F.avg_pool(X, 2, padding="vaild"), r"did you mean 'valid'"),
    (lambda: F.max_pool(X, 2, data_format="NHWC"), r"max_pool: data_format='NHWC' is not one of"),
    (lambda: F.max_pool(np.zeros((2, 3)), 2), r"max_pool: x must have rank 3, 4 or 5"),
    (lambda: F.lp_pool(X, 2, p=0.5), r"lp_pool: p must be in \[1.0, inf\)"),
    (lambda: F.global_avg_pool(np.zeros((2, 3))), r"global_avg_pool: x must have rank 3, 4 or 5"),
])
def test_bad_input_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_zz_report():
    """Prints how many configurations were compared with JAX and the worst relative error (run with -s)."""
    STATS.report()
