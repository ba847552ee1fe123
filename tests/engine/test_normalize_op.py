"""``ops.normalize``, the fused batch/layer/group normalization primitive, against JAX in float64 (forward, vjp,
Hessian-vector products), against finite differences (first and second order), and negative controls: a
wrong first-order vjp and a wrong second-order vjp are each caught by the same checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from vjp_pair import max_rel_error

import tinygrad_cnn as tg
from tinygrad_cnn import ops
from tinygrad_cnn.gradcheck import gradcheck
from tinygrad_cnn.ops import normalization
from tinygrad_cnn.ops.movement import constant

EPS = 1e-3
R = np.random.default_rng(7)


def _x(shape, zero_variance_channel=False):
    x = R.standard_normal(shape) * 1.5 + 0.3
    if zero_variance_channel:
        x[..., 0] = 0.75  # one channel constant over the batch (its mean exact in binary): variance 0, x_hat 0
    return x


def _param(shape):
    return R.standard_normal(shape)


def _feature(x_shape, axes):
    """The shape of a per-feature gamma/beta: x's sizes on the kept axes (batch norm) or the given ones."""
    return tuple(1 if i in axes else n for i, n in enumerate(x_shape))


# (name, x, reduction axes, gamma shape or None, beta shape or None)
CASES = [
    ("bn_nhwc", _x((4, 3, 3, 5)), (0, 1, 2), _feature((4, 3, 3, 5), (0, 1, 2)), _feature((4, 3, 3, 5), (0, 1, 2))),
    ("bn_nhwc_per_channel_vectors", _x((4, 3, 3, 5)), (0, 1, 2), (5,), (5,)),  # gamma, beta as (C,)
    ("bn_axis1", _x((4, 5, 6)), (0, 2), (1, 5, 1), (1, 5, 1)),
    ("bn_1d_conv_zero_var", _x((5, 7, 3), True), (0, 1), (1, 1, 3), (1, 1, 3)),
    ("bn_3d_conv_no_center", _x((2, 3, 2, 3, 4)), (0, 1, 2, 3), (1, 1, 1, 1, 4), None),
    ("bn_dense_no_scale", _x((6, 4)), (0,), None, (1, 4)),
    ("bn_batch_of_one_neither", _x((1, 2, 2, 3)), (0, 1, 2), None, None),
    ("bn_batch_of_one_dense", _x((1, 3)), (0,), (1, 3), (1, 3)),  # n = 1: every x_hat 0
    ("layer_norm", _x((3, 4, 5)), (2,), (1, 1, 5), (1, 1, 5)),  # gamma varies inside a group
    ("group_norm", _x((2, 3, 2, 2, 3)), (1, 2, 4), (1, 1, 1, 2, 3), (1, 1, 1, 2, 3)),  # (N, H, W, groups, C/g)
]
IDS = [c[0] for c in CASES]


def _arrays(case):
    _, x, axes, gshape, bshape = case
    return [x] + [_param(s) for s in (gshape, bshape) if s is not None]


def _engine_fn(case):
    _, _, axes, gshape, bshape = case

    def fn(x, *affine):
        it = iter(affine)
        gamma = next(it) if gshape is not None else None
        beta = next(it) if bshape is not None else None
        return ops.normalize(x, axes, gamma, beta, EPS)[0]
    return fn


def _jax_fn(case):
    _, _, axes, gshape, bshape = case

    def fn(x, *affine):
        it = iter(affine)
        mean = jnp.mean(x, axes, keepdims=True)
        y = (x - mean) / jnp.sqrt(jnp.mean((x - mean) ** 2, axes, keepdims=True) + EPS)
        if gshape is not None:
            y = y * next(it)
        return y + next(it) if bshape is not None else y
    return fn


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_vjp_match_jax(case, check_vjp):
    check_vjp(_engine_fn(case), _jax_fn(case), *_arrays(case), tol=1e-10)


def test_relu_inside_matches_jax_to_second_order_and_finite_differences(check_vjp):
    case = CASES[0]
    fused = lambda *a: ops.normalize(a[0], case[2], a[1], a[2], EPS, relu=True)[0]  # noqa: E731
    reference = lambda *a: jnp.maximum(_jax_fn(case)(*a), 0.0)  # noqa: E731
    arrays = _arrays(case)
    check_vjp(fused, reference, *arrays, tol=1e-10)
    v = R.standard_normal(case[1].shape)
    u = [R.standard_normal(a.shape) for a in arrays]
    for ours, theirs in zip(_hvp_engine(fused, arrays, v, u), _hvp_jax(reference, arrays, v, u), strict=True):
        assert max_rel_error(ours, theirs) < 1e-9
    report = gradcheck(fused, arrays)
    assert report.passed, report


def test_statistics_returned_are_the_biased_moments_and_float32_stays_float32():
    x = _x((8, 3, 3, 4)).astype(np.float32)
    gamma, beta = (tg.Tensor(_param((1, 1, 1, 4)).astype(np.float32), requires_grad=True) for _ in range(2))
    xt = tg.Tensor(x, requires_grad=True)
    y, mean, var = ops.normalize(xt, (0, 1, 2), gamma, beta)
    np.testing.assert_allclose(mean.data, x.mean((0, 1, 2), keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(var.data, x.var((0, 1, 2), keepdims=True), rtol=1e-5)
    assert not mean.requires_grad and not var.requires_grad
    y.sum().backward()
    assert {y.dtype, xt.grad.dtype, gamma.grad.dtype, beta.grad.dtype} == {np.dtype(np.float32)}


def _hvp_engine(fn, arrays, v, u):
    """u^T (d/dz of v^T J(z)): the engine's grad of the recorded (create_graph) vjp, z = all float inputs."""
    leaves = [tg.Tensor(a, requires_grad=True) for a in arrays]
    y = fn(*leaves)
    first = tg.grad((y * constant(v)).sum(), leaves, create_graph=True)
    inner = sum((g * constant(w)).sum() for g, w in zip(first, u, strict=True))
    return [g.data for g in tg.grad(inner, leaves)]


def _hvp_jax(f, arrays, v, u):

    @jax.jit  # one compilation instead of op-by-op dispatch
    def hvp(z, v, u):
        def scalar(*z):
            return jnp.sum(f(*z) * v)
        return jax.jvp(jax.grad(scalar, argnums=tuple(range(len(z)))), z, u)[1]
    return hvp(tuple(arrays), v, tuple(u))


SECOND_ORDER = [CASES[0], CASES[2], CASES[-2], CASES[-1]]


@pytest.mark.parametrize("case", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_hessian_vector_products_match_jax(case):
    arrays = _arrays(case)
    v = R.standard_normal(case[1].shape)
    u = [R.standard_normal(a.shape) for a in arrays]
    for ours, theirs in zip(_hvp_engine(_engine_fn(case), arrays, v, u), _hvp_jax(_jax_fn(case), arrays, v, u),
                            strict=True):
        assert max_rel_error(ours, theirs) < 1e-9


@pytest.mark.parametrize("case", [CASES[1], CASES[-2]], ids=[CASES[1][0], CASES[-2][0]])
def test_first_and_second_order_pass_finite_differences(case):
    report = gradcheck(_engine_fn(case), _arrays(case), order=2)
    assert report.passed, report


def _vjp_without_the_variance_term(ctx, g):
    """A classic slip: the cotangent through the variance (``- x_hat <g x_hat>``) forgotten."""
    x_hat, inv_std = ctx.saved[:2]
    gamma = ctx.inputs[1].data
    axes = ctx.params["axes"]
    dx = gamma * inv_std * (g.data - g.data.mean(axes, keepdims=True))
    return (constant(dx), constant(np.sum(g.data * x_hat, axes, keepdims=True)),
            constant(np.sum(g.data, axes, keepdims=True)))


def test_negative_control_a_wrong_first_order_vjp_is_caught(monkeypatch, check_vjp):
    case = CASES[0]
    monkeypatch.setattr(normalization.Normalize, "vjp", staticmethod(_vjp_without_the_variance_term))
    with pytest.raises(AssertionError, match="vjp wrt argument 0 differs from JAX"):
        check_vjp(_engine_fn(case), _jax_fn(case), *_arrays(case), record=False)
    assert not gradcheck(_engine_fn(case), _arrays(case)).passed


def _tensor_vjp_with_x_hat_constant(ctx, g):
    """Right to first order, wrong to second: x_hat and sigma taken as constants instead of functions of x."""
    x_hat, inv_std = (constant(a) for a in ctx.saved[:2])
    gamma, axes = ctx.inputs[1], ctx.params["axes"]
    h = g * gamma
    dx = inv_std * (h - ops.mean(h, axes, keepdims=True) - x_hat * ops.mean(h * x_hat, axes, keepdims=True))
    return dx, ops.unbroadcast(g * x_hat, gamma.shape), ops.unbroadcast(g, ctx.inputs[2].shape)


def test_negative_control_a_wrong_second_order_vjp_is_caught(monkeypatch, check_vjp):
    case = CASES[0]
    monkeypatch.setattr(normalization, "_vjp_by_tensor_ops", _tensor_vjp_with_x_hat_constant)
    check_vjp(_engine_fn(case), _jax_fn(case), *_arrays(case), record=False)  # first order still right
    arrays = _arrays(case)
    v = R.standard_normal(case[1].shape)
    u = [R.standard_normal(a.shape) for a in arrays]
    ours, theirs = _hvp_engine(_engine_fn(case), arrays, v, u), _hvp_jax(_jax_fn(case), arrays, v, u)
    assert max_rel_error(ours[0], theirs[0]) > 1e-3
    assert not gradcheck(_engine_fn(case), arrays, order=2).passed


def test_one_node_per_normalization():
    x = tg.Tensor(_x((4, 2, 2, 3)), requires_grad=True)
    y = ops.normalize(x, (0, 1, 2), tg.Tensor(np.ones((1, 1, 1, 3))), tg.Tensor(np.zeros((1, 1, 1, 3))))[0]
    assert y._ctx.function is normalization.Normalize and y._ctx.inputs[0] is x


@pytest.mark.parametrize("call, error, match", [
    (lambda x: ops.normalize(x, (4,)), ValueError, r"normalize: axis 4 is out of range for an array of rank 4"),
    (lambda x: ops.normalize(x, ()), ValueError, r"axis=\(\) of an input of shape \(2, 2, 2, 3\) reduces over no"),
    (lambda x: ops.normalize(x, (0,), gamma=np.ones(2)), ValueError,
     r"gamma of shape \(2,\) must have x's rank 4 and broadcast against x of shape \(2, 2, 2, 3\), or be of "
     r"shape \(3,\)"),
    (lambda x: ops.normalize(x, (0,), gamma=np.ones((2, 3))), ValueError, r"gamma of shape \(2, 3\) must have"),
    (lambda x: ops.normalize(x, (0,), beta=np.ones((1, 1, 1, 2))), ValueError, r"beta of shape \(1, 1, 1, 2\)"),
    (lambda x: ops.normalize(x, (0,), epsilon=-1.0), ValueError, r"epsilon must be in \[0.0, inf\); got -1.0"),
    (lambda x: ops.normalize(tg.Tensor(np.ones((2, 3), np.int64)), (0,)), TypeError,
     r"normalize: x must have a floating dtype; got int64"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(tg.Tensor(np.ones((2, 2, 2, 3))))


def test_a_gamma_varying_along_a_reduced_axis_is_not_taken_for_a_per_channel_one(check_vjp):
    """x (N, 4, 4, 4) over (0, 1, 2) with gamma (1, 4, 1, 1): as many entries as channels, on another axis."""
    case = ("gamma_on_a_reduced_axis", _x((3, 4, 4, 4)), (0, 1, 2), (1, 4, 1, 1), (1, 1, 1, 4))
    check_vjp(_engine_fn(case), _jax_fn(case), *_arrays(case), tol=1e-10)


def test_per_channel_vectors_give_the_bits_of_full_rank_ones_to_second_order():
    """gamma/beta as (C,) (what BatchNormalization passes channels-last, no reshape node) against the same values
    as (1, 1, 1, C): identical output, gradients and Hessian-vector products; the gradients keep the (C,) shape."""
    x, axes = _x((4, 3, 3, 5)), (0, 1, 2)
    gamma, beta = _param((5,)), _param((5,))
    fn = lambda x, g, b: ops.normalize(x, axes, g, b, EPS, relu=True)[0]  # noqa: E731
    v = R.standard_normal(x.shape)
    u = [R.standard_normal(x.shape), R.standard_normal(5), R.standard_normal(5)]
    full = [gamma.reshape(1, 1, 1, 5), beta.reshape(1, 1, 1, 5)]
    u_full = [u[0], u[1].reshape(1, 1, 1, 5), u[2].reshape(1, 1, 1, 5)]
    ours = _hvp_engine(fn, [x, gamma, beta], v, u)
    theirs = _hvp_engine(fn, [x] + full, v, u_full)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b).reshape(np.shape(a)))
    xt, gt, bt = (tg.Tensor(a, requires_grad=True) for a in (x, gamma, beta))
    (fn(xt, gt, bt) * tg.Tensor(v)).sum().backward()
    assert gt.grad.shape == bt.grad.shape == (5,)
