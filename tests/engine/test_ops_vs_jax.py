"""Every primitive's forward and vjp against jax.vjp in float64, random cotangents over the whole output."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from test_gradcheck import OffByOnePercentExp

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import ops

R = np.random.default_rng(7)


def normal(*shape):
    return R.standard_normal(shape)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    """Normal values pushed at least 0.1 away from 0 (no kink of relu/abs/leaky_relu nearby)."""
    x = R.standard_normal(shape)
    return np.where(x >= 0, x + 0.1, x - 0.1)


A = normal(2, 3, 4)
MASK = A > 0.2

CASES = {
    # binary elementwise, with broadcasting
    "add": (lambda a, b: a + b, lambda a, b: a + b, [normal(2, 3), normal(3)]),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [normal(4, 1, 3), normal(2, 1)]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [normal(2, 1), normal(1, 5)]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [normal(3, 4), positive(4)]),
    "rsub_scalar": (lambda a: 2.5 - a, lambda a: 2.5 - a, [normal(3, 2)]),
    "rdiv_scalar": (lambda a: 2.5 / a, lambda a: 2.5 / a, [positive(3, 2)]),
    "pow_tensor": (lambda a, b: a ** b, lambda a, b: a ** b, [positive(3, 4), normal(4)]),
    "pow_scalar_int": (lambda a: a ** 3, lambda a: a ** 3, [normal(3, 4)]),
    "pow_scalar_half": (lambda a: a ** 0.5, lambda a: a ** 0.5, [positive(5)]),
    "pow_scalar_neg": (lambda a: a ** -1.5, lambda a: a ** -1.5, [positive(2, 3)]),
    "rpow": (lambda a: 2.0 ** a, lambda a: 2.0 ** a, [normal(4)]),
    "neg": (lambda a: -a, lambda a: -a, [normal(2, 3)]),
    # matmul: 1-D, 2-D, batched with broadcasting
    "matmul_vv": (lambda a, b: a @ b, jnp.matmul, [normal(3), normal(3)]),
    "matmul_mv": (lambda a, b: a @ b, jnp.matmul, [normal(2, 3), normal(3)]),
    "matmul_vm": (lambda a, b: a @ b, jnp.matmul, [normal(3), normal(3, 4)]),
    "matmul_mm": (lambda a, b: a @ b, jnp.matmul, [normal(2, 3), normal(3, 4)]),
    "matmul_batched": (lambda a, b: a @ b, jnp.matmul, [normal(5, 2, 3), normal(3, 4)]),
    "matmul_broadcast": (lambda a, b: a @ b, jnp.matmul, [normal(2, 1, 3, 4), normal(5, 4, 2)]),
    "matmul_bv": (lambda a, b: a @ b, jnp.matmul, [normal(4, 2, 3), normal(3)]),
    # unary
    "exp": (ops.exp, jnp.exp, [normal(3, 4)]),
    "log": (ops.log, jnp.log, [positive(3, 4)]),
    "sqrt": (ops.sqrt, jnp.sqrt, [positive(3, 4)]),
    "abs": (ops.abs, jnp.abs, [away_from_zero(3, 4)]),
    "relu": (ops.relu, jax.nn.relu, [away_from_zero(3, 4)]),
    "softplus": (ops.softplus, jax.nn.softplus, [normal(3, 4) * 5]),
    "sigmoid": (ops.sigmoid, jax.nn.sigmoid, [normal(3, 4) * 5]),
    "sigmoid_tails": (ops.sigmoid, jax.nn.sigmoid, [np.array([-40.0, -700.0, 30.0, 40.0, 0.0])]),
    "softplus_tails": (ops.softplus, jax.nn.softplus, [np.array([-40.0, -700.0, 30.0, 40.0, 0.0])]),
    "tanh": (ops.tanh, jnp.tanh, [normal(3, 4)]),
    "leaky_relu": (lambda x: ops.leaky_relu(x, 0.1), lambda x: jax.nn.leaky_relu(x, 0.1), [away_from_zero(3, 4)]),
    "clip": (lambda x: x.clip(-0.5, 0.7), lambda x: jnp.clip(x, -0.5, 0.7), [normal(4, 5)]),
    "clip_lo_only": (lambda x: x.clip(a_min=0.1), lambda x: jnp.clip(x, 0.1), [normal(4, 5)]),
    "clip_hi_only": (lambda x: x.clip(a_max=0.1), lambda x: jnp.clip(x, None, 0.1), [normal(4, 5)]),
    # functional composites
    "log_softmax": (F.log_softmax, jax.nn.log_softmax, [normal(3, 5) * 3]),
    "log_softmax_axis0": (lambda x: F.log_softmax(x, 0), lambda x: jax.nn.log_softmax(x, 0), [normal(3, 5)]),
    "softmax": (F.softmax, jax.nn.softmax, [normal(3, 5) * 3]),
    "logsumexp": (lambda x: F.logsumexp(x, 1), lambda x: jax.nn.logsumexp(x, 1), [normal(2, 4, 3)]),
    "dense": (F.dense, lambda x, k, b: x @ k + b, [normal(4, 3), normal(3, 2), normal(2)]),
    # movement
    "reshape": (lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6), [A]),
    "reshape_tuple_neg1": (lambda x: x.reshape((3, -1)), lambda x: x.reshape(3, -1), [A]),
    "transpose_axes": (lambda x: x.transpose(2, 0, 1), lambda x: x.transpose(2, 0, 1), [A]),
    "transpose_none": (lambda x: x.transpose(), lambda x: x.transpose(), [A]),
    "T": (lambda x: x.T, lambda x: x.T, [normal(3, 5)]),
    "flatten": (lambda x: x.flatten(), lambda x: x.reshape(-1), [A]),
    "pad": (lambda x: x.pad(((1, 0), (0, 2), (2, 1))), lambda x: jnp.pad(x, ((1, 0), (0, 2), (2, 1))), [A]),
    "pad_int": (lambda x: x.pad(1), lambda x: jnp.pad(x, 1), [normal(2, 3)]),
    "pad_zero_width": (lambda x: x.pad(((0, 0), (0, 1))), lambda x: jnp.pad(x, ((0, 0), (0, 1))), [normal(2, 3)]),
    "getitem_slices": (lambda x: x[1:, ::2, -3:], lambda x: x[1:, ::2, -3:], [A]),
    "getitem_negative_step": (lambda x: x[::-1, 1], lambda x: x[::-1, 1], [A]),
    "getitem_ints": (lambda x: x[1, 2], lambda x: x[1, 2], [A]),
    "getitem_scalar": (lambda x: x[0, 1, 3], lambda x: x[0, 1, 3], [A]),
    "getitem_ellipsis_none": (lambda x: x[..., None, 1], lambda x: x[..., None, 1], [A]),
    "getitem_int_array_repeats": (lambda x: x[[0, 0, 1, 0]], lambda x: x[jnp.array([0, 0, 1, 0])], [A]),
    "getitem_int_array_2d": (lambda x: x[:, np.array([[2, 0], [2, 2]])],
                             lambda x: x[:, jnp.array([[2, 0], [2, 2]])], [A]),
    "getitem_two_arrays": (lambda x: x[[1, 0, 1], :, [3, 3, 3]],
                           lambda x: x[jnp.array([1, 0, 1]), :, jnp.array([3, 3, 3])], [A]),
    "getitem_bool_mask": (lambda x: x[MASK], lambda x: x[MASK], [A]),
    "getitem_bool_rows": (lambda x: x[np.array([True, False])], lambda x: x[np.array([True, False])], [A]),
    "concatenate": (lambda a, b, c: ops.concatenate([a, b, c], axis=1),
                    lambda a, b, c: jnp.concatenate([a, b, c], axis=1),
                    [normal(2, 3, 2), normal(2, 1, 2), normal(2, 4, 2)]),
    "concatenate_neg_axis": (lambda a, b: ops.concatenate([a, b], axis=-1),
                             lambda a, b: jnp.concatenate([a, b], axis=-1), [normal(2, 3), normal(2, 2)]),
    "stack": (lambda a, b: ops.stack([a, b], axis=1), lambda a, b: jnp.stack([a, b], axis=1),
              [normal(2, 3), normal(2, 3)]),
    "stack_last": (lambda a, b, c: ops.stack([a, b, c], axis=-1), lambda a, b, c: jnp.stack([a, b, c], axis=-1),
                   [normal(4), normal(4), normal(4)]),
    "where": (lambda a, b: ops.where(MASK[0], a, b), lambda a, b: jnp.where(MASK[0], a, b),
              [normal(3, 4), normal(4)]),
    "astype_roundtrip": (lambda x: x.astype(np.float32).astype(np.float64) * x,
                         lambda x: x.astype(jnp.float32).astype(jnp.float64) * x, [normal(3, 4)]),
}

for _name, _red in (("sum", jnp.sum), ("mean", jnp.mean), ("max", jnp.max), ("min", jnp.min)):
    for _axis, _keep in ((None, False), (0, False), (-1, True), ((0, 2), False), ((0, 2), True), (1, True)):
        CASES[f"{_name}_axis{_axis}_keep{_keep}"] = (
            lambda x, n=_name, a=_axis, k=_keep: getattr(x, n)(axis=a, keepdims=k),
            lambda x, r=_red, a=_axis, k=_keep: r(x, axis=a, keepdims=k), [A])


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_vjp_match_jax(name, check_vjp):
    engine_fn, jax_fn, arrays = CASES[name]
    check_vjp(engine_fn, jax_fn, *arrays, seed=len(name))


def test_cotangent_is_random_not_ones(check_vjp):
    """A vjp that ignores the cotangent's values (uses ones) must not pass the comparison."""

    class Ignores(tg.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def vjp(ctx, g):
            return (ops.constant(np.full(g.shape, 2.0)),)

    with pytest.raises(AssertionError, match="vjp wrt argument 0"):
        check_vjp(Ignores.apply, lambda x: 2 * x, normal(3, 4), record=False)


def test_wrong_vjp_is_caught_by_jax_comparison(check_vjp):
    """Negative control: an exp whose vjp is 1% off must fail the JAX comparison."""
    with pytest.raises(AssertionError, match="differs from JAX"):
        check_vjp(OffByOnePercentExp.apply, jnp.exp, normal(3, 4), record=False)


# (engine op, NumPy op, local derivatives (df/da, df/db)) for the broadcasting test below.
BINARY = {
    "add": (lambda a, b: a + b, np.add, lambda a, b: (np.ones_like(a * b), np.ones_like(a * b))),
    "sub": (lambda a, b: a - b, np.subtract, lambda a, b: (np.ones_like(a * b), -np.ones_like(a * b))),
    "mul": (lambda a, b: a * b, np.multiply, lambda a, b: (b + 0 * a, a + 0 * b)),
    "div": (lambda a, b: a / b, np.divide, lambda a, b: (1 / b + 0 * a, -a / b ** 2)),
    "pow": (lambda a, b: a ** b, np.power, lambda a, b: (b * a ** (b - 1), np.log(a) * a ** b)),
    "where": (lambda a, b: ops.where(a.data > 1.0, a, b), lambda a, b: np.where(a > 1.0, a, b),
              lambda a, b: ((a > 1.0) + 0 * b, (a <= 1.0) + 0 * b)),
}


def _scatter_reference(shape, out_shape, values):
    """Sum ``values`` (shaped ``out_shape``) into the input element each output position was broadcast from.

    Independent of the engine's ``unbroadcast`` (sum over axes): it follows each output position's source
    index, obtained by broadcasting ``arange(size)``, and adds with ``bincount``.
    """
    size = int(np.prod(shape))
    source = np.broadcast_to(np.arange(size).reshape(shape), out_shape).ravel()
    return np.bincount(source, weights=np.ravel(values), minlength=size).reshape(shape)


@pytest.mark.parametrize("op", sorted(BINARY))
@settings(max_examples=40, deadline=None, derandomize=True)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_binary_ops_broadcast_like_numpy(op, shapes, seed):
    """Random broadcastable shape pairs: forward equals NumPy's, each vjp equals the local derivative times a
    random cotangent, summed back to the input's shape (the fixed cases above check the same ops against
    JAX; JAX compiles anew for every shape, about 0.5 s each, too slow for many random shapes)."""
    r = np.random.default_rng(seed)
    a, b = (r.uniform(0.5, 2.0, s) for s in shapes.input_shapes)
    engine_fn, numpy_fn, derivatives = BINARY[op]
    ta, tb = tg.Tensor(a, requires_grad=True), tg.Tensor(b, requires_grad=True)
    out = engine_fn(ta, tb)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.data, numpy_fn(a, b), rtol=1e-14, atol=0)
    v = r.standard_normal(out.shape)
    ga, gb = tg.grad(out, [ta, tb], grad_output=v)
    da, db = derivatives(a, b)
    np.testing.assert_allclose(ga.data, _scatter_reference(a.shape, out.shape, v * da), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gb.data, _scatter_reference(b.shape, out.shape, v * db), rtol=1e-12, atol=1e-13)


def test_non_contiguous_inputs(check_vjp):
    """Transposed and strided NumPy views as inputs give the same results as contiguous ones."""
    base = normal(6, 8)
    check_vjp(lambda a, b: (a * b).sum(0) @ ops.exp(b[:3]), lambda a, b: (a * b).sum(0) @ jnp.exp(b[:3]),
              base.T[::2, ::2], base[:3, :4].T)
