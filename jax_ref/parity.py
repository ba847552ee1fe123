"""Side-by-side training: the engine (``tinygrad_cnn.optim``) and its JAX twin (optax) on the same batches.

Both start from the same weights (the engine model is cloned, optionally cast
to ``dtype``, so the user's model is untouched), see the batches of
``batch_schedule(n, batch_size, steps, seed=seed)`` and minimise the same loss
(plus regularization penalties); the engine projects constraints after each
step as ``fit`` does. Dropout is off (``training=False``) by
default, because the engine draws its masks with NumPy and the twin with
``jax.random``: with dropout on the two runs are different experiments.

The engine objects the twin's checks run on are built here: ``clone_engine``
(a copy of the engine model, cast) and ``engine_optimizer`` (the engine's
optimizer for an optax name, from the one table ``tinygrad_cnn.optim.OPTIMIZERS``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import jax
import numpy as np

from jax_ref._report import float64
from jax_ref.losses import engine_loss_function
from jax_ref.model import from_engine
from jax_ref.train import batch_schedule, check_counts, check_data, train
from tinygrad_cnn import optim


@dataclass
class ParityResult:
    """What ``parity`` returns: both loss curves and how far the engine and optax runs drifted apart.

    Attributes:
        engine_losses, jax_losses: the per-step training losses, shape ``(steps,)``.
        max_rel_loss_deviation: ``max_t |engine_t - jax_t| / max(|jax_t|, tiny)``.
        max_rel_param_deviation: the largest relative deviation of the trained parameters.
        engine_params, jax_params: the final weights (every weight of the engine model in its order,
            moving statistics included).
        max_rel_state_deviation: the same for the layer state (moving statistics; 0 without any).
    """

    engine_losses: np.ndarray
    jax_losses: np.ndarray
    max_rel_loss_deviation: float
    max_rel_param_deviation: float
    engine_params: list
    jax_params: list
    max_rel_state_deviation: float = 0.0

    def __str__(self):
        return (f"parity over {len(self.engine_losses)} steps: loss curves differ by at most "
                f"{self.max_rel_loss_deviation:.2e} (relative), final parameters by "
                f"{self.max_rel_param_deviation:.2e} and layer state by {self.max_rel_state_deviation:.2e} "
                f"(max |a-b| / max |b| per tensor, see _tensor_dev)")


def _tensor_dev(a, b) -> float:
    """``max |a - b| / max |b|``, the denominator at least ``sqrt(eps)`` of the dtype: a tensor that stays at
    rounding noise (a bias before a BatchNormalization in training, whose gradient is exactly 0) is measured
    absolutely, not as noise over noise."""
    if not np.size(b):
        return 0.0
    floor = float(np.sqrt(np.finfo(np.result_type(b.dtype, np.float32)).eps))
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), floor))


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))


def parity(model, x, y, optimizer="sgd", steps=50, batch_size=32, seed=0, learning_rate=0.01,
           loss="cross_entropy", dtype=None, training=False, verbose=False, **optimizer_kwargs) -> ParityResult:
    """Train a clone of ``model`` with the engine and its twin with optax; return both loss curves.

    ``model``: any engine model (graph or Sequential); ``x`` one array or a list (one per input), ``y`` likewise
    per output. ``dtype`` (default: the model's) is used for weights and inputs on both
    sides; ``float64`` enables ``jax_enable_x64`` for the run and restores it. ``loss``: as ``compare_gradients``
    (one registry of names for both sides). ``training=True`` trains in training mode (BatchNormalization on
    batch statistics, its moving statistics updated on both sides and compared).

    Args:
        model: an engine model (cloned; the original is untouched).
        x, y: the training data (arrays or lists).
        optimizer: ``"sgd"`` (default), ``"adam"``, ``"adamw"`` or ``"rmsprop"``, the same on both sides.
        steps: int, default 50.
        batch_size: int, default 32; both sides see the same batches (``train.batch_schedule``).
        seed: int, default 0, for the batch order.
        learning_rate: default 0.01.
        loss: as :func:`compare_gradients`, default ``"cross_entropy"``.
        dtype: default None (the model's).
        training: bool, default False.
        verbose: bool, default False: show progress.
        **optimizer_kwargs: hyperparameters for both optimizers (``momentum``, ``b1``, ...).

    Returns:
        A :class:`ParityResult`.
    """
    check_counts("parity", batch_size, 1, steps, seed, min_steps=1)  # zero steps would compare nothing
    dtype = np.dtype(dtype or model.get_weights()[0].dtype)
    if dtype == np.float64:
        with float64():
            return _parity(model, x, y, optimizer, steps, batch_size, seed, learning_rate, loss, dtype, training,
                           verbose, optimizer_kwargs)
    return _parity(model, x, y, optimizer, steps, batch_size, seed, learning_rate, loss, dtype, training, verbose,
                   optimizer_kwargs)


def _parity(model, x, y, optimizer, steps, batch_size, seed, learning_rate, loss, dtype, training, verbose, kw):
    x = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), x)
    y = jax.tree_util.tree_map(lambda a: np.asarray(a) if np.issubdtype(np.asarray(a).dtype, np.integer)
                               else np.asarray(a, dtype), y)
    several_outputs = not getattr(model, "_single_output", True)
    engine = clone_engine(model, dtype)
    twin = from_engine(engine)
    check_data("parity", twin, x, y, loss)  # before either side trains: the engine's checks, once
    # engine
    opt = engine_optimizer(optimizer, engine.parameters(), learning_rate, **kw)
    loss_fn = engine_loss_function(loss)
    engine_losses = []
    for idx in batch_schedule(len(jax.tree_util.tree_leaves(x)[0]), batch_size, steps, seed=seed):
        xb, yb = (jax.tree_util.tree_map(lambda a: a[idx], v) for v in (x, y))  # noqa: B023
        outs = engine(xb, training=training)
        pairs = zip(outs, yb, strict=True) if several_outputs else [(outs, yb)]
        total = sum((loss_fn(o, t) for o, t in pairs), start=0.0)
        for penalty in engine.losses:
            total = total + penalty
        opt.zero_grad()
        total.backward()
        opt.step()
        engine.apply_constraints()
        engine_losses.append(float(total.item()))
    # twin
    result = train(twin, x, y, optimizer, learning_rate, batch_size, steps=steps, seed=seed, loss=loss,
                   training=training, verbose=verbose, **kw)
    engine_w = engine.get_weights()
    jax_w, is_state = [], []
    for info in twin.layers:
        values = {**result.params.get(info.name, {}), **result.state.get(info.name, {})}
        jax_w += [np.asarray(values[w]) for w in info.engine_weight_names]
        is_state += [w in info.state_names for w in info.engine_weight_names]
    devs = [_tensor_dev(a, b) for a, b in zip(engine_w, jax_w, strict=True)]
    param_dev = max((d for d, st in zip(devs, is_state, strict=True) if not st), default=0.0)
    state_dev = max((d for d, st in zip(devs, is_state, strict=True) if st), default=0.0)
    engine_losses = np.asarray(engine_losses)
    return ParityResult(engine_losses, result.losses, _rel(engine_losses, result.losses), param_dev, engine_w, jax_w,
                        state_dev)


def clone_engine(model, dtype=None):
    """A copy of the engine model (same config, graph and weights, moving statistics included), optionally cast
    to ``dtype``; the original is untouched.

    Built with the model class' own ``from_config`` (``Model`` or ``Sequential``) with every layer's ``dtype``
    replaced, then ``set_weights`` with the (cast) weights of ``model``.

    Args:
        model: an engine ``Model`` or ``Sequential``.
        dtype: None (default, keep) or a float dtype for every layer.

    Returns:
        The new engine model.
    """
    config = copy.deepcopy(model.get_config())
    if dtype is not None:
        for entry in config["layers"]:
            if "dtype" in entry["config"]:
                entry["config"]["dtype"] = str(np.dtype(dtype))
    clone = type(model).from_config(config)
    if not clone.built and model.input_shape is not None:
        clone.build(tuple(model.input_shape))
    weights = model.get_weights()
    clone.set_weights([w.astype(dtype) if dtype is not None else w for w in weights])
    return clone


def engine_optimizer(optimizer, params, learning_rate, **kwargs):
    """The engine's optimizer of the same name and hyperparameters (``tinygrad_cnn.optim.OPTIMIZERS``)."""
    if not isinstance(optimizer, str) or optimizer.lower() not in optim.OPTIMIZERS:
        raise ValueError(f"parity: optimizer must be one of {sorted(optim.OPTIMIZERS)} (an optax transform has no "
                         f"engine twin); got {optimizer!r}")
    return optim.OPTIMIZERS[optimizer.lower()](params, learning_rate=learning_rate, **kwargs)

