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
from jax_ref.train import check_data
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

    Args:
        name: an op of both ``tinygrad_cnn.functional`` and ``jax_ref.ops`` (e.g. ``"conv2d"``).
        *args, **kwargs: the op's arguments.
        dtype: default float64, the dtype float arguments are cast to.
        seed: int, default 0, for the cotangent v.
        rtol: float or None (default ``Report``'s, ``gradcheck.FINE_WITH_KINKS``).

    Raises:
        ValueError: ``name`` is not an op of both.
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


def _engine_nodes(engine):
    """The engine's layer calls in graph order (the InputLayer nodes left out), as ``from_engine`` walks them."""
    inputs = {id(t) for t in engine.inputs}
    return [node for node in engine._nodes if id(node.output) not in inputs]


def _engine_gradients(engine, xs, y, loss, training, regularization):
    """Engine loss, weight gradients (Keras order) and, per node (in graph order), what its backward pass sends
    to each of its inputs, ``vjp_node(dL/d output)``; all from one backward pass.

    The layers are called one by one (unfused) in graph order, each on its own copies of its inputs (times 1.0,
    exact): the gradient with respect to a copy is that node's backward alone, not the sum over every reader of
    the same value.
    """
    leaves = [Tensor(a, requires_grad=True) for a in xs]
    env = {id(t): v for t, v in zip(engine.inputs, leaves, strict=True)}
    copies, activity = [], []
    for node in _engine_nodes(engine):
        args = [env[id(t)] * 1.0 for t in node.inputs]
        env[id(node.output)] = node.layer(args if node.layer.takes_list else args[0], training=training)
        activity += node.layer._activity_losses  # one penalty per call (Keras' rule)
        copies.append(args)
    outs = [env[id(t)] for t in engine.outputs]
    ys = list(y) if len(outs) > 1 else [y]
    fn = engine_loss_function(loss)
    total = fn(outs[0], ys[0])
    for out, target in zip(outs[1:], ys[1:], strict=True):
        total = total + fn(out, target)
    if regularization:
        for layer in engine._layers:
            for penalty in layer.losses[:len(layer.losses) - len(layer._activity_losses)]:  # the weight penalties
                total = total + penalty
        for penalty in activity:
            total = total + penalty
    weights = engine.weights
    flat = [a for args in copies for a in args]
    grads = tinygrad_cnn.grad(total, weights + flat)
    w_grads, rest = grads[:len(weights)], iter(grads[len(weights):])
    return float(total.item()), w_grads, [[next(rest) for _ in args] for args in copies]


def _twin_gradients(twin, xs, y, loss, training, regularization):
    """Twin loss, weight gradients and per-node contributions (as ``_engine_gradients``), by one backward pass
    through zero ``input_taps``."""
    shapes = jax.eval_shape(lambda p, s, xx: twin.run(p, s, xx, training)[1], twin.params, twin.state, xs)
    taps = {name: [jnp.asarray(np.zeros(a.shape, a.dtype)) for a in (v if isinstance(v, list) else [v])]
            for name, v in shapes.items()}  # host zeros: no XLA compile per tap shape

    def total(params, tt):
        return twin.loss_with_state(params, twin.state, xs, y, loss, training, None, regularization,
                                    input_taps=tt)[0]

    value, (gp, gt) = jax.jit(jax.value_and_grad(total, argnums=(0, 1)))(twin.params, taps)
    return value, gp, gt


def compare_gradients(model, x, y, loss="cross_entropy", dtype=np.float64, training=False, regularization=True,
                      rtol: float | None = None) -> Report:
    """Engine vs JAX gradients of ``loss(model(x), y)`` (+ penalties) for every weight and, per node of the
    graph, what its backward pass sends to each of its inputs.

    ``model``: any engine model (a graph ``Model`` or a ``Sequential``); ``x`` one array or a list (one per
    model input); ``y`` the targets (a list for several outputs, whose losses add). The engine model is cloned
    and cast to ``dtype`` (float64 by default, with ``jax_enable_x64`` on inside and restored afterwards); the
    user's model is untouched. ``training=True`` compares training mode (BatchNormalization on batch statistics).
    Rows run from the loss backwards through the nodes in reverse graph order: for each node, the weights of
    its layer (at the layer's first call, where a shared layer's gradient is complete), then ``<node> input``
    (``<node> input <j>`` for a merge) = ``vjp_node(dL/d output)``: that node's backward applied to the
    cotangent arriving at its output. Every row depends only on the rows before it and the node it names, so
    ``report.suspect`` (the first failing row) names the layer where a wrong gradient enters.
    ``loss``: any name of the engine's registry ``tinygrad_cnn.nn.losses.LOSSES`` (``"cross_entropy"`` on logits,
    Keras' names with Keras' meaning), a Keras class name, a config dict or an ``nn.losses.Loss``.

    Args:
        model: an engine ``Model`` or ``Sequential`` (built); not modified.
        x: one input array (or a list, one per model input).
        y: the targets (a list for several outputs).
        loss: a loss name or object, default ``"cross_entropy"`` (logits, integer labels).
        dtype: default float64, the precision both sides run in.
        training: bool, default False: compare training mode (refused with Dropout-like random layers).
        regularization: bool, default True: include the layers' weight penalties in the loss.
        rtol: float or None (default ``Report``'s, ``gradcheck.FINE_WITH_KINKS``): a row passes when its
            relative error is at most it.

    Returns:
        A ``Report``: printing it gives the table; ``.passed``, ``.max_rel_error``, ``.suspect`` (the first
        failing row), ``.entries``.

    Raises:
        ValueError: ``training=True`` with a random layer, or data that does not fit the model.
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
        twin = from_engine(engine)
        x, y = check_data("compare_gradients", twin, x, y, loss)  # the engine's checks (empty batch, labels)
        xs = [np.asarray(a, dtype) for a in (x if twin.multiple_inputs else [x])]
        y = jax.tree_util.tree_map(
            lambda t: np.asarray(t) if np.issubdtype(np.asarray(t).dtype, np.integer) else np.asarray(t, dtype), y)
        loss_value, w_grads, contributions = _engine_gradients(engine, xs, y, loss, training, regularization)
        twin_loss, gp, twin_contributions = _twin_gradients(twin, xs if twin.multiple_inputs else xs[0], y, loss,
                                                            training, regularization)
    report = Report(f"compare_gradients {getattr(model, 'name', 'model')} ({dtype}, loss={loss!r}, "
                    f"batch {xs[0].shape[0]}{', training' if training else ''})")
    if rtol is not None:
        report.rtol = rtol
    report.entries.append(compare_arrays("loss", "forward", np.array(loss_value), np.asarray(twin_loss)))
    slots = [(info.name, w) for info in twin.layers for w in info.engine_weight_names]
    w_by_slot = dict(zip(slots, w_grads, strict=True))
    first_call = {}
    for node in twin.nodes:
        first_call.setdefault(node.layer.name, node.name)
    for node, engine_in in zip(reversed(twin.nodes), reversed(contributions), strict=True):
        info = node.layer
        if first_call[info.name] == node.name:
            for w in (w for w in info.weight_names if w not in info.frozen_weights):  # frozen: no engine grad
                report.entries.append(compare_arrays(f"{info.name}.{w}", "weight grad",
                                                     w_by_slot[(info.name, w)].data, np.asarray(gp[info.name][w])))
        for j, (ge, gt) in enumerate(zip(engine_in, twin_contributions[node.name], strict=True)):
            label = f"{node.name} input" + (f" {j}" if node.takes_list else "")
            report.entries.append(compare_arrays(label, f"{info.class_name} backward", ge.data, np.asarray(gt)))
    return report


def assert_gradients_match(model, x, y, loss="cross_entropy", rtol: float | None = None, **kwargs) -> Report:
    """``compare_gradients`` that raises ``AssertionError`` with the report's table unless every row passes.

    Args:
        model, x, y, loss, rtol: as :func:`compare_gradients`.
        **kwargs: the other arguments of :func:`compare_gradients` (``dtype``, ``training``, ``regularization``).

    Returns:
        The passing ``Report``.

    Raises:
        AssertionError: some row failed (the message is the table).
    """
    report = compare_gradients(model, x, y, loss, rtol=rtol, **kwargs)
    if not report.passed:
        raise AssertionError(str(report))
    return report


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
