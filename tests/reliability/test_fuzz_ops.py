"""Differential fuzzing: every engine op and its vjp vs JAX (jax.numpy / jax_ref.ops) in float64.

Hypothesis draws shapes and arguments; values come from a seeded NumPy generator, kept away from kinks and
ties (random normals never hit 0 or repeat; domains of log/sqrt/div/pow are shifted away from 0). Profiles
and case counts: see ``fuzzing.py`` (``TINYGRAD_CNN_FUZZ=long`` for the long run).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fuzzing import DIMS, SEEDS, axes, differential, examples, fixed_examples, shapes, shapes_and_axes
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from jax_ref import ops as J
from tinygrad_cnn import functional as F
from tinygrad_cnn import ops
from tinygrad_cnn.conv_arithmetic import effective_kernel_size


def _normal(seed, shape, k=0):
    return np.random.default_rng([seed, k]).standard_normal(shape)


def _away_from_zero(seed, shape, k=0):
    x = _normal(seed, shape, k)
    return np.sign(x) * (np.abs(x) + 0.5) + np.where(x == 0, 0.5, 0.0)


def _positive(seed, shape, k=0):
    return np.abs(_normal(seed, shape, k)) + 0.5


def _inside_unit(seed, shape, k=0):
    return np.tanh(_normal(seed, shape, k)) * 0.95


# -- elementwise -------------------------------------------------------------------------------------------------
UNARY = {
    "neg": (ops.neg, jnp.negative, _normal), "exp": (ops.exp, jnp.exp, _normal),
    "log": (ops.log, jnp.log, _positive), "sqrt": (ops.sqrt, jnp.sqrt, _positive),
    "abs": (ops.abs, jnp.abs, _away_from_zero), "relu": (ops.relu, jax.nn.relu, _away_from_zero),
    "softplus": (ops.softplus, J.softplus, _normal), "sigmoid": (ops.sigmoid, jax.nn.sigmoid, _normal),
    "tanh": (ops.tanh, jnp.tanh, _normal),
    # elementwise math (ops.unary); the step functions' gradient is 0 on both sides
    "log1p": (ops.log1p, jnp.log1p, _positive), "expm1": (ops.expm1, jnp.expm1, _normal),
    "log2": (ops.log2, jnp.log2, _positive), "exp2": (ops.exp2, jnp.exp2, _normal),
    "square": (ops.square, jnp.square, _normal), "reciprocal": (ops.reciprocal, jnp.reciprocal, _away_from_zero),
    "rsqrt": (ops.rsqrt, jax.lax.rsqrt, _positive), "sin": (ops.sin, jnp.sin, _normal),
    "cos": (ops.cos, jnp.cos, _normal), "tan": (ops.tan, jnp.tan, _normal),
    "asin": (ops.asin, jnp.arcsin, _inside_unit), "acos": (ops.acos, jnp.arccos, _inside_unit),
    "atan": (ops.atan, jnp.arctan, _normal), "sinh": (ops.sinh, jnp.sinh, _normal),
    "cosh": (ops.cosh, jnp.cosh, _normal), "atanh": (ops.atanh, jnp.arctanh, _inside_unit),
    "erf": (ops.erf, jax.scipy.special.erf, _normal), "erfc": (ops.erfc, jax.scipy.special.erfc, _normal),
    "sign": (ops.sign, jnp.sign, _away_from_zero), "floor": (ops.floor, jnp.floor, _normal),
    "ceil": (ops.ceil, jnp.ceil, _normal), "round": (ops.round, jnp.round, _normal),
    # activations (F) against the twin (jax_ref.ops); random normals never sit on a kink
    "gelu": (F.gelu, J.gelu, _normal), "gelu_tanh": (lambda t: F.gelu(t, True), lambda t: J.gelu(t, True), _normal),
    "silu": (F.silu, J.silu, _normal), "elu": (lambda t: F.elu(t, 0.7), lambda t: J.elu(t, 0.7), _normal),
    "selu": (F.selu, J.selu, _normal), "celu": (lambda t: F.celu(t, 1.5), lambda t: J.celu(t, 1.5), _normal),
    "softsign": (F.softsign, J.softsign, _normal), "hard_sigmoid": (F.hard_sigmoid, J.hard_sigmoid, _normal),
    "hard_silu": (F.hard_silu, J.hard_silu, _normal), "mish": (F.mish, J.mish, _normal),
    "relu6": (F.relu6, J.relu6, _normal), "log_sigmoid": (F.log_sigmoid, J.log_sigmoid, _normal),
}
UNSCALED = {"exp", "asin", "acos", "atanh"}  # scale 30 would leave their domain (or overflow exp's)


@pytest.mark.parametrize("name", sorted(UNARY))
@examples(2)
@given(shape=shapes(), seed=SEEDS, scale=st.sampled_from([1.0, 30.0]))
def test_unary(name, shape, seed, scale):
    engine, twin, draw = UNARY[name]
    differential(name, engine, twin, draw(seed, shape) * (scale if name not in UNSCALED else 1.0), seed=seed)


@examples(3)
@given(shape=shapes(), seed=SEEDS, slope=st.sampled_from([0.0, 0.01, 0.2, 3.0]))
def test_leaky_relu(shape, seed, slope):
    differential("leaky_relu", lambda x: ops.leaky_relu(x, slope), lambda x: jax.nn.leaky_relu(x, slope),
                 _away_from_zero(seed, shape), seed=seed)


def _broadcast_pair(draw, base):
    """A shape that broadcasts against ``base``: a suffix of it with some axes set to 1."""
    cut = draw(st.integers(0, len(base)))
    return tuple(1 if draw(st.booleans()) else n for n in base[cut:])


@examples(3)
@given(base=shapes(), seed=SEEDS, data=st.data())
def test_prelu(base, seed, data):
    differential("prelu", F.prelu, J.prelu, _normal(seed, base), _normal(seed, _broadcast_pair(data.draw, base), 1),
                 seed=seed)


BINARY = {
    "add": (ops.add, jnp.add, _normal), "sub": (ops.sub, jnp.subtract, _normal),
    "mul": (ops.mul, jnp.multiply, _normal), "div": (ops.div, jnp.divide, _away_from_zero),
    "pow": (lambda a, b: ops.pow(a, b), jnp.power, _normal),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@examples(2)
@given(base=shapes(), seed=SEEDS, data=st.data(), swap=st.booleans())
def test_binary_with_broadcasting(name, base, seed, data, swap):
    other = _broadcast_pair(data.draw, base)
    sa, sb = (other, base) if swap else (base, other)
    engine, twin, draw_b = BINARY[name]
    a = _positive(seed, sa) if name == "pow" else _normal(seed, sa)
    b = draw_b(seed, sb, 1)
    differential(name, engine, twin, a, b, seed=seed)


@examples(4)
@given(shape=shapes(), seed=SEEDS, p=st.sampled_from([-2.0, -0.5, 0.5, 1.5, 2.0, 3, 0]))
def test_pow_scalar(shape, seed, p):
    x = _positive(seed, shape) if not float(p).is_integer() else _away_from_zero(seed, shape)
    differential("pow_scalar", lambda t: t ** p, lambda t: t ** p, x, seed=seed)


@examples(3)
@given(shape=shapes(), seed=SEEDS, lo=st.sampled_from([None, -0.7, 0.1]), hi=st.sampled_from([None, 0.3, 1.1]))
def test_clip(shape, seed, lo, hi):
    assume(lo is not None or hi is not None)
    differential("clip", lambda t: t.clip(lo, hi), lambda t: jnp.clip(t, lo, hi), _normal(seed, shape), seed=seed)


@examples(3)
@given(base=shapes(), seed=SEEDS, data=st.data())
def test_where(base, seed, data):
    cond = np.random.default_rng(seed).random(_broadcast_pair(data.draw, base)) > 0.5
    sb = _broadcast_pair(data.draw, base)
    differential("where", lambda a, b: ops.where(cond, a, b), lambda a, b: jnp.where(cond, a, b),
                 _normal(seed, base), _normal(seed, sb, 1), seed=seed)


# -- reductions --------------------------------------------------------------------------------------------------
AWKWARD_AXES = [((), 0), ((), ()), ((2, 0, 3), 1), ((2, 0, 3), (-1, 0)), ((2, 3), (-1, -2)), ((0,), None)]


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@examples(4)
@given(shape_axis=shapes_and_axes(), seed=st.sampled_from([0, 1]), keepdims=st.booleans())
@fixed_examples("shape_axis", AWKWARD_AXES, seed=1, keepdims=False)
def test_reductions(name, shape_axis, seed, keepdims):
    shape, axis = shape_axis
    differential(name, lambda t: getattr(t, name)(axis=axis, keepdims=keepdims),
                 lambda t: getattr(jnp, name)(t, axis=axis, keepdims=keepdims), _normal(seed, shape), seed=seed)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
@examples(1)
@given(shape=shapes(1), seed=SEEDS, data=st.data(),
       scale=st.sampled_from([1.0, 50.0]))
def test_softmax_family(name, shape, seed, data, scale):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    differential(name, lambda t: getattr(F, name)(t, axis), lambda t: getattr(J, name)(t, axis),
                 _normal(seed, shape) * scale, seed=seed)


# -- movement ----------------------------------------------------------------------------------------------------
@examples(3)
@given(shape=shapes(), seed=SEEDS, data=st.data())
def test_reshape_and_transpose(shape, seed, data):
    perm = tuple(a - len(shape) if data.draw(st.booleans()) else a  # negative axes count from the end
                 for a in data.draw(st.permutations(range(len(shape)))))
    new = tuple(reversed(shape)) + (1,) if data.draw(st.booleans()) else (-1,)
    differential("reshape+transpose", lambda t: t.transpose(perm).reshape(new),
                 lambda t: jnp.reshape(jnp.transpose(t, perm), new), _normal(seed, shape), seed=seed)


@examples(3)
@given(shape=shapes(), seed=SEEDS, data=st.data())
def test_broadcast_to(shape, seed, data):
    small = tuple(1 if data.draw(st.booleans()) else n for n in shape)
    target = (data.draw(DIMS),) + shape
    differential("broadcast_to", lambda t: ops.broadcast_to(t, target), lambda t: jnp.broadcast_to(t, target),
                 _normal(seed, small), seed=seed)


@examples(3)
@given(shape=shapes(1), seed=SEEDS, data=st.data())
def test_pad(shape, seed, data):
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape)
    differential("pad", lambda t: t.pad(widths), lambda t: jnp.pad(t, widths), _normal(seed, shape), seed=seed)


@examples(5)
@given(shape=shapes(1), seed=SEEDS, data=st.data())
def test_getitem(shape, seed, data):
    if data.draw(st.booleans()):  # basic: a slice (maybe reversed or strided) per axis, an int on the first
        index = tuple(slice(data.draw(st.integers(0, max(n - 1, 0))), None, data.draw(st.sampled_from([1, 2, -1])))
                      for n in shape)
        if shape[0] and data.draw(st.booleans()):
            index = (data.draw(st.integers(-shape[0], shape[0] - 1)),) + index[1:]
    else:  # advanced: repeated integer indices on one axis add up in the gradient (none on an empty axis)
        axis = data.draw(st.integers(0, len(shape) - 1))
        idx = np.array(data.draw(st.lists(st.integers(0, shape[axis] - 1), min_size=1, max_size=5))
                       if shape[axis] else [], dtype=np.intp)
        index = (slice(None),) * axis + (idx,)
    differential("getitem", lambda t: t[index], lambda t: t[index], _normal(seed, shape), seed=seed)


@examples(3)
@given(shape=shapes(1), seed=SEEDS, data=st.data(), n=st.integers(1, 3), stack=st.booleans())
def test_concatenate_and_stack(shape, seed, data, n, stack):
    axis = data.draw(st.integers(0, len(shape) - (0 if stack else 1)))
    arrays = [_normal(seed, shape, k) for k in range(n)]
    if stack:
        differential("stack", lambda *ts: ops.stack(ts, axis), lambda *ts: jnp.stack(ts, axis), *arrays, seed=seed)
    else:
        arrays = [a.repeat(k + 1, axis=axis) for k, a in enumerate(arrays)]  # different extents along the axis
        differential("concatenate", lambda *ts: ops.concatenate(ts, axis), lambda *ts: jnp.concatenate(ts, axis),
                     *arrays, seed=seed)


# -- matmul and dense --------------------------------------------------------------------------------------------
@examples(5)
@given(m=DIMS, k=DIMS, n=DIMS, batch=shapes(0, 2), seed=SEEDS, data=st.data(),
       kind=st.sampled_from(["mm", "vec-mat", "mat-vec", "vec-vec", "batched"]))
def test_matmul(m, k, n, batch, seed, data, kind):
    sa, sb = {"mm": ((m, k), (k, n)), "vec-mat": ((k,), (k, n)), "mat-vec": ((m, k), (k,)), "vec-vec": ((k,), (k,)),
              "batched": (batch + (m, k), _broadcast_pair(data.draw, batch) + (k, n))}[kind]
    differential("matmul", ops.matmul, lambda a, b: jnp.matmul(a, b, precision="highest"),
                 _normal(seed, sa), _normal(seed, sb, 1), seed=seed)


@examples(3)
@given(lead=shapes(0, 2), k=DIMS, n=DIMS, seed=SEEDS, bias=st.booleans())
def test_dense(lead, k, n, seed, bias):
    args = [_normal(seed, lead + (k,)), _normal(seed, (k, n), 1)] + ([_normal(seed, (n,), 2)] if bias else [])
    differential("dense", F.dense, J.dense, *args, seed=seed)


# -- losses ------------------------------------------------------------------------------------------------------
@examples(4)
@given(batch=shapes(0, 2), classes=st.integers(2, 4), seed=SEEDS, labels=st.sampled_from(["int", "onehot", "soft"]),
       reduction=st.sampled_from(["mean", "sum", "none"]), from_logits=st.booleans())
def test_cross_entropy(batch, classes, seed, labels, reduction, from_logits):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, classes, batch)
    y = {"int": ids, "onehot": np.eye(classes)[ids], "soft": rng.dirichlet(np.ones(classes), batch)}[labels]
    logits = _normal(seed, batch + (classes,)) if from_logits else rng.dirichlet(np.ones(classes) * 5, batch) + 0.01
    differential("cross_entropy", lambda t: F.cross_entropy(t, y, from_logits, reduction),
                 lambda t: J.cross_entropy(t, y, from_logits, reduction), logits, seed=seed)


@examples(3)
@given(shape=shapes(), seed=SEEDS, reduction=st.sampled_from(["mean", "sum", "none"]))
def test_mse(shape, seed, reduction):
    differential("mse", lambda p, t: F.mse(p, t, reduction), lambda p, t: J.mse(p, t, reduction),
                 _normal(seed, shape), _normal(seed, shape, 1), seed=seed)


# -- conv family -------------------------------------------------------------------------------------------------
def _geometry(draw, rank, allow_stride_and_dilation=True):
    ks = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    strides = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    if not allow_stride_and_dilation and max(strides) > 1:
        dil = (1,) * rank
    return ks, strides, dil


def _spatial(draw, ks, dil, padding):
    """Spatial sizes that give every axis at least one output cell for ``padding``."""
    out = []
    for k, d in zip(ks, dil, strict=True):
        need = 1 if padding in ("same", "causal") else effective_kernel_size(k, d)
        if isinstance(padding, tuple):
            need = max(1, effective_kernel_size(k, d) - sum(padding[len(out)]))
        out.append(need + draw(st.integers(0, 2)))
    return tuple(out)


def _layout(shape_spatial, batch, channels, fmt):
    return (batch, *shape_spatial, channels) if fmt == "channels_last" else (batch, channels, *shape_spatial)


@examples(6)
@given(rank=st.sampled_from([1, 2, 2, 3]), seed=SEEDS, data=st.data(),
       fmt=st.sampled_from(["channels_last", "channels_first"]), bias=st.booleans())
def test_conv(rank, seed, data, fmt, bias):
    ks, strides, dil = _geometry(data.draw, rank)
    modes = ["valid", "same"] + (["causal"] if rank == 1 else []) + ["explicit"]
    padding = data.draw(st.sampled_from(modes))
    if padding == "explicit":
        padding = tuple((data.draw(st.integers(0, 1)), data.draw(st.integers(0, 1))) for _ in range(rank))
    groups = data.draw(st.sampled_from([1, 2]))
    cin, filters = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    x = _normal(seed, _layout(_spatial(data.draw, ks, dil, padding), data.draw(st.integers(1, 2)), cin, fmt))
    args = [x, _normal(seed, ks + (cin // groups, filters), 1)] + ([_normal(seed, (filters,), 2)] if bias else [])
    kw = dict(strides=strides, padding=padding, dilation_rate=dil, groups=groups, data_format=fmt)
    if not bias:
        kw["bias"] = None
    differential(f"conv{rank}d", lambda *t: F.conv(*t, **kw), lambda *t: J.conv(*t, **kw), *args, seed=seed)


@examples(2)
@given(seed=SEEDS, data=st.data(), fmt=st.sampled_from(["channels_last", "channels_first"]))
def test_depthwise_conv2d(seed, data, fmt):
    ks, strides, dil = _geometry(data.draw, 2)
    padding = data.draw(st.sampled_from(["valid", "same"]))
    cin, mult = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    x = _normal(seed, _layout(_spatial(data.draw, ks, dil, padding), 2, cin, fmt))
    kw = dict(strides=strides, padding=padding, dilation_rate=dil, data_format=fmt)
    differential("depthwise_conv2d", lambda a, k, b: F.depthwise_conv2d(a, k, b, **kw),
                 lambda a, k, b: J.depthwise_conv2d(a, k, b, **kw),
                 x, _normal(seed, ks + (cin, mult), 1), _normal(seed, (cin * mult,), 2), seed=seed)


@examples(3)
@given(rank=st.sampled_from([1, 2]), seed=SEEDS, data=st.data(),
       fmt=st.sampled_from(["channels_last", "channels_first"]))
def test_conv_transpose(rank, seed, data, fmt):
    ks, strides, dil = _geometry(data.draw, rank, allow_stride_and_dilation=False)
    padding = data.draw(st.sampled_from(["valid", "same"]))
    output_padding = None
    if data.draw(st.booleans()):
        output_padding = tuple(data.draw(st.integers(0, s - 1)) for s in strides)
    cin, filters = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x = _normal(seed, _layout(tuple(data.draw(DIMS) for _ in range(rank)), 2, cin, fmt))
    kw = dict(strides=strides, padding=padding, output_padding=output_padding, dilation_rate=dil, data_format=fmt)
    try:
        F.conv_transpose(x, _normal(seed, ks + (filters, cin), 1), **kw)
    except ValueError:
        assume(False)  # an output with no cells (e.g. 'same' with output_padding 0 and a 1-cell input)
    differential(f"conv{rank}d_transpose", lambda a, k, b: F.conv_transpose(a, k, b, **kw),
                 lambda a, k, b: J.conv_transpose(a, k, b, **kw),
                 x, _normal(seed, ks + (filters, cin), 1), _normal(seed, (filters,), 2), seed=seed)


# -- pooling -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["max_pool", "avg_pool", "lp_pool"])
@examples(2)
@given(rank=st.sampled_from([1, 2, 2, 3]), seed=SEEDS,
       data=st.data(), fmt=st.sampled_from(["channels_last", "channels_first"]))
def test_pools(name, rank, seed, data, fmt):
    pool = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    strides = None if data.draw(st.booleans()) else tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    padding = data.draw(st.sampled_from(["valid", "same"]))
    spatial = _spatial(data.draw, pool, (1,) * rank, padding)
    x = _normal(seed, _layout(spatial, 2, data.draw(st.integers(1, 2)), fmt))
    kw = dict(strides=strides, padding=padding, data_format=fmt)
    if name == "lp_pool":
        kw["p"] = data.draw(st.sampled_from([1, 2, 3, 1.5]))
    differential(f"{name}{rank}d", lambda t: getattr(F, name)(t, pool, **kw),
                 lambda t: getattr(J, name)(t, pool, **kw), x, seed=seed)


@examples(3)
@given(name=st.sampled_from(["global_max_pool", "global_avg_pool"]), rank=st.sampled_from([1, 2, 3]), seed=SEEDS,
       data=st.data(), fmt=st.sampled_from(["channels_last", "channels_first"]), keepdims=st.booleans())
def test_global_pools(name, rank, seed, data, fmt, keepdims):
    x = _normal(seed, _layout(tuple(data.draw(DIMS) for _ in range(rank)), 2, data.draw(DIMS), fmt))
    differential(name, lambda t: getattr(F, name)(t, fmt, keepdims), lambda t: getattr(J, name)(t, fmt, keepdims),
                 x, seed=seed)


# -- shape ops and pad modes -------------------------------------------------------------------------------------
def _awkward_input(draw, seed, min_rank=0):
    """An input drawn with the awkward cases: maybe one axis of size 0, and a view the op is applied to
    (as is, transposed, or every other row of a twice-as-long array), so the op may see non-contiguous data.
    Returns the array and the view (a function that works on Tensors and jax arrays alike)."""
    shape = list(draw(shapes(min_rank)))
    if shape and draw(st.booleans()):
        shape[draw(st.integers(0, len(shape) - 1))] = 0
    view = draw(st.sampled_from(["plain", "transposed", "strided"] if shape else ["plain"]))
    if view == "transposed":
        return _normal(seed, shape[::-1]), lambda t: t.transpose(tuple(reversed(range(t.ndim))))
    if view == "strided":
        return _normal(seed, [2 * shape[0]] + shape[1:]), lambda t: t[::2]
    return _normal(seed, shape), lambda t: t


def _an_axis(draw, ndim):
    return draw(st.integers(-ndim, ndim - 1))


def _axes_or_none(draw, ndim):
    return None if ndim == 0 or draw(st.booleans()) else \
        tuple(draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda a: a % ndim)))


def _shape_op(name, draw, shape):
    """(method arguments, jax.numpy arguments) for shape op ``name`` on ``shape``, drawn (None: not applicable)."""
    ndim = len(shape)
    if name == "squeeze":
        ones = [a - ndim * draw(st.booleans()) for a, n in enumerate(shape) if n == 1]
        axis = None if not ones or draw(st.booleans()) else tuple(ones)
        return (axis,), (axis,)
    if name == "expand_dims":
        axis = draw(st.integers(-ndim - 1, ndim))
        return (axis,), (axis,)
    if name == "flip":
        axis = _axes_or_none(draw, ndim)
        return (axis,), (axis,)
    if name == "roll":
        shift, axis = draw(st.integers(-5, 5)), None if ndim == 0 or draw(st.booleans()) else _an_axis(draw, ndim)
        return (shift, axis), (shift, axis)
    if name == "repeat":
        axis = None if ndim == 0 or draw(st.booleans()) else _an_axis(draw, ndim)
        n = int(np.prod(shape)) if axis is None else shape[axis]
        counts = draw(st.integers(0, 3)) if draw(st.booleans()) else \
            np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=int)
        return (counts, axis), (counts, axis)
    if name == "tile":
        reps = tuple(draw(st.lists(st.integers(0, 2), max_size=3)))
        return (reps,), (reps,)
    if name == "expand":
        sizes = [draw(st.sampled_from([-1, 2])) if n == 1 else draw(st.sampled_from([-1, n])) for n in shape]
        lead = draw(st.lists(st.integers(0, 2), max_size=1))
        target = tuple(lead) + tuple(n if s == -1 else s for n, s in zip(shape, sizes, strict=True))
        return (tuple(lead + sizes),), ("broadcast_to", target)
    if name == "moveaxis":
        src = _axes_or_none(draw, ndim) if ndim else None
        if src is None:
            return None
        dst = tuple(draw(st.permutations(range(ndim)))[:len(src)])
        return (src, dst), (src, dst)
    if ndim == 0:  # swapaxes
        return None
    axes = (_an_axis(draw, ndim), _an_axis(draw, ndim))
    return axes, axes


@pytest.mark.parametrize("name", ["squeeze", "expand_dims", "flip", "roll", "repeat", "tile", "expand", "moveaxis",
                                  "swapaxes"])
@examples(3)
@given(seed=SEEDS, data=st.data())
def test_shape_ops(name, seed, data):
    x, view = _awkward_input(data.draw, seed)
    args = _shape_op(name, data.draw, view(x).shape)
    assume(args is not None)
    ours, theirs = args
    jax_name, theirs = (theirs[0], theirs[1:]) if isinstance(theirs[0], str) else (name, theirs)
    differential(name, lambda t: getattr(view(t), name)(*ours), lambda t: getattr(jnp, jax_name)(view(t), *theirs),
                 x, seed=seed)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@examples(4)
@given(seed=SEEDS, data=st.data(), value=st.sampled_from([0.0, -1.5]))
def test_pad_modes_and_crops(mode, seed, data, value):
    x, view = _awkward_input(data.draw, seed, min_rank=1)
    shape = view(x).shape
    widths = tuple((data.draw(st.integers(-2, 3)), data.draw(st.integers(-2, 3))) for _ in shape)
    assume(all(n + b + a >= 1 or min(b, a) >= 0 for n, (b, a) in zip(shape, widths, strict=True)))
    assume(mode == "constant" or all(n or max(b, a) <= 0 for n, (b, a) in zip(shape, widths, strict=True)))
    grow = [(max(b, 0), max(a, 0)) for b, a in widths]
    kwargs = {"constant_values": value} if mode == "constant" else {}

    def reference(t):  # pad with the positive widths, then crop the negative ones
        padded = jnp.pad(view(t), grow, mode=mode, **kwargs)
        return padded[tuple(slice(-min(b, 0), m + min(a, 0)) for (b, a), m in zip(widths, padded.shape, strict=True))]

    differential(f"pad_{mode}", lambda t: view(t).pad(widths, mode, **kwargs), reference, x, seed=seed)


@pytest.mark.parametrize("kind", ["sections", "indices", "chunk"])
@examples(2)
@given(seed=SEEDS, data=st.data())
def test_split_and_chunk(seed, data, kind):
    x, view = _awkward_input(data.draw, seed, min_rank=1)
    shape = view(x).shape
    axis = _an_axis(data.draw, len(shape))
    n = shape[axis]
    if kind == "sections":
        arg = data.draw(st.sampled_from([k for k in range(1, 4) if n % k == 0]))
        cuts = arg
    elif kind == "indices":
        arg = cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    else:
        arg = data.draw(st.integers(1, 4))
        size = -(-n // arg)
        cuts = list(range(size, n, size)) if n else arg

    def joined(pieces, cat, flat):
        return cat([flat(p) * (k + 1.0) for k, p in enumerate(pieces)])

    differential(f"split_{kind}",
                 lambda t: joined(getattr(view(t), "chunk" if kind == "chunk" else "split")(arg, axis),
                                  ops.concatenate, lambda p: p.reshape(-1)),
                 lambda t: joined(jnp.split(view(t), cuts, axis), jnp.concatenate, jnp.ravel), x, seed=seed)
# -- reductions and indexing along an axis (prod, var/std, cumulative ops, extrema, gathers, sorting) --------------
def _with_zeros(seed, shape):
    """Normals with about a third of the entries exactly 0 (the case a division-based prod/cumprod vjp gets wrong)."""
    x = _normal(seed, shape)
    return np.where(np.random.default_rng([seed, 9]).random(shape) < 0.35, 0.0, x)


def _one_axis(draw, ndim, none=True):
    """None (if allowed) or an int axis, negative half the time; for rank 0 also 0, which must be refused."""
    choices = ([None] if none else []) + (list(range(-ndim, ndim)) if ndim else [0])
    return draw(st.sampled_from(choices))


@pytest.mark.parametrize("name", ["prod", "var", "std"])
@examples(4)
@given(shape_axis=shapes_and_axes(), seed=st.sampled_from([0, 1]), keepdims=st.booleans(),
       ddof=st.sampled_from([0, 1, 2]))
@fixed_examples("shape_axis", AWKWARD_AXES, seed=1, keepdims=False, ddof=1)
def test_prod_var_std(name, shape_axis, seed, keepdims, ddof):
    shape, axis = shape_axis
    kw = dict(keepdims=keepdims) if name == "prod" else dict(keepdims=keepdims, ddof=ddof)
    x = _with_zeros(seed, shape) if name == "prod" else _normal(seed, shape)
    differential(name, lambda t: getattr(t, name)(axis=axis, **kw), lambda t: getattr(jnp, name)(t, axis=axis, **kw),
                 x, seed=seed)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@examples(4)
@given(shape=shapes(), seed=SEEDS, data=st.data())
def test_cumulative(name, shape, seed, data):
    axis = _one_axis(data.draw, len(shape))
    x = _with_zeros(seed, shape) if name == "cumprod" else _normal(seed, shape)
    differential(name, lambda t: getattr(t, name)(axis), lambda t: getattr(jnp, name)(t, axis), x, seed=seed)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@examples(3)
@given(base=shapes(), seed=SEEDS, data=st.data(), swap=st.booleans())
def test_maximum_minimum(name, base, seed, data, swap):
    other = _broadcast_pair(data.draw, base)
    sa, sb = (other, base) if swap else (base, other)
    differential(name, lambda a, b: getattr(a, name)(b), getattr(jnp, name), _normal(seed, sa), _normal(seed, sb, 1),
                 seed=seed)


@pytest.mark.parametrize("name", ["argmax", "argmin", "any", "all"])
@examples(4)
@given(shape=shapes(), seed=SEEDS, data=st.data(), keepdims=st.booleans())
def test_gradient_free_reductions(name, shape, seed, data, keepdims):
    """Values and dtype kind as ``jnp`` (an integer or a boolean result, outside the graph); refusals as JAX's."""
    axis = _one_axis(data.draw, len(shape)) if name.startswith("arg") else axes(data.draw, len(shape))
    x = _with_zeros(seed, shape)
    t = tg.Tensor(x, requires_grad=True)
    try:
        ref = getattr(jnp, name)(x, axis=axis, keepdims=keepdims)
    except (TypeError, ValueError, IndexError):
        with pytest.raises((TypeError, ValueError, IndexError), match=rf"^{name}: "):
            getattr(t, name)(axis=axis, keepdims=keepdims)
        return
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    assert not out.requires_grad and out.dtype.kind == np.asarray(ref).dtype.kind
    np.testing.assert_array_equal(out.data, ref)


@examples(5)
@given(shape=shapes(1), seed=SEEDS, data=st.data(), torch_gather=st.booleans())
def test_take_along_axis_and_gather(shape, seed, data, torch_gather):
    """Random indices, repeated ones included (their cotangents add up); negative ones for take_along_axis; index
    extents on the other axes: 1 (broadcast) for take_along_axis, at most x's for gather."""
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    extents = [data.draw(st.integers(0, 3)) if d == axis % len(shape) else
               data.draw(st.integers(1, m) if torch_gather and m else st.sampled_from([1, m]))
               for d, m in enumerate(shape)]
    if n == 0:
        extents[axis] = 0
    idx = np.random.default_rng(seed).integers(0 if torch_gather else -n, max(n, 1), extents)
    x = _normal(seed, shape)
    if torch_gather:
        part = tuple(slice(0, k) if d != axis % len(shape) else slice(None) for d, k in enumerate(extents))
        differential("gather", lambda t: t.gather(axis, idx), lambda t: jnp.take_along_axis(t[part], idx, axis),
                     x, seed=seed)
    else:
        differential("take_along_axis", lambda t: ops.take_along_axis(t, idx, axis),
                     lambda t: jnp.take_along_axis(t, idx, axis), x, seed=seed)


@examples(8)
@given(shape=shapes(), seed=SEEDS, data=st.data(), descending=st.booleans())
def test_sort_and_topk(shape, seed, data, descending):
    """sort along any axis (None: flattened), and topk on the axis moved last for ``jax.lax.top_k``."""
    x = _normal(seed, shape)
    if not shape or data.draw(st.booleans()):
        axis = _one_axis(data.draw, len(shape))
        differential("sort", lambda t: t.sort(axis, descending), lambda t: jnp.sort(t, axis, descending=descending),
                     x, seed=seed)
        return
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = data.draw(st.integers(0, shape[axis]))

    def top_k(t):
        values = jax.lax.top_k(jnp.moveaxis(t if descending else -t, axis, -1), k)[0]
        return jnp.moveaxis(values if descending else -values, -1, axis)

    differential("topk", lambda t: t.topk(k, axis, largest=descending)[0], top_k, x, seed=seed)


@examples(2)
@given(shape=shapes(1, empty=False), seed=SEEDS, data=st.data(), keepdims=st.booleans())
def test_logsumexp_method(shape, seed, data, keepdims):
    """Non-empty shapes: F.logsumexp over an empty axis is a known defect (``test_reductions_vs_jax``, xfail)."""
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    differential("Tensor.logsumexp", lambda t: t.logsumexp(axis, keepdims),
                 lambda t: jax.nn.logsumexp(t, axis, keepdims=keepdims), _normal(seed, shape) * 10, seed=seed)
