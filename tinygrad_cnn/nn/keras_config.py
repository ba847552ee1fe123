"""Keras 3 model configs (``config.json`` of a ``.keras`` file) <-> the engine's, by one generic rule.

The engine's layers take Keras' class names and argument names, so a layer's Keras config *is* its engine config
once Keras' wrappers are removed; no layer has code of its own here, and a new engine layer is readable from Keras
as soon as it is in ``nn.LAYER_CLASSES`` with Keras' argument names. Reading a Keras config:

- ``{"module", "class_name", "config", "registered_name", ...}`` objects (initializers, regularizers,
  constraints) become the engine's ``{"class_name", "config"}``; a ``DTypePolicy`` becomes its dtype name;
- a Keras argument the engine's class does not take is dropped when its value is the one that means "off"
  (``KERAS_ONLY_ARGUMENTS``: ``sparse=False``, ``renorm=False``, ``quantization_config=None``, ...) and is an
  error naming the layer, the argument and its value otherwise;
- a class the engine does not have is an error naming it and listing the supported ones;
- Keras 3's call records (``{"args": [keras tensors], "kwargs": {}}``) become the engine's
  ``[layer name, node index, tensor index]`` references.

Writing is the reverse: the engine's ``get_config()`` wrapped as Keras' ``Sequential``/``Functional`` with Keras 3's
call records, the layers of a graph model listed in Keras' own ``Functional.layers`` order (``keras_layer_order``,
Keras' ``map_graph``: by depth from the outputs, ties in the order a depth-first walk from the outputs meets them),
which is the order Keras' weight files are keyed by.
"""

from __future__ import annotations

import inspect

from tinygrad_cnn.nn import constraints, initializers, registry, regularizers

__all__ = ["KERAS_ONLY_ARGUMENTS", "accepted_arguments", "keras_layer_order", "model_from_keras", "model_to_keras"]

_ANY = object()  # an argument whose value does not matter once the flag that enables it is off

# Keras arguments the engine's classes do not take, with the value under which they change nothing.
KERAS_ONLY_ARGUMENTS = {
    "sparse": False, "ragged": False, "optional": False,  # InputLayer
    "synchronized": False, "renorm": False, "renorm_clipping": None, "renorm_momentum": _ANY,  # BatchNormalization
    "quantization_config": None, "lora_rank": None, "lora_alpha": None,  # Dense, convolutions
    "input_axes": None, "output_axes": None,  # variance-scaling initializers: fan axes (None: Keras' usual fans)
    "rms_scaling": False,  # LayerNormalization
}
_MODELS = ("Sequential", "Functional", "Model")
_NESTED = {**initializers._CLASSES, **regularizers._CLASSES, **constraints._CLASSES}


def accepted_arguments(cls) -> set[str]:
    """Every keyword ``cls(...)`` takes: the parameters of ``__init__`` along its MRO (layers pass ``**kwargs`` up)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p for p in inspect.signature(init).parameters if p not in ("self", "args", "kwargs")}
    return names


def _strip(where: str, cls, config: dict) -> dict:
    """``config`` without the Keras-only arguments of ``cls`` that are off; an error for one that is on."""
    accepted = accepted_arguments(cls)
    out = {}
    for key, value in config.items():
        if key in accepted:
            out[key] = value
            continue
        neutral = KERAS_ONLY_ARGUMENTS.get(key, inspect.Parameter.empty)
        if neutral is _ANY or (neutral is not inspect.Parameter.empty and value == neutral):
            continue
        raise ValueError(f"{where}: Keras' argument {key}={value!r} has no counterpart in the engine's "
                         f"{cls.__name__}, which takes {sorted(accepted - {'input_shape'})}")
    return out


def _plain(where: str, value):
    """A Keras config value in the engine's terms: dtype policies as names, Keras objects as ``{"class_name",
    "config"}`` (their Keras-only arguments stripped), recursively."""
    if isinstance(value, list):
        return [_plain(where, v) for v in value]
    if not isinstance(value, dict):
        return value
    name = value.get("class_name")
    if isinstance(name, str) and name.endswith("DTypePolicy"):
        return value.get("config", {}).get("name")
    if isinstance(name, str) and "config" in value:
        config = {k: _plain(where, v) for k, v in (value["config"] or {}).items()}
        if name in _NESTED:
            config = _strip(f"{where} {name}", _NESTED[name], config)
        return {"class_name": name, "config": config}
    return {k: _plain(where, v) for k, v in value.items()}


def _layer_class(entry: dict):
    layer_classes = registry.layer_classes()
    name, cls_name = entry.get("name") or entry.get("config", {}).get("name"), entry.get("class_name")
    registered = registry.registered_class(entry.get("registered_name"))
    if registered is not None:  # a user's layer, nn.register_serializable (Keras writes the same key)
        return registered
    if cls_name in layer_classes:
        return layer_classes[cls_name]
    supported = ", ".join(layer_classes)
    if cls_name in _MODELS:
        raise ValueError(f"load_model: the Keras layer {name!r} is a whole model ({cls_name}) used as a layer; the "
                         f"engine's models do not nest yet: rebuild it as one model")
    raise ValueError(f"load_model: the Keras layer {name!r} is a {cls_name}, which the engine does not have; the "
                     f"supported layers are {supported}")


def _layer_from_keras(entry: dict) -> dict:
    cls = _layer_class(entry)
    config = _plain(f"load_model: Keras layer {entry.get('name') or entry['config'].get('name')!r}", entry["config"])
    where = f"load_model: Keras layer {config.get('name')!r} ({cls.__name__})"
    out = {"class_name": cls.__name__, "config": _strip(where, cls, config)}
    key = registry.registered_name(cls)
    return out if key is None else {**out, "registered_name": key}


def _refs(refs) -> list[list]:
    """Keras' ``input_layers``/``output_layers``: one ``[name, node, tensor]`` (a single input) or a list of them."""
    return [refs] if refs and isinstance(refs[0], str) else [list(r) for r in refs]


def _call_from_keras(where: str, call) -> list[list]:
    """One Keras call record -> the engine's list of ``[layer name, node index, tensor index]`` it reads."""
    if isinstance(call, list):  # Keras 2's layout: [[name, node, tensor, kwargs], ...]
        return [list(r[:3]) for r in call]
    kwargs = {k: v for k, v in (call.get("kwargs") or {}).items() if k != "training" and v is not None}
    if kwargs:  # ``training`` recorded at the symbolic call is overridden by the model's own call, in Keras too
        raise ValueError(f"{where}: is called with keyword arguments {kwargs!r}; the engine's graph calls "
                         f"take the input tensors only")
    tensors, todo = [], list(reversed(call.get("args", [])))
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(reversed(item))
        elif isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
            tensors.append(list(item["config"]["keras_history"]))
        else:
            raise ValueError(f"{where}: is called with a non-tensor argument {item!r}; the engine's graph calls take "
                             f"the input tensors only")
    return tensors


def model_from_keras(config: dict) -> tuple[str, dict]:
    """``("Sequential" | "Functional", engine config)`` for a Keras 3 model config (``config.json``)."""
    kind, inner = config.get("class_name"), config.get("config") or {}
    if kind == "Sequential":
        return kind, {"name": inner.get("name"), "layers": [_layer_from_keras(e) for e in inner["layers"]],
                      "build_input_shape": inner.get("build_input_shape")}
    if kind not in ("Functional", "Model") or "layers" not in inner:
        raise ValueError(f"load_model: the file holds a Keras {kind!r} model; the engine reads Sequential and "
                         f"Functional models (a subclassed model has no config to rebuild it from)")
    layers = []
    for entry in inner["layers"]:
        engine = _layer_from_keras(entry)
        where = f"load_model: Keras layer {entry['name']!r}"
        engine.update(name=entry["name"], inbound_nodes=[_call_from_keras(where, c) for c in entry["inbound_nodes"]])
        layers.append(engine)
    for ref in _refs(inner["input_layers"]) + _refs(inner["output_layers"]):
        if ref[2] != 0:
            raise ValueError(f"load_model: the model reads output {ref[2]} of layer {ref[0]!r}; engine layers have "
                             f"one output")
    return "Functional", {"name": inner.get("name"), "layers": layers, "input_layers": _refs(inner["input_layers"]),
                          "output_layers": _refs(inner["output_layers"])}


def keras_layer_order(model) -> list:
    """The layers of a graph model in the order of Keras' ``Functional.layers`` (Keras' ``map_graph``), iteratively:
    a depth-first walk from each output numbers the layers as it first meets them; a node's depth is the longest
    path to an output (a shared layer takes its deepest node's); layers are listed by decreasing depth, ties by
    that number."""
    inputs = {id(t) for t in model.inputs}
    finished, in_order, number = set(), [], {}
    for out in model.outputs:
        stack = [(out, None)]
        while stack:
            tensor, pending = stack.pop()
            node = tensor.node
            if pending is None:
                if id(node) in finished:
                    continue
                number.setdefault(id(node.layer), len(number))
                pending = [] if (not node.inputs or id(tensor) in inputs) else list(reversed(node.inputs))
            if pending:
                nxt = pending.pop()
                stack.append((tensor, pending))
                stack.append((nxt, None))
                continue
            if id(node) not in finished:
                finished.add(id(node))
                in_order.append(node)
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(in_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        layers[id(node.layer)] = node.layer
        for t in node.inputs:
            if id(t.node) in finished:
                node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    return sorted(layers.values(), key=lambda layer: (-layer_depth[id(layer)], number[id(layer)]))


def _keras_tensor(t, ref) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype, "keras_history": ref}}


def model_to_keras(model) -> dict:
    """The Keras 3 ``config.json`` content for an engine model (``Sequential`` or graph ``Model``)."""
    from tinygrad_cnn.nn.sequential import Sequential

    config = model.get_config()
    if isinstance(model, Sequential):
        return {"module": "keras", "class_name": "Sequential", "config": {**config, "trainable": model.trainable},
                "registered_name": None}
    keys = model._node_keys()
    by_name = {entry["name"]: entry for entry in config["layers"]}
    layers = []
    for layer in keras_layer_order(model):
        calls = []
        for node in (n for n in model._nodes if n.layer is layer and n.inputs):
            args = [_keras_tensor(t, keys[id(t.node)]) for t in node.inputs]
            calls.append({"args": [args] if layer.takes_list else args, "kwargs": {}})
        entry = by_name[layer.name]
        layers.append({"module": "keras.layers", "class_name": entry["class_name"], "config": entry["config"],
                       "registered_name": entry.get("registered_name"), "name": layer.name, "inbound_nodes": calls})

    def refs(items, single):
        return items[0] if single else items

    inner = {"name": config["name"], "trainable": model.trainable, "layers": layers,
             "input_layers": refs(config["input_layers"], model._single_input),
             "output_layers": refs(config["output_layers"], model._single_output)}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": inner,
            "registered_name": "Functional"}
