"""Regressions found by test cases ported from another framework's op suite: negative transpose axes, a mean over
zero elements, and an axis on a rank-0 Tensor. Each compares with JAX (or NumPy) over the whole output."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

jax.config.update("jax_enable_x64", True)


@pytest.mark.parametrize("perm", [p for p in itertools.permutations(range(3))])
@pytest.mark.parametrize("negate", [(0, 0, 1), (1, 0, 0), (1, 1, 1), (0, 1, 0)])
def test_transpose_with_negative_axes_has_jaxs_gradient(perm, negate):
    axes = tuple(a - 3 if n else a for a, n in zip(perm, negate, strict=True))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4))
    t = tg.Tensor(x, requires_grad=True)
    y = t.transpose(*axes)
    ref, pullback = jax.vjp(lambda a: jnp.transpose(a, axes), x)
    v = rng.standard_normal(ref.shape)
    y.backward(v)
    np.testing.assert_array_equal(y.data, ref)
    np.testing.assert_array_equal(t.grad, pullback(v)[0])  # a permutation is exact: no tolerance


def test_transpose_with_negative_axes_to_second_order():
    x = tg.Tensor(np.random.default_rng(1).standard_normal((2, 3, 4)), requires_grad=True)
    (g,) = tg.grad((x.transpose(-1, 0, 1) ** 3).sum(), [x], create_graph=True)
    (gg,) = tg.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.data, 6 * x.data)


@pytest.mark.parametrize("axes", [(0, 0, 1), (0, 1), (0, 1, 3), (-4, 0, 1), (0, 1, 2.0)])
def test_transpose_rejects_what_is_not_a_permutation(axes):
    with pytest.raises(ValueError, match=r"transpose: axes .* are not a permutation of range\(3\)"):
        tg.Tensor(np.zeros((2, 3, 4))).transpose(*axes)


@pytest.mark.parametrize("shape, axis", [((1, 0, 3), 1), ((0,), None), ((2, 0), (0, 1)), ((2, 0), -1)])
def test_mean_over_no_elements_is_nan_with_numpys_warning(shape, axis):
    x = tg.Tensor(np.zeros(shape), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="mean of an empty slice"):
        y = x.mean(axis=axis)
    np.testing.assert_array_equal(y.data, jnp.mean(jnp.zeros(shape), axis=axis))  # NaN where JAX has NaN
    (g,) = tg.grad(y, [x], grad_output=np.ones(y.shape))
    assert g.shape == shape


def test_global_avg_pool_on_an_empty_spatial_axis_is_nan():
    with pytest.warns(RuntimeWarning, match="mean of an empty slice"):
        y = F.global_avg_pool(tg.Tensor(np.zeros((2, 0, 5, 3))))
    assert y.shape == (2, 3) and np.isnan(y.data).all()


def test_mean_over_a_size_zero_axis_of_a_non_empty_result_keeps_other_axes():
    with pytest.warns(RuntimeWarning):
        y = tg.Tensor(np.ones((3, 0))).mean(axis=1, keepdims=True)
    assert y.shape == (3, 1) and np.isnan(y.data).all()


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [0, -1, (0,)])
def test_an_axis_on_a_rank0_tensor_is_refused_as_jax_refuses_it(name, axis):
    with pytest.raises(ValueError, match=rf"{name}: axis .* out of range for an array of rank 0"):
        getattr(tg.Tensor(2.0, requires_grad=True), name)(axis=axis)
    with pytest.raises((ValueError, IndexError)):
        getattr(jnp, name)(jnp.asarray(2.0), axis=axis)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [None, ()])
def test_rank0_reductions_over_no_axis_are_the_identity(name, axis):
    x = tg.Tensor(np.float64(2.5), requires_grad=True)
    y = getattr(x, name)(axis=axis)
    y.backward()
    assert y.shape == () and y.item() == 2.5 and x.grad == 1.0
