"""Engine vs JAX, number by number: one op (``check_op``) or a whole model's gradients (``compare_gradients``).

Both run in float64 by default (``jax_enable_x64`` switched on inside and
restored afterwards). Gradients are vector-Jacobian products with a seeded
random cotangent ``v`` (never all ones): for ``y = f(x_1, ..., x_n)`` the
engine's ``grad(y, x_i, v)`` is compared with ``jax.vjp(f, ...)[1](v)[i]``.
Errors and grades are those of ``jax_ref._report`` (the gradient checker's scale).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

import tinygrad_cnn
from jax_ref import ops as jops
from jax_ref._report import Report, compare_arrays, float64
from jax_ref.losses import engine_loss_function
from jax_ref.model import from_engine
from jax_ref.parity import clone_engine
from tinygrad_cnn import functional as F
from tinygrad_cnn.tensor import Tensor

# Arguments that are data, not differentiable inputs, on the engine's side.
_NON_DIFFERENTIABLE = {"cross_entropy": {"labels"}}


def _is_float_array(v) -> bool:
    if isinstance(v, Tensor):
        v = v.data
    return isinstance(v, (np.ndarray, jax.Array)) and np.issubdtype(np.asarray(v).dtype, np.floating)


def _config_text(bound: dict, diff: list) -> str:
    parts = []
    for k, v in bound.items():
        if k in diff or _is_float_array(v):
            parts.append(f"{k}{tuple(np.shape(v))}")
        elif isinstance(v, np.ndarray):
            parts.append(f"{k}=<{v.dtype}{v.shape}>")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


def check_op(name: str, *args, dtype=np.float64, seed: int = 0, rtol: float | None = None, **kwargs) -> Report:
    """Run ``tinygrad_cnn.functional.<name>`` and ``jax_ref.ops.<name>`` on the same arguments and compare.

    Float arrays among the arguments (positional or keyword, e.g. ``x``,
    ``kernel``, ``bias``) are differentiable inputs, cast to ``dtype``; other
    arguments (ints, strings, integer labels) are passed unchanged to both.
    Rows: the output, then ``d<v, y>/d<input>`` for every differentiable input,
    with ``v`` a standard-normal cotangent drawn from ``seed``. Returns a
    ``Report`` (``.max_rel_error``, ``.grade``, ``.passed``; prints a table).
    """
    if not hasattr(jops, name) or not hasattr(F, name):
        have = sorted(set(jops.__all__) & set(getattr(F, "__all__", dir(F))))
        raise ValueError(f"check_op: name={name!r} is not an op of both tinygrad_cnn.functional and jax_ref.ops; "
                         f"have {have}")
    engine_fn, twin_fn = getattr(F, name), getattr(jops, name)
    bound = inspect.signature(twin_fn).bind(*args, **kwargs).arguments
    skip = _NON_DIFFERENTIABLE.get(name, set())
    diff = [k for k, v in bound.items() if k not in skip and _is_float_array(v)]
    arrays = {k: np.asarray(bound[k].data if isinstance(bound[k], Tensor) else bound[k], dtype) for k in diff}
    title = f"check_op {name}({_config_text(bound, diff)})"
    with float64():
        # engine
        leaves = {k: Tensor(arrays[k].copy(), requires_grad=True) for k in diff}
        y = engine_fn(**{**bound, **leaves})
        v = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
        engine_grads = tinygrad_cnn.grad(y, [leaves[k] for k in diff], grad_output=v) if y.requires_grad else \
            [Tensor(np.zeros_like(arrays[k])) for k in diff]

        # twin
        def f(*xs):
            return twin_fn(**{**bound, **dict(zip(diff, xs, strict=True))})

        @jax.jit
        def forward_and_vjp(xs, cotangent):  # one compile per configuration
            out, pullback = jax.vjp(f, *xs)
            return out, pullback(cotangent.astype(out.dtype))

        y_twin, twin_grads = forward_and_vjp(tuple(jnp.asarray(arrays[k]) for k in diff), jnp.asarray(v))
    report = Report(title) if rtol is None else Report(title, rtol=rtol)
    report.entries.append(compare_arrays("output", "forward", y.data, np.asarray(y_twin)))
    for k, ge, gt in zip(diff, engine_grads, twin_grads, strict=True):
        report.entries.append(compare_arrays(f"d/d{k}", "vjp", ge.data, np.asarray(gt)))
    return report


def _engine_gradients(engine, x, y, loss, training, regularization):
    """Engine loss and gradients for every weight and every layer input, by one backward pass."""

    h = Tensor(x, requires_grad=True)
    layer_inputs = []
    for layer in engine.layers:
        layer_inputs.append(h)
        h = layer(h, training=training)
    total = engine_loss_function(loss)(h, y)
    if regularization:
        for penalty in engine.losses:
            total = total + penalty
    weights = [w for layer in engine.layers for w in layer.weights]
    grads = tinygrad_cnn.grad(total, weights + layer_inputs)
    return float(total.item()), grads[:len(weights)], grads[len(weights):]


def compare_gradients(model, x, y, loss="cross_entropy", dtype=np.float64, training=False, regularization=True,
                      rtol: float | None = None) -> Report:
    """Engine vs JAX gradients of ``loss(model(x), y)`` (+ penalties) for every weight and every layer's input.

    The engine model is cloned and cast to ``dtype`` (float64 by default, with
    ``jax_enable_x64`` on inside and restored afterwards); the user's model is
    untouched. Rows run from the loss backwards: for each layer (last first)
    its weights, then ``<layer> input`` = d loss / d (that layer's input),
    the cotangent that layer's backward pass produced. ``report.suspect`` is
    the first failing row in that order: where a wrong gradient enters.
    ``loss``: any name of the engine's registry ``tinygrad_cnn.nn.losses.LOSSES`` (``"cross_entropy"`` on logits,
    Keras' names with Keras' meaning), a Keras class name, a config dict or an ``nn.losses.Loss``.
    """
    random = [layer for layer in model.layers if getattr(layer, "random_in_training", False)]
    if training and random:
        raise ValueError(f"compare_gradients: training=True with {type(random[0]).__name__} {random[0].name!r} "
                         f"would compare different random draws (NumPy in the engine, jax.random in the twin); "
                         f"use training=False")
    dtype = np.dtype(dtype)
    ctx = float64() if dtype == np.float64 else _nullcontext()
    with ctx:
        engine = clone_engine(model, dtype)
        x = np.asarray(x, dtype)
        y = np.asarray(y) if np.issubdtype(np.asarray(y).dtype, np.integer) else np.asarray(y, dtype)
        loss_value, w_grads, in_grads = _engine_gradients(engine, x, y, loss, training, regularization)
        twin = from_engine(engine)
        shapes = jax.eval_shape(lambda p, xx: twin.apply(p, xx, capture=True)[1]["outputs"], twin.params, x)
        taps = {name: jnp.asarray(np.zeros(s.shape, s.dtype)) for name, s in shapes.items()}  # no compile per shape

        def f(params, xx, tt):
            return twin.loss(params, xx, y, loss, training, None, regularization, taps=tt)

        twin_loss, (gp, gx, gt) = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))(twin.params, jnp.asarray(x), taps)
    report = Report(f"compare_gradients {getattr(model, 'name', 'model')} ({dtype}, loss={loss!r}, "
                    f"batch {x.shape[0]})")
    if rtol is not None:
        report.rtol = rtol
    report.entries.append(compare_arrays("loss", "forward", np.array(loss_value), np.asarray(twin_loss)))
    slots = [(info, w) for info in twin.layers for w in info.weight_names]
    w_by_slot = {(info.name, w): g for (info, w), g in zip(slots, w_grads, strict=True)}
    for k in range(len(twin.layers) - 1, -1, -1):
        info = twin.layers[k]
        for w in info.weight_names:
            report.entries.append(compare_arrays(f"{info.name}.{w}", "weight grad", w_by_slot[(info.name, w)].data,
                                                 np.asarray(gp[info.name][w])))
        ref = gx if k == 0 else gt[twin.layers[k - 1].name]
        report.entries.append(compare_arrays(f"{info.name} input", f"{info.class_name} backward",
                                             in_grads[k].data, np.asarray(ref)))
    return report


def assert_gradients_match(model, x, y, loss="cross_entropy", rtol: float | None = None, **kwargs) -> Report:
    """``compare_gradients`` that raises ``AssertionError`` with the report's table unless every row passes."""
    report = compare_gradients(model, x, y, loss, rtol=rtol, **kwargs)
    if not report.passed:
        raise AssertionError(str(report))
    return report


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
