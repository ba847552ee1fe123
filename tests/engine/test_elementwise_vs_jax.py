"""The elementwise math ops and the activations vs JAX in float64: forward, vjp with random cotangents, second order,
tails at |x| = 1000, values at kinks and ties, kink flags, awkward shapes (rank 0, zero-size, non-contiguous)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pytest
from agreement import Tally, rel_err
from hypothesis import given, settings
from hypothesis import strategies as st
from vjp_pair import max_rel_error, vjp_pair

import tinygrad_cnn as tg
from jax_ref import ops as J
from tinygrad_cnn import functional as F
from tinygrad_cnn import gradcheck as gc
from tinygrad_cnn import ops
from tinygrad_cnn.ops.unary import Sin

TALLY = Tally("elementwise ops vs JAX (forward, vjp, second order)")


def normal(rng, shape):
    return rng.standard_normal(shape) * 2.0


def positive(rng, shape):
    return rng.uniform(0.3, 3.0, shape)


def inside_unit(rng, shape):
    return rng.uniform(-0.95, 0.95, shape)


def away_from(*kinks, gap=0.1, scale=2.0):
    """Normals times ``scale`` moved at least ``gap`` away from each kink (so no finite difference or tie is near)."""

    def draw(rng, shape):
        x = rng.standard_normal(shape) * scale
        for k in kinks:
            x = np.where(np.abs(x - k) < gap, k + np.copysign(gap, x - k + 1e-300), x)
        return x

    return draw


def off_integers(rng, shape, half=False):
    """Values at least 0.1 from every integer, fractional part in (0.1, 0.4) or (0.6, 0.9); with ``half`` only
    (0.1, 0.4), so also 0.1 from every half-integer (round's jumps)."""
    upper = 0.0 if half else rng.integers(0, 2, shape) * 0.5
    return rng.integers(-4, 4, shape) + rng.uniform(0.1, 0.4, shape) + upper


# name -> (engine fn, JAX fn, draw(rng, shape)). The JAX side is jax.numpy / jax.nn / jax_ref.ops.
UNARY = {
    "log1p": (ops.log1p, jnp.log1p, lambda r, s: r.uniform(-0.9, 3.0, s)),
    "expm1": (ops.expm1, jnp.expm1, normal),
    "log2": (ops.log2, jnp.log2, positive),
    "exp2": (ops.exp2, jnp.exp2, normal),
    "square": (ops.square, jnp.square, normal),
    "reciprocal": (ops.reciprocal, jnp.reciprocal, away_from(0.0, gap=0.3)),
    "rsqrt": (ops.rsqrt, jax.lax.rsqrt, positive),
    "sin": (ops.sin, jnp.sin, normal),
    "cos": (ops.cos, jnp.cos, normal),
    "tan": (ops.tan, jnp.tan, lambda r, s: r.uniform(-1.4, 1.4, s)),
    "asin": (ops.asin, jnp.arcsin, inside_unit),
    "acos": (ops.acos, jnp.arccos, inside_unit),
    "atan": (ops.atan, jnp.arctan, normal),
    "sinh": (ops.sinh, jnp.sinh, normal),
    "cosh": (ops.cosh, jnp.cosh, normal),
    "atanh": (ops.atanh, jnp.arctanh, inside_unit),
    "erf": (ops.erf, jsp.erf, normal),
    "erfc": (ops.erfc, jsp.erfc, lambda r, s: r.standard_normal(s) * 4.0),
    "sign": (ops.sign, jnp.sign, away_from(0.0)),
    "floor": (ops.floor, jnp.floor, off_integers),
    "ceil": (ops.ceil, jnp.ceil, off_integers),
    "round": (ops.round, jnp.round, lambda r, s: off_integers(r, s, half=True)),
    "round_decimals": (lambda x: ops.round(x, 1), lambda x: jnp.round(x, 1),
                       lambda r, s: np.round(r.standard_normal(s), 1) + r.uniform(0.01, 0.04, s)),
    # activations: engine's F against the twin's jax_ref.ops (written on jax.nn)
    "gelu": (F.gelu, J.gelu, normal),
    "gelu_tanh": (lambda x: F.gelu(x, approximate=True), lambda x: J.gelu(x, approximate=True), normal),
    "silu": (F.silu, J.silu, normal),
    "swish": (F.swish, J.swish, normal),
    "elu": (F.elu, J.elu, away_from(0.0)),
    "elu_alpha": (lambda x: F.elu(x, 0.3), lambda x: J.elu(x, 0.3), away_from(0.0)),
    "selu": (F.selu, J.selu, away_from(0.0)),
    "celu": (F.celu, J.celu, away_from(0.0)),
    "celu_alpha": (lambda x: F.celu(x, 2.5), lambda x: J.celu(x, 2.5), away_from(0.0)),
    "softsign": (F.softsign, J.softsign, away_from(0.0)),
    "hard_sigmoid": (F.hard_sigmoid, J.hard_sigmoid, away_from(-3.0, 3.0)),
    "hard_silu": (F.hard_silu, J.hard_silu, away_from(-3.0, 3.0)),
    "hard_swish": (F.hard_swish, J.hard_swish, away_from(-3.0, 3.0)),
    "mish": (F.mish, J.mish, normal),
    "relu6": (F.relu6, J.relu6, away_from(0.0, 6.0, scale=4.0)),
    "log_sigmoid": (F.log_sigmoid, J.log_sigmoid, normal),
}
SHAPES = [(3, 4), (2, 3, 2)]
TAILS = np.array([-1000.0, -700.0, -40.0, -9.0, -0.5, 0.25, 9.0, 40.0, 700.0, 1000.0])
TAILED = ["gelu", "gelu_tanh", "silu", "mish", "log_sigmoid", "erf", "erfc", "elu", "selu", "celu", "softsign",
          "atan", "hard_silu", "sign"]


def _record_vjp(engine_fn, jax_fn, *arrays, seed=0, eager=False):
    """Engine vs JAX output and v^T J for every argument (random v), elementwise relative errors (``max_rel_error``)
    recorded in TALLY, which asserts each is below 1e-10. ``eager``: no jit (cheaper for one-off shapes)."""
    pair = vjp_pair(engine_fn, jax_fn, arrays)
    v = np.random.default_rng(seed).standard_normal(pair.out.shape)
    vjp = (lambda *a: jax.vjp(pair.jax_of_floats, *a)) if eager else jax.jit(
        lambda *a: jax.vjp(pair.jax_of_floats, *a))
    ref_out, pullback = vjp(*(pair.arrays[i] for i in pair.floats))
    errors = [max_rel_error(pair.out.data, ref_out)]
    errors += [max_rel_error(m, r) for m, r in zip(pair.engine_vjp(v), pullback(v), strict=True)]
    assert pair.out.dtype == np.asarray(arrays[0]).dtype
    TALLY.record(*errors)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_forward_and_vjp_match_jax(name, shape):
    engine_fn, jax_fn, draw = UNARY[name]
    _record_vjp(engine_fn, jax_fn, draw(np.random.default_rng(len(name)), shape), seed=len(shape))


@pytest.mark.parametrize("name", TAILED)
def test_tails_are_finite_and_match_jax(name):
    """|x| up to 1000: finite values and gradients (no inf * 0), equal to JAX's (as the 'softplus_tails' case)."""
    engine_fn, jax_fn, _ = UNARY[name]
    _record_vjp(engine_fn, jax_fn, TAILS)
    for dtype in (np.float32, np.float64):
        x = tg.Tensor(TAILS.astype(dtype), requires_grad=True)
        out = engine_fn(x)
        (g,) = tg.grad(out, [x], grad_output=np.ones(TAILS.shape, dtype))
        assert out.dtype == g.dtype == dtype
        assert np.isfinite(out.data).all() and np.isfinite(g.data).all()


def _hvp_engine(fn, arrays, v, u):
    """d/dx_i <v^T J(x), u> for every input: the vjp's own vjp (needs the backward pass recorded)."""
    xs = [tg.Tensor(a, requires_grad=True) for a in arrays]
    first = tg.grad(fn(*xs), xs, grad_output=v, create_graph=True)
    total = sum((g * w).sum() for g, w in zip(first, u, strict=True))
    return [g.data for g in tg.grad(total, xs)] if total.requires_grad else [np.zeros_like(a) for a in arrays]


def _hvp_jax(fn, arrays, v, u):
    def inner(*xs):
        cotangents = jax.vjp(fn, *xs)[1](v)
        return sum(jnp.vdot(c, w) for c, w in zip(cotangents, u, strict=True))

    return jax.jit(jax.grad(inner, argnums=tuple(range(len(arrays)))))(*arrays)


def _second_order_errors(engine_fn, jax_fn, *arrays, seed=0):
    """Normwise errors (``rel_err``) of the engine's hvp for every input: an element far below the array's scale
    (gelu's second derivative at x = 6.6 is 2e-12, computed from 1 - tanh(...) in both) carries the rounding of
    the large ones."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(np.broadcast_shapes(*(a.shape for a in arrays)))
    u = [rng.standard_normal(a.shape) for a in arrays]
    mine, ref = _hvp_engine(engine_fn, arrays, v, u), _hvp_jax(jax_fn, arrays, v, u)
    return [rel_err(m, r) for m, r in zip(mine, ref, strict=True)]


def _check_second_order(engine_fn, jax_fn, *arrays, seed=0):
    TALLY.record(*_second_order_errors(engine_fn, jax_fn, *arrays, seed=seed))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_second_order_matches_jax(name):
    """Every op is twice differentiable away from its kinks; the draws keep away from them."""
    engine_fn, jax_fn, draw = UNARY[name]
    _check_second_order(engine_fn, jax_fn, draw(np.random.default_rng(3), (3, 4)), seed=len(name))


@pytest.mark.parametrize("alpha_shape", [(), (4,), (3, 1), (1, 4)], ids=str)
def test_prelu_gradients_to_x_and_alpha(alpha_shape):
    rng = np.random.default_rng(5)
    x, alpha = away_from(0.0)(rng, (2, 3, 4)), rng.uniform(-0.5, 1.5, alpha_shape)
    _record_vjp(F.prelu, J.prelu, x, alpha, seed=1)
    _check_second_order(F.prelu, J.prelu, x, alpha, seed=2)


def test_second_order_negative_control():
    """A sin whose vjp is a constant (cos x computed on arrays, outside the graph) has the right first derivative
    but a zero second one: the second-order comparison must catch it."""

    class FrozenSin(Sin):
        @staticmethod
        def derivative(x, y):
            return ops.constant(np.cos(x.data))

    x = normal(np.random.default_rng(0), (3, 4))
    _record_vjp(FrozenSin.apply, jnp.sin, x)
    assert max(_second_order_errors(FrozenSin.apply, jnp.sin, x)) > 0.1


# -- awkward shapes: rank 0, zero-size, transposed and strided views ----------------------------------------------
def _layout(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "transposed":
        return array.T.copy().T
    if layout == "strided":
        return np.repeat(array, 2, axis=-1)[..., ::2] if array.ndim else array
    return array


def _value_and_vjp(engine_fn, x, v, *more):
    pair = vjp_pair(engine_fn, None, [x, *more])
    return [pair.out.data, *pair.engine_vjp(v)]


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(shape=st.sampled_from([(), (0,), (2, 0, 3), (3, 2), (2, 1, 3)]),
       layout=st.sampled_from(["contiguous", "transposed", "strided"]), seed=st.integers(0, 3),
       name=st.sampled_from(sorted(UNARY)))
def test_every_op_on_awkward_shapes(shape, layout, seed, name):
    """One drawn shape and memory layout per example: the drawn op against JAX (eager), and every op (and prelu
    with a broadcast alpha) on the view bitwise equal to itself on a contiguous copy, output and vjp. (A JAX
    comparison of every op on every shape costs an XLA compile each; the fuzz table covers more shapes.)"""
    rng = np.random.default_rng(seed)
    engine_fn, jax_fn, draw = UNARY[name]
    _record_vjp(engine_fn, jax_fn, _layout(draw(rng, shape), layout), seed=seed, eager=True)
    v = rng.standard_normal(shape)
    cases = [(fn, draw, ()) for fn, _, draw in UNARY.values()]
    cases.append((F.prelu, away_from(0.0), (rng.uniform(0.1, 0.9, shape[-1:]),)))
    for fn, draw, more in cases:
        x = _layout(draw(rng, shape), layout)
        assert layout == "contiguous" or x.size <= 1 or not x.flags.c_contiguous
        view, copy = _value_and_vjp(fn, x, v, *more), _value_and_vjp(fn, np.array(x, order="C"), v, *more)
        assert [a.shape for a in view] == [shape] * (len(view) - len(more)) + [m.shape for m in more]
        for a, b in zip(view, copy, strict=True):
            np.testing.assert_array_equal(a, b)


def test_float32_stays_float32():
    x = tg.Tensor(np.linspace(0.1, 0.9, 6, dtype=np.float32), requires_grad=True)
    for name, (engine_fn, _, _) in UNARY.items():
        out = engine_fn(x)
        (g,) = tg.grad(out, [x], grad_output=np.ones(6, np.float32))
        assert out.dtype == g.dtype == np.float32, name


# -- kinks and ties: the values JAX gives, and the gradient checker's flags -----------------------------------------
KINKS = {  # name -> points on or at the kinks (derivative conventions of section 6 of the design, as jax.grad)
    "sign": [-1.0, 0.0, 2.0], "floor": [-1.0, 0.0, 2.0], "ceil": [-1.0, 0.0, 2.0], "round": [-1.5, 0.5, 2.5],
    "relu6": [0.0, 6.0, 3.0], "hard_sigmoid": [-3.0, 3.0, 0.0], "hard_silu": [-3.0, 3.0, 0.0],
    "elu": [0.0, -1.0], "elu_alpha": [0.0], "celu_alpha": [0.0], "selu": [0.0], "softsign": [0.0],
}


@pytest.mark.parametrize("name", sorted(KINKS))
def test_gradient_at_kinks_equals_jax(name):
    engine_fn, jax_fn, _ = UNARY[name]
    x0 = np.array(KINKS[name])
    x = tg.Tensor(x0, requires_grad=True)
    (mine,) = tg.grad(engine_fn(x).sum(), [x])
    np.testing.assert_array_equal(mine.data, jax.grad(lambda t: jax_fn(t).sum())(x0))


def test_prelu_at_zero_takes_the_nonnegative_side():
    x, alpha = tg.Tensor(np.array([0.0, -2.0, 1.0]), requires_grad=True), tg.Tensor(np.array(0.25), requires_grad=True)
    gx, ga = tg.grad(F.prelu(x, alpha).sum(), [x, alpha])
    np.testing.assert_array_equal(gx.data, [1.0, 0.25, 1.0])
    np.testing.assert_array_equal(ga.data, -2.0)
    ref = jax.grad(lambda a, b: J.prelu(a, b).sum(), argnums=(0, 1))(np.array([0.0, -2.0, 1.0]), 0.25)
    np.testing.assert_array_equal(gx.data, ref[0])


def test_round_halves_to_even_as_numpy_and_jax():
    x0 = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999999999999994])
    np.testing.assert_array_equal(ops.round(tg.Tensor(x0)).data, jnp.round(x0))
    np.testing.assert_array_equal(tg.Tensor(x0).round().data, [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 4.0, 0.0])


KINK_FLAGS = {  # name -> a kink of it
    "sign": 0.0, "floor": 2.0, "ceil": -1.0, "round": 0.5, "relu6": 6.0, "hard_sigmoid": -3.0,
    "hard_silu": 3.0, "elu_alpha": 0.0, "celu": 0.0, "selu": 0.0, "softsign": 0.0, "prelu": 0.0,
}


@pytest.mark.parametrize("name", sorted(KINK_FLAGS))
def test_gradcheck_flags_the_kink(name):
    """An element 3e-7 from a kink (eps = 1e-6) is flagged, not failed; the same op away from kinks flags nothing
    (the negative control)."""
    kink = KINK_FLAGS[name]
    fn = (lambda t: F.prelu(t, 0.3)) if name == "prelu" else UNARY[name][0]
    near = np.array([kink + 3e-7, kink + 0.37, kink - 0.41])
    report = gc.gradcheck(fn, [near])
    assert report["inputs[0]"].kinks == [(0,)] and report.passed, str(report)
    away = gc.gradcheck(fn, [near[1:]])
    assert not away.any_kinks and away.passed, str(away)


def test_tally():
    TALLY.report()
