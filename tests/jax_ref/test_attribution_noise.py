"""SmoothGrad's kept noise: bit for bit the noise drawn inside the compiled function, in float32 and float64;
kept per (seed, shape, dtype, PRNG settings), bounded, least recently used evicted first."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ref
from jax_ref import attribution as A
from jax_ref.attribution import _net, _noise
from jax_ref.attribution.gradients import add_noise, reduce_samples
from tinygrad_cnn import nn


@pytest.fixture(autouse=True)
def _fresh_noise():
    _noise.clear()
    yield
    _noise.clear()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kept_uniform_makes_the_normal_draw(dtype):
    shape = (7, 2, 5, 3)
    for seed in (0, 12345, 2**32 - 1):
        u = _noise.uniform_for_normal(seed, shape, dtype)
        eps = jax.jit(_noise.to_normal)(u)
        want = jax.random.normal(jax.random.PRNGKey(seed), shape, dtype)
        assert eps.dtype == want.dtype
        np.testing.assert_array_equal(eps, want)
    other = jax.jit(_noise.to_normal)(_noise.uniform_for_normal(1, shape, dtype))
    assert not np.array_equal(other, want)  # negative control: another seed is another draw


def test_smoothgrad_equals_noise_drawn_inside_the_jit():
    """In float32, where a changed rounding of the noisy input would show first, and with the probability
    score, whose gradient moves with every ulp of it (a ReLU net's logit gradient could hide one): the result
    equals, bit for bit, one jit drawing ``jax.random.normal`` inside the trace."""
    nn.set_random_seed(3)
    dtype = "float32"
    model = nn.Sequential([nn.Input((6, 6, 1)), nn.Conv2D(3, 3, activation="tanh", dtype=dtype), nn.Flatten(),
                           nn.Dense(4, dtype=dtype)])
    jm = jax_ref.from_engine(model)
    x = np.random.default_rng(0).random((2, 6, 6, 1)).astype(dtype)
    n, seed, level = 9, 11, 0.2
    net, params = _net.as_net(jm)
    score = _net.score_fn(net, "probability")

    @jax.jit
    def inline(params, xb, t):
        eps = jax.random.normal(jax.random.PRNGKey(seed), (n,) + xb.shape, xb.dtype)
        noisy = add_noise(xb, eps, jnp.asarray(level, xb.dtype))
        g = jax.grad(lambda z: score(params, z, jnp.tile(t, n)).sum())(noisy)
        return reduce_samples(g.reshape((n,) + xb.shape), "vargrad")

    want = np.asarray(inline(params, x, jnp.array([1, 2], jnp.int32)))
    for _ in range(2):  # drawn, then kept
        got = A.smoothgrad(jm, x, target=[1, 2], n=n, noise_level=level, kind="vargrad", seed=seed,
                           score="probability")
        np.testing.assert_array_equal(got, want)
    assert len(_noise._kept) == 1


def test_kept_per_request_bounded_and_least_recently_used_first(monkeypatch):
    shape = (4, 3)
    first = _noise.uniform_for_normal(0, shape, "float32")
    assert _noise.uniform_for_normal(0, shape, "float32") is first  # kept
    assert _noise.uniform_for_normal(0, shape, "float64") is not first  # dtype is part of the key
    assert _noise.uniform_for_normal(0, (4, 4), "float32") is not first  # and so is the shape
    monkeypatch.setattr(_noise, "MAX_ENTRIES", 3)
    _noise.uniform_for_normal(0, shape, "float32")  # now the most recently used
    for seed in (1, 2):
        _noise.uniform_for_normal(seed, shape, "float32")
    keys = list(_noise._kept)
    assert len(keys) == 3 and keys[0][:2] == (0, shape) and keys[0][2] == np.float32  # LRU order, others gone
    monkeypatch.setattr(_noise, "MAX_BYTES", 100)  # 12 float32 = 48 bytes fit, two of them do not
    big = _noise.uniform_for_normal(9, (30,), "float32")  # 120 bytes: returned, not kept
    assert all(k[0] != 9 for k in _noise._kept) and big.shape == (30,)
    _noise.uniform_for_normal(5, shape, "float32")
    assert sum(a.nbytes for a in _noise._kept.values()) <= 100


def test_prng_settings_are_part_of_the_key():
    shape = (3, 4)
    threefry = _noise.uniform_for_normal(0, shape, "float32")
    impl = jax.config.jax_default_prng_impl
    try:
        jax.config.update("jax_default_prng_impl", "rbg")
        rbg = _noise.uniform_for_normal(0, shape, "float32")
        np.testing.assert_array_equal(jax.jit(_noise.to_normal)(rbg),
                                      jax.random.normal(jax.random.PRNGKey(0), shape, "float32"))
    finally:
        jax.config.update("jax_default_prng_impl", impl)
    assert not np.array_equal(rbg, threefry)
    assert _noise.uniform_for_normal(0, shape, "float32") is threefry
