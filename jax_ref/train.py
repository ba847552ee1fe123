"""Optax training of a ``JaxModel`` (jitted step, tqdm), optionally data-parallel over every device.

One step on a batch ``(x_b, y_b)`` minimises ``L(p) = loss(apply(p, x_b), y_b) + penalties(p)``:
``g = dL/dp``; ``u, s = tx.update(g, s, p)``; ``p <- constrain(p + u)``, with
``tx`` an optax transform (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` with
the engine's defaults, or any ``optax.GradientTransformation``).

Batches: each epoch is a permutation of the examples drawn from
``np.random.default_rng([seed, epoch])``, cut into ``batch_size`` pieces; a last
incomplete piece is dropped (every step has the same shape, so one compile).
``batch_schedule`` is shared with ``parity`` so the engine sees the same batches.

``shard=True``: a ``jax.sharding.Mesh`` over ``jax.devices()`` (ordered by
process, then device id) with one axis ``"data"``; every batch is placed with
``NamedSharding(mesh, P("data"))`` (split along its first axis), parameters and
optimizer state are replicated (``P()``), and XLA inserts the all-reduce that
averages the gradients. On several GPUs of one host this is all it takes.

Several processes (``jax_ref.launch``, or one per host under a scheduler, each
having called ``jax_ref.launch.initialize()`` first): ``jax.devices()`` lists
the devices of every process, every process runs this same function with the
same arguments and draws the same batch schedule, and each process reads only
the rows of every global batch that its own devices hold (process ``p`` of
``P``, each with the same number of devices: rows ``p*B/P .. (p+1)*B/P - 1``),
assembled with ``jax.make_array_from_process_local_data``. The result is the
one-process result (same batches, same all-reduced gradients). With
``loader=fetch`` those rows are the only data a process ever loads; the
progress bar is shown by process 0 only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jax_ref.losses import loss_function
from jax_ref.model import JaxModel, from_engine
from tinygrad_cnn import optim, validation
from tinygrad_cnn.nn import data_adapter
from tinygrad_cnn.optim import schedules

# -- optimizers -----------------------------------------------------------------------------------------

def optax_schedule(learning_rate):
    """An engine schedule (``tinygrad_cnn.optim.schedules``) as optax' own function of that name and arguments
    (``optax.join_schedules`` of the converted parts; a schedule optax lacks, such as ``inverse_time_decay``,
    runs the engine's formula on ``jax.numpy``); a number or any other callable is returned as is.

    The count reaches the schedule as the default integer type: optax keeps it as int32, and its linear and
    polynomial schedules then compute in float32 even under ``jax_enable_x64`` (``int32 / int`` is float32);
    with x64 on, the count is int64 and the rate float64, as the engine computes it."""
    if not isinstance(learning_rate, schedules.Schedule):
        return learning_rate
    return lambda count: _optax_schedule(learning_rate)(jnp.asarray(count, jnp.result_type(int)))


def _optax_schedule(schedule):
    config = schedule.config
    if schedule.name == "join_schedules":
        return optax.join_schedules([_optax_schedule(s) for s in config["schedules"]], config["boundaries"])
    if hasattr(optax, schedule.name):
        return getattr(optax, schedule.name)(**config)
    return lambda count: schedule.evaluate(count, jnp)


def make_optimizer(optimizer, learning_rate, global_clipnorm=None, **kwargs) -> optax.GradientTransformation:
    """``optax.<name>(learning_rate, **kwargs)`` for a name of the engine's table ``tinygrad_cnn.optim.OPTIMIZERS``
    (optax' function names: sgd, adam, adamw, rmsprop), or a transform as is. ``learning_rate`` may be an engine
    schedule (``optax_schedule``); ``global_clipnorm`` chains ``optax.clip_by_global_norm`` in front, as the
    engine's optimizers' ``global_clipnorm`` does."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    name = validation.choice("jax_ref.train", "optimizer", optimizer, tuple(optim.OPTIMIZERS))
    optim.check_learning_rate("jax_ref.train", learning_rate)
    if name == "rmsprop":
        kwargs = {"decay": 0.9, "eps": 1e-8, **kwargs}
    tx = getattr(optax, name)(optax_schedule(learning_rate), **kwargs)
    return tx if global_clipnorm is None else optax.chain(optax.clip_by_global_norm(global_clipnorm), tx)


# -- batches --------------------------------------------------------------------------------------------

def batch_schedule(n, batch_size, steps=None, epochs=1, seed=0):
    """Index arrays of the batches: per epoch a permutation from ``default_rng([seed, epoch])``, full batches only.

    ``steps`` (if given) takes precedence over ``epochs`` and runs as many epochs as needed.
    """
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"jax_ref.train: batch_size={batch_size} is larger than the {n} examples")
    total = steps if steps is not None else per_epoch * epochs
    out, epoch = [], 0
    while len(out) < total:
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        out += [perm[i * batch_size:(i + 1) * batch_size] for i in range(per_epoch)]
        epoch += 1
    return out[:total]


def check_counts(fn, batch_size, epochs, steps, seed, min_steps=0):
    """``(batch_size, epochs, steps, seed)`` as ints, checked as ``fit`` checks its own (``batch_size >= 1``,
    ``epochs >= 0``; ``steps``, None or ``>= min_steps``, and the ``seed`` of the batch order, an int >= 0)."""
    return (validation.positive_int(fn, "batch_size", batch_size),
            validation.positive_int(fn, "epochs", epochs, minimum=0),
            None if steps is None and min_steps == 0 else validation.positive_int(fn, "steps", steps, min_steps),
            validation.positive_int(fn, "seed", seed, minimum=0))


def check_data(fn, jax_model, x, y, loss, params=None):
    """``(x, y)`` as arrays, refused as the engine refuses them, before ``jax.jit`` hides the values.

    One path for both sides: the arrays and their common length through ``nn.data_adapter.paired_arrays`` (a
    list per input / output for graph models), and the targets through the registry loss' own checks
    (``tinygrad_cnn.losses.one_hot_targets``: integer class ids in ``[0, classes)``, shapes), run once on the
    concrete ``y`` against zeros shaped like the model's outputs (``jax.eval_shape``, nothing computed). A JAX
    callable loss is the caller's and is not probed."""
    x, y = data_adapter.paired_arrays(fn, x, y, jax_model.multiple_inputs, jax_model.multiple_outputs)
    if callable(loss) and not hasattr(loss, "get_config"):
        return x, y
    params = jax_model.params if params is None else params
    weights = jax.tree_util.tree_leaves(params)
    shapes = jax.tree_util.tree_map(  # the inputs as the model's layers cast them (Keras' dtype policy)
        lambda a: jax.ShapeDtypeStruct(a.shape, weights[0].dtype if weights else a.dtype), x)
    outs = jax.eval_shape(lambda p, s, v: jax_model.run(p, s, v)[0], params, jax_model.state, shapes)
    apply = loss_function(loss)
    for out, target in zip(outs, y if jax_model.multiple_outputs else [y], strict=True):
        try:
            apply(np.zeros(out.shape, out.dtype), target)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{fn}: y does not fit the model's output of shape {out.shape}: {exc}") from exc
    return x, y


def _trainable_labels(model, params):
    """``"freeze"`` for every weight the engine froze (a non-trainable layer's, or one frozen on its own)."""
    frozen = {(layer.name, w) for layer in model.layers for w in layer.frozen_weights}
    return {name: {w: ("freeze" if (name, w) in frozen else "train") for w in ws} for name, ws in params.items()}


def _mask_tree(labels, mask):
    """AdamW's engine ``mask`` (a bool per trainable weight, in ``model.parameters()`` order) as optax' pytree."""
    trained = [(name, w) for name, ws in labels.items() for w, label in ws.items() if label == "train"]
    if len(mask) != len(trained):
        raise ValueError(f"jax_ref.train: mask must give one bool per trainable weight ({len(trained)}); got "
                         f"{len(mask)}")
    flags = dict(zip(trained, (bool(f) for f in mask), strict=True))
    return {name: {w: flags.get((name, w), False) for w in ws} for name, ws in labels.items()}


@dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        params: the trained parameter pytree.
        losses: per-step losses (the minimised total, penalties included), shape ``(steps,)``.
        opt_state: the optax state after the last step.
        devices: the number of devices the batches were split over (1 without ``shard``).
        seconds: wall time of the training loop.
        model: the trained ``JaxModel`` (``model.to_engine()`` writes the weights back to the engine model).
        state: the layer state after training (moving statistics).
    """

    params: dict
    losses: np.ndarray
    opt_state: object
    devices: int
    seconds: float
    model: object = None
    state: dict = None


def make_step(model, tx, loss="cross_entropy", training=True, regularization=True):
    """The un-jitted step ``(params, state, opt_state, x, y, key) -> (params, state, opt_state, loss)``; ``state``
    (BatchNormalization's moving statistics) comes back updated by the training forward pass."""

    def step(params, state, opt_state, xb, yb, key):
        (value, state), grads = jax.value_and_grad(model.loss_with_state, has_aux=True)(
            params, state, xb, yb, loss, training, key, regularization)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = model.constrain(optax.apply_updates(params, updates))
        return params, state, opt_state, value

    return step


def _rows(x, y, loader, examples, check):
    """``(fetch, n)``: ``fetch(indices) -> (x_rows, y_rows)`` and the number of examples, from arrays (first passed
    through ``check(x, y) -> (x, y)``) or a loader (whose rows are the caller's: they are not all here to check)."""
    if loader is None:
        if x is None or y is None or examples is not None:
            raise ValueError("jax_ref.train: pass the data as x and y, or as loader and examples (not both); got "
                             f"x={'None' if x is None else 'arrays'}, y={'None' if y is None else 'arrays'}, "
                             f"examples={examples!r}")
        x, y = (jax.tree_util.tree_map(np.asarray, v) for v in check(x, y))
        return (lambda idx: jax.tree_util.tree_map(lambda a: a[idx], (x, y))), len(jax.tree_util.tree_leaves(x)[0])
    if x is not None or y is not None or not callable(loader):
        raise ValueError(f"jax_ref.train: loader must be a function indices -> (x_rows, y_rows) given instead of x "
                         f"and y; got loader={type(loader).__name__} with x and y "
                         f"{'None' if x is None and y is None else 'given'}")
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 1:
        raise ValueError(f"jax_ref.train: loader needs examples, the number of examples it serves (a positive int); "
                         f"got examples={examples!r}")
    return loader, int(examples)


def _process_rows(sharding, batch_size) -> slice:
    """The rows of a ``batch_size`` batch that this process' devices hold under ``sharding`` (one contiguous run)."""
    spans = sorted((s[0].start or 0, batch_size if s[0].stop is None else s[0].stop)
                   for s in sharding.addressable_devices_indices_map((batch_size,)).values())
    if any(a[1] != b[0] for a, b in zip(spans, spans[1:], strict=False)):
        raise ValueError(f"jax_ref.train: this process' devices hold rows {spans} of each batch, not one "
                         f"contiguous run; give every process the same number of devices")
    return slice(spans[0][0], spans[-1][1])


def train(jax_model, x=None, y=None, optimizer="sgd", learning_rate=0.01, batch_size=32, epochs=1, steps=None,
          seed=0, shard=False, loss="cross_entropy", training=True, regularization=True, params=None, verbose=True,
          loader=None, examples=None, **optimizer_kwargs) -> TrainResult:
    """Train ``jax_model`` with optax (see the module docstring); ``jax_model.params`` is set to the result.

    An engine model is converted with ``from_engine`` first (the engine's
    weights are not changed; ``result.model.to_engine()`` writes them back).

    ``params`` defaults to ``jax_model.params`` and the layer state to ``jax_model.state`` (both set to the
    result); ``optimizer_kwargs`` go to the
    optax constructor (``momentum``, ``nesterov``, ``b1``, ``weight_decay``, ...).
    Dropout keys: step ``t`` uses ``fold_in(key(seed), t)``. ``x`` (and ``y``) may be lists, one array per model
    input (output).

    Args:
        jax_model: a ``JaxModel`` (from ``from_engine``) or an engine model (converted first).
        x, y: the training data, arrays with one row per example (or lists, one per input/output); or None
            with ``loader``.
        loader, examples: instead of ``x`` and ``y``, a function ``loader(indices) -> (x_rows, y_rows)``
            returning the examples at the given positions (an int array into ``range(examples)``) from wherever
            they live (files, a memmap, a database); it is called once per step with the rows this process feeds
            (all rows of the batch with one process; see the module docstring for several).
        optimizer: ``"sgd"`` (default), ``"adam"``, ``"adamw"``, ``"rmsprop"`` or an optax transform.
        learning_rate: number or schedule, default 0.01.
        batch_size: int, default 32 (with ``shard``, divisible by the device count).
        epochs: int, default 1.
        steps: int or None (default: every full batch of ``epochs`` epochs); when given it wins over
            ``epochs`` and runs as many epochs as needed.
        seed: int, default 0: batch order and dropout keys.
        shard: bool, default False: data-parallel over ``jax.devices()`` (see the module docstring).
        loss: as ``compare_gradients``, default ``"cross_entropy"``.
        training: bool, default True: training mode (Dropout on, BatchNormalization on batch statistics).
        regularization: bool, default True: add the weight penalties.
        params: pytree or None (default ``jax_model.params``): the starting parameters.
        verbose: bool, default True: a tqdm progress bar.
        **optimizer_kwargs: passed to the optax constructor.

    Returns:
        A :class:`TrainResult`.
    """
    batch_size, epochs, steps, seed = check_counts("jax_ref.train", batch_size, epochs, steps, seed)
    if not isinstance(jax_model, JaxModel):  # an engine model: train its twin (write back with .to_engine)
        jax_model = from_engine(jax_model)
    params = jax_model.params if params is None else params
    fetch, n = _rows(x, y, loader, examples, lambda x, y: check_data("jax_ref.train", jax_model, x, y, loss, params))
    labels = _trainable_labels(jax_model, params)
    if isinstance(optimizer_kwargs.get("mask"), (list, tuple)):  # the engine's form: one bool per trainable weight
        optimizer_kwargs["mask"] = _mask_tree(labels, optimizer_kwargs["mask"])
    tx = make_optimizer(optimizer, learning_rate, **optimizer_kwargs)
    if any(v == "freeze" for ws in labels.values() for v in ws.values()):
        tx = optax.multi_transform({"train": tx, "freeze": optax.set_to_zero()}, labels)
    batches = batch_schedule(n, batch_size, steps, epochs, seed)
    step = make_step(jax_model, tx, loss, training, regularization)
    opt_state = tx.init(params)
    state = jax_model.state
    devices, rows = 1, slice(None)
    if shard:
        mesh = Mesh(np.array(sorted(jax.devices(), key=lambda d: (d.process_index, d.id))), ("data",))
        devices = mesh.size
        if batch_size % devices:
            across = (f" ({jax.process_count()} processes x {jax.local_device_count()} local devices)"
                      if jax.process_count() > 1 else "")
            raise ValueError(f"jax_ref.train: shard=True splits each batch over {devices} devices{across}; "
                             f"batch_size={batch_size} must be a multiple of {devices}")
        data, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
        rows = _process_rows(data, batch_size)
        params, state, opt_state = jax.device_put((params, state, opt_state), replicated)
        jstep = jax.jit(step, out_shardings=(replicated, replicated, replicated, replicated))

        def put(a):
            return jax.make_array_from_process_local_data(data, np.asarray(a), (batch_size,) + np.shape(a)[1:])
    else:
        jstep = jax.jit(step)
        put = jnp.asarray
    base = jax.random.key(seed)
    losses = []
    start = time.perf_counter()
    bar = tqdm(batches, desc=f"jax_ref.train ({devices} device{'s' * (devices > 1)})",
               disable=not verbose or jax.process_index() != 0, leave=False)
    for t, idx in enumerate(bar):
        xb, yb = jax.tree_util.tree_map(put, fetch(idx[rows]))
        params, state, opt_state, value = jstep(params, state, opt_state, xb, yb, jax.random.fold_in(base, t))
        losses.append(value)
        if not bar.disable and t % 10 == 0:
            bar.set_postfix(loss=f"{float(value):.4f}")
    losses = np.asarray(jax.device_get(losses))
    jax_model.params, jax_model.state = params, state
    return TrainResult(params, losses, opt_state, devices, time.perf_counter() - start, jax_model, state)
