"""prod, var/std, cumsum/cumprod, maximum/minimum, take_along_axis/gather, sort/topk, Tensor.logsumexp vs JAX in
float64 (forward, vjp with random cotangents over the whole output, second order); the tie and zero conventions;
the gradient-free argmax/argmin/any/all/one_hot; and the refusals. Hypothesis-drawn shapes and axes are in
``tests/reliability/test_fuzz_ops.py``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from vjp_pair import max_rel_error

import tinygrad_cnn as tg
from tinygrad_cnn import ops

R = np.random.default_rng(23)
A = R.standard_normal((3, 4, 5))
Z = np.where(R.random((3, 4, 5)) < 0.3, 0.0, A)  # about a third exact zeros, some rows with two or more
Z[0, 0, :2] = 0.0
IDX = R.integers(-5, 5, (3, 4, 7))  # repeats and negative indices along the last axis
TORCH_IDX = R.integers(0, 4, (2, 6, 3))  # gather along axis 1, index smaller than x on the other axes


def _moved_top_k(t, k, axis, largest):
    s = 1 if largest else -1
    return s * jnp.moveaxis(jax.lax.top_k(jnp.moveaxis(s * t, axis, -1), k)[0], -1, axis)


CASES = {
    "prod_all": (lambda x: x.prod(), jnp.prod, [A]),
    "prod_zeros_axis-1": (lambda x: x.prod(-1), lambda x: jnp.prod(x, -1), [Z]),
    "prod_zeros_tuple_keep": (lambda x: x.prod((0, -1), True), lambda x: jnp.prod(x, (0, -1), keepdims=True), [Z]),
    "prod_zeros_all": (lambda x: x.prod(), jnp.prod, [Z[0, 0]]),
    "prod_empty_axis": (lambda x: x.prod(1), lambda x: jnp.prod(x, 1), [np.zeros((2, 0, 3))]),
    "prod_rank0": (lambda x: x.prod(), jnp.prod, [np.array(1.7)]),
    "var": (lambda x: x.var(), jnp.var, [A]),
    "var_ddof1_axis": (lambda x: x.var((0, 2), ddof=1), lambda x: jnp.var(x, (0, 2), ddof=1), [A]),
    "var_keepdims": (lambda x: x.var(-2, keepdims=True), lambda x: jnp.var(x, -2, keepdims=True), [A]),
    "var_ddof_too_large": (lambda x: x.var(0, ddof=4.5), lambda x: jnp.var(x, 0, ddof=4.5), [A]),
    "var_ddof_equal_n": (lambda x: x.var(0, ddof=3), lambda x: jnp.var(x, 0, ddof=3), [A]),
    "std_ddof1": (lambda x: x.std(1, ddof=1), lambda x: jnp.std(x, 1, ddof=1), [A]),
    "std_zero_variance": (lambda x: x.std(1), lambda x: jnp.std(x, 1), [np.array([[1.0, 1.0], [0.0, 2.0]])]),
    "cumsum_axis1": (lambda x: x.cumsum(1), lambda x: jnp.cumsum(x, 1), [A]),
    "cumsum_none": (lambda x: x.cumsum(), jnp.cumsum, [A]),
    "cumprod_zeros_axis-1": (lambda x: x.cumprod(-1), lambda x: jnp.cumprod(x, -1), [Z]),
    "cumprod_zeros_axis0": (lambda x: x.cumprod(0), lambda x: jnp.cumprod(x, 0), [Z]),
    "cumprod_long": (lambda x: x.cumprod(0), lambda x: jnp.cumprod(x, 0), [1 + 0.1 * R.standard_normal(37)]),
    "cumprod_none": (lambda x: x.cumprod(), jnp.cumprod, [Z[:2]]),
    "maximum_broadcast": (lambda a, b: a.maximum(b), jnp.maximum, [A, A[0, :, :1]]),
    "minimum_broadcast": (tg.minimum, jnp.minimum, [A[1], A[:, :1]]),
    "maximum_ties": (tg.maximum, jnp.maximum, [np.array([1.0, 2.0, -1.0]), np.array([1.0, 0.0, -1.0])]),
    "minimum_ties_broadcast": (tg.minimum, jnp.minimum, [np.array([[1.0, 2.0], [0.5, 3.0]]), np.array([1.0, 3.0])]),
    "take_along_axis": (lambda x: tg.take_along_axis(x, IDX, -1), lambda x: jnp.take_along_axis(x, IDX, -1), [A]),
    "take_along_axis_broadcast": (lambda x: tg.take_along_axis(x, IDX[:1, :2, :1] % 4, 1),
                                  lambda x: jnp.take_along_axis(x, IDX[:1, :2, :1] % 4, 1), [A]),
    "take_along_axis_none": (lambda x: tg.take_along_axis(x, IDX.ravel() % 60, None),
                             lambda x: jnp.take_along_axis(x.ravel(), IDX.ravel() % 60, 0), [A]),
    "gather": (lambda x: x.gather(1, TORCH_IDX), lambda x: jnp.take_along_axis(x[:2, :, :3], TORCH_IDX, 1), [A]),
    "sort": (lambda x: x.sort(), jnp.sort, [A]),
    "sort_axis0_descending": (lambda x: x.sort(0, descending=True), lambda x: jnp.sort(x, 0, descending=True), [A]),
    "sort_none": (lambda x: tg.sort(x, None), lambda x: jnp.sort(x, None), [A]),
    "topk": (lambda x: x.topk(3)[0], lambda x: jax.lax.top_k(x, 3)[0], [A]),
    "topk_smallest_axis0": (lambda x: x.topk(2, 0, largest=False)[0], lambda x: _moved_top_k(x, 2, 0, False), [A]),
    "logsumexp_method": (lambda x: x.logsumexp(1, keepdims=True),
                         lambda x: jax.nn.logsumexp(x, 1, keepdims=True), [A * 30]),
    "where_method": (lambda x, y: x.where(A[0] > 0, y), lambda x, y: jnp.where(A[0] > 0, x, y), [A, A[1, 0]]),
    "where_module_numbers": (lambda y: tg.where(A[0] > 0, 1.5, y), lambda y: jnp.where(A[0] > 0, 1.5, y), [A[1]]),
    "where_method_scalar": (lambda x: x.where(A > 0, 2.5), lambda x: jnp.where(A > 0, x, 2.5), [A]),
    "non_contiguous": (lambda x, y: x.prod(0) * x.cumprod(1).sum(0) + y.var(0, ddof=1) + x.sort(1).maximum(y)[0],
                       lambda x, y: (jnp.prod(x, 0) * jnp.cumprod(x, 1).sum(0) + jnp.var(y, 0, ddof=1)
                                     + jnp.maximum(jnp.sort(x, 1), y)[0]),
                       [Z[:, :3, ::2].transpose(1, 0, 2)[:, :, :3], A[:, 1:4, 0].T]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_vjp_match_jax(name, check_vjp):
    engine_fn, jax_fn, arrays = CASES[name]
    check_vjp(engine_fn, jax_fn, *arrays, seed=len(name))


SECOND_ORDER = {  # functions to scalars, twice differentiable at these inputs (zeros included for the products)
    "prod": (lambda x: (x.prod(-1) * x[:, :, 0]).sum(), lambda x: (jnp.prod(x, -1) * x[:, :, 0]).sum(), Z),
    "cumprod": (lambda x: (x.cumprod(1) * A).sum(), lambda x: (jnp.cumprod(x, 1) * A).sum(), Z),
    "cumsum": (lambda x: (x.cumsum(0) ** 3).sum(), lambda x: (jnp.cumsum(x, 0) ** 3).sum(), A),
    "var_std": (lambda x: (x.var(1, ddof=1) * x.std(-1).sum()).sum(),
                lambda x: (jnp.var(x, 1, ddof=1) * jnp.std(x, -1).sum()).sum(), A),
    "maximum": (lambda x: (x.maximum(x[0]) ** 2).sum(), lambda x: (jnp.maximum(x, x[0]) ** 2).sum(), A),
    "sort_take": (lambda x: (x.sort(1) ** 2 * A).sum() + (tg.take_along_axis(x, IDX, -1) ** 3).sum(),
                  lambda x: (jnp.sort(x, 1) ** 2 * A).sum() + (jnp.take_along_axis(x, IDX, -1) ** 3).sum(), A),
    "logsumexp": (lambda x: x.logsumexp(0).sum() * x.logsumexp(2).sum(),
                  lambda x: jax.nn.logsumexp(x, 0).sum() * jax.nn.logsumexp(x, 2).sum(), A),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_hessian_vector_product_matches_jax(name):
    """d/dx <grad f(x), u> through create_graph=True vs jax.grad of jax.grad (random direction u)."""
    engine_f, jax_f, x0 = SECOND_ORDER[name]
    u = R.standard_normal(x0.shape)
    x = tg.Tensor(x0.copy(), requires_grad=True)
    (g,) = tg.grad(engine_f(x), [x], create_graph=True)
    (hvp,) = tg.grad((g * u).sum(), [x])
    ref = jax.jit(jax.grad(lambda t: jnp.vdot(jax.grad(jax_f)(t), u)))(x0)
    assert max_rel_error(hvp.data, ref) < 1e-9


def _vjp(fn, x0, v):
    x = tg.Tensor(np.asarray(x0, np.float64), requires_grad=True)
    return tg.grad(fn(x), [x], grad_output=v)[0].data


def test_prod_and_cumprod_gradients_are_exact_at_zeros():
    """prod_{j != i} x_j without division: with one zero only that element's gradient is nonzero, with two every
    gradient is 0, as JAX; the division formula y / x_i (the negative control) gives NaN there instead."""
    x0 = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 3.0], [1.0, 2.0, 4.0]])
    np.testing.assert_array_equal(_vjp(lambda x: x.prod(1), x0, np.ones(3)), [[6, 0, 0], [0, 0, 0], [8, 4, 2]])
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(np.prod(x0, 1, keepdims=True) / x0).any()
    v = R.standard_normal(x0.shape)
    _, pullback = jax.vjp(lambda t: jnp.cumprod(t, 1), x0)
    np.testing.assert_allclose(_vjp(lambda x: x.cumprod(1), x0, v), pullback(v)[0], rtol=1e-15, atol=0)


def test_maximum_minimum_split_ties_as_jax():
    a0, b0 = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 3.0])
    for name in ("maximum", "minimum"):
        a, b = tg.Tensor(a0, requires_grad=True), tg.Tensor(b0, requires_grad=True)
        ga, gb = tg.grad(getattr(tg, name)(a, b).sum(), [a, b])
        ra, rb = jax.grad(lambda x, y, n=name: getattr(jnp, n)(x, y).sum(), argnums=(0, 1))(a0, b0)
        np.testing.assert_array_equal(ga.data, ra)
        np.testing.assert_array_equal(gb.data, rb)
        assert ga.data[0] == gb.data[0] == 0.5


def test_sort_and_topk_ties_are_stable():
    """Equal elements keep their order (lower index first), also descending, as jnp.argsort(stable=True) and
    lax.top_k; so at a tie each output position's cotangent goes to the element argsort put there. jnp.sort's
    descending order is its ascending one reversed, which routes tied cotangents the other way (values equal)."""
    x0, v = np.array([1.0, 3.0, 3.0, 2.0, 3.0]), np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    np.testing.assert_array_equal(tg.argsort(x0, descending=True).data, jnp.argsort(x0, descending=True))
    np.testing.assert_array_equal(tg.Tensor(x0).topk(3)[1].data, jax.lax.top_k(x0, 3)[1])
    np.testing.assert_array_equal(tg.Tensor(x0).topk(2, largest=False)[1].data, [0, 3])
    mine = _vjp(lambda x: x.sort(descending=True), x0, v)
    np.testing.assert_array_equal(mine, [10000.0, 1.0, 10.0, 1000.0, 100.0])
    stable = jax.vjp(lambda t: jnp.take_along_axis(t, jnp.argsort(x0, descending=True), 0), x0)[1](v)[0]
    np.testing.assert_array_equal(mine, stable)
    reversed_ties = jax.vjp(lambda t: jnp.sort(t, descending=True), x0)[1](v)[0]
    np.testing.assert_array_equal(reversed_ties, [10000.0, 100.0, 10.0, 1000.0, 1.0])
    np.testing.assert_array_equal(_vjp(lambda x: x.topk(3)[0], x0, v[:3]), [0.0, 1.0, 10.0, 0.0, 100.0])


def test_take_along_axis_and_gather_add_repeated_indices():
    """torch.gather's definition, y[i][j] = x[index[i][j]][j] (dim 0) and y[i][j] = x[i][index[i][j]] (dim 1), on an
    index smaller than x on the other axis; its backward adds the cotangents of repeated indices."""
    x0 = np.arange(12.0).reshape(3, 4)
    index = np.array([[2, 2, 0], [1, 1, 1]])
    rows, cols = np.indices(index.shape)
    np.testing.assert_array_equal(tg.Tensor(x0).gather(0, index).data, x0[index, cols])
    np.testing.assert_array_equal(tg.Tensor(x0).gather(1, index).data, x0[rows, index])
    expected = np.zeros_like(x0)
    expected[:2, :3] = [[1, 0, 2], [0, 3, 0]]
    np.testing.assert_array_equal(_vjp(lambda x: x.gather(1, index), x0, np.ones((2, 3))), expected)


@pytest.mark.parametrize("axis, keepdims", [(None, False), (None, True), (1, False), (-1, True), (0, True)])
def test_argmax_argmin_as_numpy(axis, keepdims):
    """First index at ties, axis=None over the flattened array; integer results outside the graph."""
    x0 = np.array([[1.0, 3.0, 3.0], [4.0, -1.0, 4.0]])
    x = tg.Tensor(x0, requires_grad=True)
    for name in ("argmax", "argmin"):
        out = getattr(x, name)(axis, keepdims)
        ref = getattr(np, name)(x0, axis=axis, keepdims=keepdims)
        assert out.dtype == ref.dtype and not out.requires_grad
        np.testing.assert_array_equal(out.data, ref)
        np.testing.assert_array_equal(out.data, getattr(jnp, name)(x0, axis=axis, keepdims=keepdims))
        np.testing.assert_array_equal(getattr(tg, name)(x0, axis, keepdims).data, ref)


def test_any_all_one_hot():
    x0 = np.array([[0.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    for name in ("any", "all"):
        for axis in (None, 0, -1, (0, 1)):
            out = getattr(tg.Tensor(x0), name)(axis, True)
            assert out.dtype == bool
            np.testing.assert_array_equal(out.data, getattr(np, name)(x0, axis=axis, keepdims=True))
    assert tg.any(np.zeros((0, 2))).item() is False and tg.all(np.zeros((0, 2))).item() is True
    labels = np.array([[2, 0], [1, 1]])
    hot = ops.one_hot(labels, 3)
    assert hot.dtype == np.float32 and hot.shape == (2, 2, 3) and not hot.requires_grad
    np.testing.assert_array_equal(hot.data, jax.nn.one_hot(labels, 3))
    assert ops.one_hot(tg.Tensor(labels), 4, dtype="float64").dtype == np.float64


def test_std_gradient_at_zero_variance_is_nan_as_jax():
    x0 = np.array([2.0, 2.0, 2.0])
    assert tg.Tensor(x0).std().item() == 0.0
    assert np.isnan(_vjp(lambda x: x.std(), x0, 1.0)).all() and np.isnan(jax.grad(jnp.std)(x0)).all()


def test_logsumexp_over_an_empty_axis_is_minus_inf_as_jax():
    np.testing.assert_array_equal(tg.Tensor(np.zeros((2, 0))).logsumexp(1).data, [-np.inf, -np.inf])


BAD_CALLS = [
    ("argmax", lambda: tg.argmax(A, (0, 1)), TypeError, r"^argmax: axis must be None or an int"),
    ("argmin-range", lambda: tg.argmin(A, 3), ValueError, r"^argmin: axis 3 is out of range"),
    ("argmax-empty", lambda: tg.argmax(np.zeros((2, 0)), 1), ValueError, r"^argmax: cannot take the argmax of axis 1"),
    ("argmax-rank0-axis", lambda: tg.argmax(np.array(1.0), 0), ValueError, r"^argmax: .*rank-0"),
    ("prod-axis", lambda: tg.prod(A, (0, 0)), ValueError, r"^prod: axis \(0, 0\) repeats"),
    ("var-ddof", lambda: tg.var(A, ddof="1"), TypeError, r"^var: ddof must be a finite number"),
    ("var-int", lambda: tg.var(np.arange(3)), TypeError, r"^var: x must have a floating dtype"),
    ("cumsum-tuple", lambda: tg.cumsum(A, (0,)), TypeError, r"^cumsum: axis must be None or an int"),
    ("cumprod-rank0", lambda: tg.cumprod(np.array(2.0), 0), ValueError, r"^cumprod: axis 0 is out of range"),
    ("any-axis", lambda: tg.any(A, 5), ValueError, r"^any: axis 5 is out of range"),
    ("maximum-shapes", lambda: tg.maximum(A, A[0, 0, :2]), ValueError, r"^maximum: operands with shapes"),
    ("take-float", lambda: tg.take_along_axis(A, IDX * 1.0, 0), TypeError, r"^take_along_axis: indices must be an "
                                                                         r"integer array"),
    ("take-rank", lambda: tg.take_along_axis(A, IDX[0], 0), ValueError, r"^take_along_axis: indices must have the "
                                                                        r"rank"),
    ("take-broadcast", lambda: tg.take_along_axis(A, IDX[:2] % 3, 2), ValueError, r"^take_along_axis: indices of "
                                                                                  r"shape"),
    ("take-range", lambda: tg.take_along_axis(A, IDX + 5, -1), IndexError, r"^take_along_axis: index \d+ is out"),
    ("gather-larger", lambda: ops.gather(A, 1, R.integers(0, 2, (4, 4, 5))), ValueError, r"^gather: index of shape"),
    ("gather-negative", lambda: ops.gather(A, 0, -np.ones((1, 1, 1), int)), IndexError, r"^gather: index -1 is out"),
    ("gather-dim-none", lambda: ops.gather(A, None, IDX), TypeError, r"^gather: axis must be an int"),
    ("sort-axis", lambda: tg.sort(A, 3), ValueError, r"^sort: axis 3 is out of range"),
    ("sort-descending", lambda: tg.sort(A, descending="yes"), TypeError, r"^sort: descending must be True"),
    ("topk-k", lambda: ops.topk(A, 6), ValueError, r"^topk: k=6 is larger than axis 2 of size 5"),
    ("topk-k-type", lambda: ops.topk(A, 1.5), TypeError, r"^topk: k must be an integer"),
    ("one_hot-range", lambda: ops.one_hot([0, 3], 3), ValueError, r"^one_hot: labels must be class ids in \[0, 3\)"),
    ("one_hot-float", lambda: ops.one_hot(np.array([0.0]), 3), TypeError, r"^one_hot: indices must be an integer"),
    ("one_hot-classes", lambda: ops.one_hot([0], 0), ValueError, r"^one_hot: num_classes must be an integer >= 1"),
]


@pytest.mark.parametrize("name, call, error, message", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_calls_name_the_op_and_argument(name, call, error, message):
    with pytest.raises(error, match=message):
        call()
