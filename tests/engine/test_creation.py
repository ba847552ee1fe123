"""Creation helpers: values as NumPy's / jax.numpy's, float32 by default, requires_grad, seeded draws."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.ops.random import fixed_seed

SHAPES = st.lists(st.integers(0, 3), max_size=3).map(tuple)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(shape=SHAPES, value=st.floats(-3, 3), dtype=st.sampled_from([None, np.float64, np.int32]))
def test_constants_match_numpy(shape, value, dtype):
    kw = {} if dtype is None else {"dtype": dtype}
    want = np.float32 if dtype is None else dtype
    for ours, ref in [(tg.zeros(shape, **kw), np.zeros(shape, want)), (tg.ones(*shape, **kw), np.ones(shape, want)),
                      (tg.full(shape, value, **kw), np.full(shape, value, want))]:
        assert ours.dtype == want and ours.shape == shape and not ours.requires_grad
        np.testing.assert_array_equal(ours.data, ref)
    x = np.arange(float(np.prod(shape))).reshape(shape)
    assert tg.zeros_like(x).dtype == np.float64 and tg.ones_like(tg.Tensor(x), dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(tg.ones_like(x).data, np.ones_like(x))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(start=st.integers(-5, 5), length=st.integers(0, 7), step=st.sampled_from([1, 2, -1, 0.5, -0.25]),
       num=st.integers(0, 7), endpoint=st.booleans(), k=st.integers(-3, 3), m=st.sampled_from([None, 0, 2, 5]))
def test_ranges_and_eye_match_jax_in_float64(start, length, step, num, endpoint, k, m):
    stop = start + length * step
    a = tg.arange(start, stop, step, dtype=np.float64)
    np.testing.assert_allclose(a.data, jnp.arange(start, stop, step, dtype=jnp.float64), rtol=1e-15, atol=1e-15)
    lin = tg.linspace(start, stop, num, endpoint, dtype=np.float64)
    np.testing.assert_allclose(lin.data, jnp.linspace(start, stop, num, endpoint=endpoint), rtol=1e-15, atol=1e-14)
    np.testing.assert_array_equal(tg.eye(4, m, k).data, jnp.eye(4, m, k, dtype=jnp.float32))
    assert tg.arange(5).dtype == np.float32 and tg.arange(5).data.tolist() == [0, 1, 2, 3, 4]


def test_requires_grad_leaves_and_integer_dtypes():
    w = tg.randn(3, 2, seed=0, requires_grad=True)
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad, 2 * w.data)
    assert tg.arange(4, dtype=np.int64).dtype == np.int64
    with pytest.raises(TypeError, match=r"zeros: requires_grad=True needs a floating dtype; got dtype int32"):
        tg.zeros(2, dtype=np.int32, requires_grad=True)
    with pytest.raises(TypeError, match=r"ones: requires_grad must be True or False; got 'yes'"):
        tg.ones(2, requires_grad="yes")


@pytest.mark.parametrize("draw", [tg.rand, tg.randn])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_same_bits_and_different_seeds_differ(draw, dtype):
    a, b = draw(4, 5, seed=7, dtype=dtype), draw((4, 5), seed=7, dtype=dtype)
    assert a.dtype == dtype and a.data.tobytes() == b.data.tobytes()
    assert not np.array_equal(a.data, draw(4, 5, seed=8, dtype=dtype).data)  # negative control
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert draw(6, seed=g1, dtype=dtype).data.tobytes() == draw(6, seed=g2, dtype=dtype).data.tobytes()
    assert not np.array_equal(draw(6, seed=g1).data, draw(6, seed=np.random.default_rng(3)).data)  # g1 advanced
    with fixed_seed(1):
        c = draw(3, dtype=dtype)
    with fixed_seed(1):
        assert c.data.tobytes() == draw(3, dtype=dtype).data.tobytes()


def test_draws_have_their_distribution():
    u, z = tg.rand(200_000, seed=0).data, tg.randn(200_000, seed=0, dtype=np.float64).data
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.005
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01


BAD = [
    (lambda: tg.zeros(2, -1), ValueError, r"zeros: shape \(2, -1\) must hold non-negative ints"),
    (lambda: tg.arange(0, 3, 0), ValueError, r"arange: step=0 must be non-zero"),
    (lambda: tg.linspace(0, 1, -2), ValueError, r"linspace: num must be an integer >= 0; got -2"),
    (lambda: tg.eye(2.5), TypeError, r"eye: N must be an integer >= 0; got 2.5"),
    (lambda: tg.rand(2, seed=-1), TypeError, r"rand: seed must be a non-negative int, a numpy Generator or None"),
    (lambda: tg.randn(2, dtype=np.int32), ValueError, r"randn: dtype='int32' is not one of 'float32', 'float64'"),
]


@pytest.mark.parametrize("index", range(len(BAD)))
def test_bad_arguments(index):
    call, error, message = BAD[index]
    with pytest.raises(error, match=message):
        call()
