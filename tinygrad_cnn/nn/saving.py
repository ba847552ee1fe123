"""Whole models on disk in Keras 3's ``.keras`` format, and Keras' ``.weights.h5`` weight files, both ways.

A ``.keras`` file is a zip archive of ``config.json`` (the architecture, Keras' layout: ``nn.keras_config``),
``metadata.json`` and ``model.weights.h5``: per layer, the group ``layers/<snake_case class name>[_<k>]/vars``
holding its weights as datasets ``0, 1, ...`` (the k-th layer of a class in Keras' layer order gets ``_k``; weights
in Keras' variable order: those created trainable, then the others, e.g. BatchNormalization's gamma, beta,
moving_mean, moving_variance). A ``.weights.h5`` file is that HDF5 file alone. Files written by Keras load here
and files written here load in Keras (``keras.models.load_model``), giving the same outputs.

What the engine adds, and Keras ignores: the member ``tinygrad_cnn.json`` with the optimizer (class,
hyperparameters, step count, which weights it updates) and the compile arguments (loss and metric names), and
the optimizer's state arrays under ``tinygrad_cnn/optimizer/<i>/<slot>`` of the HDF5 file, so that training
resumed from a saved model gives bit-identical weights to training straight through. A Keras file's own
optimizer is not read (Keras' update rules are not optax's): such a model loads uncompiled.

Saving is atomic (``checkpoint.atomic_write``: the archive is built in memory, then written to a temporary file
renamed over the destination). Loading never unpickles (JSON and HDF5 only), and checks every layer, every array's
shape and the optimizer state before creating the model or changing any weight; a truncated or foreign file is a
``ValueError`` naming it.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile

import numpy as np

from tinygrad_cnn import optim
from tinygrad_cnn.nn import _serial, checkpoint, keras_config, losses

__all__ = ["load_keras_weights", "load_model", "save_keras_weights", "save_model"]

_CONFIG, _METADATA, _WEIGHTS, _ENGINE = "config.json", "metadata.json", "model.weights.h5", "tinygrad_cnn.json"
_OPT_GROUP = "tinygrad_cnn/optimizer"


# -- weights in Keras' HDF5 layout -------------------------------------------------------------------------------
def _keras_layers(model) -> list:
    """The model's layers in Keras' order (the order its weight files are keyed by)."""
    from tinygrad_cnn.nn.sequential import Sequential

    return model.layers if isinstance(model, Sequential) else keras_config.keras_layer_order(model)


def _groups(layers) -> list[tuple[str, object]]:
    """``(HDF5 path, layer)``: ``layers/<snake_case class name>``, then ``_1``, ``_2`` ... for the same class."""
    used: dict[str, int] = {}
    out = []
    for layer in layers:
        base = _serial.snake_case(type(layer).__name__)
        used[base] = used.get(base, -1) + 1
        out.append((f"layers/{base}" + (f"_{used[base]}" if used[base] else ""), layer))
    return out


def _keras_variables(layer) -> list:
    """The layer's weights in Keras' variable order: created trainable first, then the others."""
    frozen = layer._frozen_weights
    return [t for t in layer.weights if id(t) not in frozen] + [t for t in layer.weights if id(t) in frozen]


def _write_h5(h5, model, layers) -> None:
    h5.create_group("vars").attrs["name"] = model.name
    for path, layer in _groups(layers):
        group = h5.create_group(path).create_group("vars")
        group.attrs["name"] = layer.name
        for i, t in enumerate(_keras_variables(layer)):
            group[str(i)] = t.data


def _read_h5(h5, layers, source: str) -> list[tuple[object, np.ndarray]]:
    """``(weight Tensor, array)`` for every weight of ``layers``, every array checked (count, shape, a real float
    dtype: cast to the weight's dtype, as Keras assigns) before anything is written."""
    if "model_weights" in h5 or "layer_names" in h5.attrs:
        raise ValueError(f"load_weights: {source!r} is a legacy Keras 2 HDF5 file (tf.keras' .h5 layout); load it in "
                         f"Keras and save it again as .keras or .weights.h5 (Keras 3's layout)")
    pairs = []
    expected = set()
    for path, layer in _groups(layers):
        expected.add(path)
        variables = _keras_variables(layer)
        where = f"load_weights: {source!r}, layer {layer.name!r} ({type(layer).__name__}, group {path!r})"
        group = h5.get(f"{path}/vars")
        if group is None and variables:
            raise ValueError(f"{where}: not found in the file (its layer groups are {sorted(h5.get('layers', {}))})")
        stored = sorted(group.keys(), key=int) if group is not None else []
        if len(stored) != len(variables):
            raise ValueError(f"{where}: the model has {len(variables)} weights, the file has {len(stored)}")
        for key, t in zip(stored, variables, strict=True):
            a = np.asarray(group[key])
            if a.shape != t.shape:
                raise ValueError(f"{where} weight {key}: the model expects shape {t.shape}, the file has {a.shape}")
            if not np.issubdtype(a.dtype, np.floating):
                raise ValueError(f"{where} weight {key}: expected a float array, the file has dtype {a.dtype}")
            pairs.append((t, a.astype(t.dtype)))
    extra = sorted(f"layers/{k}" for k in h5.get("layers", {}) if f"layers/{k}" not in expected
                   and len(h5[f"layers/{k}"].get("vars", {})))
    if extra:
        raise ValueError(f"load_weights: {source!r} holds weights for layers the model does not have: {extra} (the "
                         f"model's layer groups are {sorted(expected)})")
    return pairs


def _open_h5(data, source: str):
    import h5py  # only here: reading or writing HDF5 is the one thing that needs it

    try:
        return h5py.File(data, "r")
    except (OSError, ValueError) as exc:
        raise ValueError(f"load_weights: {source!r} is not a readable HDF5 weights file (truncated, corrupt or "
                         f"another format): {exc}") from exc


def save_keras_weights(model, path) -> None:
    """Write the weights to ``path`` (``.weights.h5``, Keras' layout), atomically."""
    import h5py

    _require_built(model, "save_weights")
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        _write_h5(h5, model, _keras_layers(model))
    checkpoint.atomic_write(path, lambda f: f.write(buffer.getvalue()), "save_weights", "model.weights.h5")


def load_keras_weights(model, path) -> None:
    """Load Keras' ``.weights.h5`` file (or the weights of a ``.keras`` archive) into the built ``model``; every
    array is checked before any weight changes."""
    _require_built(model, "load_weights")
    path = os.fspath(path)
    data = _archive(path)[_WEIGHTS] if path.endswith(".keras") else path
    with _open_h5(io.BytesIO(data) if isinstance(data, bytes) else data, path) as h5:
        pairs = _read_h5(h5, _keras_layers(model), path)
    for t, a in pairs:
        t.data[...] = a


def _require_built(model, what: str) -> None:
    if not model.built:
        raise ValueError(f"{what}: the model {model.name!r} is not built; build it (or call it on data) first")


# -- the optimizer and the compile arguments --------------------------------------------------------------------
def _hyperparameters(opt) -> dict:
    config = {}
    for name in sorted(keras_config.accepted_arguments(type(opt)) - {"params"}):
        value = getattr(opt, name)
        if callable(value) or not (value is None or isinstance(value, (bool, int, float, str))):
            raise ValueError(f"save: the optimizer's {name}={value!r} cannot be stored (a schedule or another "
                             f"function); save with include_optimizer=False and compile again after loading")
        config[name] = value
    return config


def _factory_name(factory):
    if isinstance(factory, str):
        return factory
    return next((k for k, v in optim.OPTIMIZERS.items() if v is factory), None)


def _training_record(model) -> tuple[dict, dict[str, np.ndarray]]:
    """The engine's member of the archive (optimizer and compile arguments) and the optimizer's state arrays."""
    record, arrays = {"format": 1}, {}
    opt = model.optimizer
    if isinstance(opt, optim.Optimizer):
        index = {id(t): i for i, t in enumerate(model.weights)}
        missing = [i for i, p in enumerate(opt.params) if id(p) not in index]
        if missing:
            raise ValueError(f"save: the optimizer updates tensors that are not weights of the model (params "
                             f"{missing}); save with include_optimizer=False")
        record["optimizer"] = {"class_name": type(opt).__name__, "config": _hyperparameters(opt), "count": opt.count,
                               "params": [index[id(p)] for p in opt.params],
                               "factory": _factory_name(model._optimizer_factory)}
        for i, state in enumerate(opt.state):
            for slot, value in state.items():
                arrays[f"{_OPT_GROUP}/{i}/{slot}"] = value
    elif opt is not None:
        record["optimizer"] = {"factory": _factory_name(opt)}
    loss = getattr(model.loss, "__self__", None)
    if model.compiled and isinstance(loss, losses.Loss):
        from tinygrad_cnn.nn.training import get_metric

        names = [name for name, fn in model.metrics if _known_metric(get_metric, name, fn)]
        if len(names) == len(model.metrics):
            record["compile"] = {"loss": losses.serialize(loss), "metrics": names}
    return record, arrays


def _known_metric(get_metric, name, fn) -> bool:
    try:
        return get_metric(name)[1] is fn
    except ValueError:
        return False


def _restore_optimizer(model, record: dict, h5, source: str):
    """The optimizer of ``record`` over the model's weights, its state and step count checked and set."""
    cls = optim.OPTIMIZERS.get(record["class_name"].lower())
    if cls is None or cls.__name__ != record["class_name"]:
        raise ValueError(f"load_model: {source!r} stores an optimizer {record['class_name']!r}; the engine has "
                         f"{[c.__name__ for c in optim.OPTIMIZERS.values()]}")
    weights = model.weights
    if not all(isinstance(i, int) and 0 <= i < len(weights) for i in record["params"]):
        raise ValueError(f"load_model: {source!r}: the optimizer refers to weights {record['params']} of a model "
                         f"with {len(weights)} weights")
    params = [weights[i] for i in record["params"]]
    opt = cls(params, **record["config"])
    state = []
    for i, (p, fresh) in enumerate(zip(params, opt.state, strict=True)):
        group = h5.get(f"{_OPT_GROUP}/{i}", {})
        if set(group.keys()) != set(fresh):
            raise ValueError(f"load_model: {source!r}: optimizer state {i} has slots {sorted(group.keys())}; "
                             f"{cls.__name__} keeps {sorted(fresh)}")
        slots = {k: np.asarray(group[k]) for k in fresh}
        for k, a in slots.items():
            if a.shape != p.shape or a.dtype != p.dtype:
                raise ValueError(f"load_model: {source!r}: optimizer state {i} {k!r} is {a.dtype}{a.shape}; the "
                                 f"weight is {p.dtype}{p.shape}")
        state.append(slots)
    opt.state = state
    opt.count = int(record["count"])
    return opt


# -- the archive ---------------------------------------------------------------------------------------------------
def save_model(model, path, overwrite=True, include_optimizer=True) -> None:
    """Write ``model`` to ``path`` (a ``.keras`` file): architecture, weights, and (``include_optimizer``) the
    optimizer with its state and the compile arguments; atomically (see the module docstring)."""
    import h5py

    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"save: {path!r} must end in '.keras' (Keras 3's format); for the weights alone use "
                         f"save_weights('....weights.h5' or '....npz')")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save: {path!r} exists and overwrite=False")
    _require_built(model, "save")
    config = json.dumps(keras_config.model_to_keras(model))
    record, arrays = _training_record(model) if include_optimizer else ({"format": 1}, {})
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        _write_h5(h5, model, _keras_layers(model))
        for key, value in arrays.items():
            h5[key] = value
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(_METADATA, json.dumps({"saved_by": "tinygrad_cnn",
                                          "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}))
        z.writestr(_CONFIG, config)
        z.writestr(_WEIGHTS, weights.getvalue())
        z.writestr(_ENGINE, json.dumps(record))
    checkpoint.atomic_write(path, lambda f: f.write(archive.getvalue()), "save", "model.keras")


def _archive(path: str) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(path) as z:
            members = {name: z.read(name) for name in (_CONFIG, _WEIGHTS, _ENGINE) if name in z.namelist()}
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # noqa: BLE001  (zipfile, zlib and struct errors all mean "bad file")
        raise ValueError(f"load_model: {path!r} is not a readable .keras archive (truncated, corrupt or another "
                         f"format): {type(exc).__name__}: {exc}") from exc
    for name in (_CONFIG, _WEIGHTS):
        if name not in members:
            raise ValueError(f"load_model: {path!r} has no {name}; a .keras archive holds {_CONFIG}, {_METADATA} "
                             f"and {_WEIGHTS} (Keras' model.weights.npz variant is not read)")
    return members


def _json(path: str, name: str, data: bytes) -> dict:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"load_model: {name} of {path!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"load_model: {name} of {path!r} must hold a JSON object; got {type(value).__name__}")
    return value


def load_model(path, compile=True):  # noqa: A002  (Keras' argument name)
    """The model stored in ``path`` (a ``.keras`` file written by Keras 3 or by ``save``), with its weights; with
    ``compile``, also its optimizer (state included) and compile arguments when the file has them.

    Args:
        path: a ``.keras`` file.
        compile: bool, default True.

    Returns:
        The ``Sequential`` or graph ``Model``.

    Raises:
        ValueError: a file that is not a ``.keras`` archive, or a Keras layer or argument the engine lacks
            (the message names it).
    """
    from tinygrad_cnn.nn import Model, Sequential

    path = os.fspath(path)
    members = _archive(path)
    kind, config = keras_config.model_from_keras(_json(path, _CONFIG, members[_CONFIG]))
    record = _json(path, _ENGINE, members[_ENGINE]) if _ENGINE in members else {}
    keras_order = [entry["name"] for entry in config["layers"]] if kind == "Functional" else None
    try:
        model = (Sequential if kind == "Sequential" else Model).from_config(config)
        layers = model.layers if keras_order is None else [model.get_layer(name) for name in keras_order]
        with _open_h5(io.BytesIO(members[_WEIGHTS]), path) as h5:
            pairs = _read_h5(h5, layers, path)
            opt_record = record.get("optimizer") if compile else None
            opt = _restore_optimizer(model, opt_record, h5, path) if opt_record and "class_name" in opt_record \
                else None
    except (TypeError, KeyError) as exc:
        raise ValueError(f"load_model: {path!r} does not describe a model the engine can build: "
                         f"{type(exc).__name__}: {exc}") from exc
    for t, a in pairs:
        t.data[...] = a
    factory = (opt_record or {}).get("factory")
    if compile and "compile" in record:
        model.compile(optimizer=opt if opt is not None else factory or "adam",
                      loss=losses.get(record["compile"]["loss"]), metrics=record["compile"]["metrics"])
        model._optimizer_factory = factory
    elif opt is not None:
        model.optimizer = opt  # resume with compile(optimizer=model.optimizer, loss=...)
    return model
