"""``Model(inputs, outputs)``: a graph of layers (Keras' Functional API), and the model API every model shares.

    x = nn.Input((28, 28, 1))
    h = nn.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = nn.Add()([h, nn.Conv2D(8, 1)(x)])          # a residual connection: the gradients of both paths add
    model = nn.Model(x, nn.Dense(10)(nn.Flatten()(y)))

The model keeps its nodes (``graph.Node``: one per layer call) in one topological order; ``model(x)`` is one
loop over them with a dict from symbolic tensor to value. A layer called twice shares its weights: it has one
node per call, and by the multivariate chain rule its weights' gradient is the sum over its calls. ``Sequential``
is a ``Model`` whose graph is a chain, so both share one path for calling, weights, config, checkpoints,
summary, ``fit`` and fusion.

Fusion: a ``Conv*D(activation="relu")`` node whose only consumer is a non-overlapping ``MaxPooling*D`` node
(and whose output is not a model output) runs with it as one primitive (``nn.fusion``); same values and
gradients, fewer passes over memory. At inference a conv whose only reader is a BatchNormalization runs as one
conv with the BatchNormalization folded into its kernel and bias (and the ReLU after it, if it is the only
reader). Calling the layers one by one never fuses; nor does a model inside ``with nn.fusion.disabled():``.

Receptive fields in ``summary()``: along each spatial axis, with ``J`` the product of the strides so far, a
layer with effective kernel ``F_eff`` grows ``R <- R + (F_eff - 1) J`` and then ``J <- J S``; after a Dense
or global pooling layer one unit sees the whole input. Where paths of different depth meet (a residual
connection), the output has one receptive field per path, all listed.
"""

from __future__ import annotations

import os

import numpy as np

from tinygrad_cnn import observe, validation
from tinygrad_cnn.nn import _serial, checkpoint, fusion, registry, saving
from tinygrad_cnn.nn.core import InputLayer
from tinygrad_cnn.nn.graph import SymbolicTensor, nodes_between
from tinygrad_cnn.nn.layer import Layer, _fmt_shape, assign_checked, outermost_call
from tinygrad_cnn.nn.training import ModelBase
from tinygrad_cnn.tensor import Tensor, as_tensor

__all__ = ["Model"]


def _symbolic_list(where: str, arg: str, value) -> list[SymbolicTensor]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise TypeError(f"{where}: {arg} must be a symbolic tensor (from nn.Input or a layer called on one) or a "
                        f"non-empty list of them; got {value!r}")
    return items


class Model(ModelBase):
    """A graph model, as Keras' functional ``Model``: the layers between symbolic ``inputs`` and ``outputs``.

    Build it by calling layers on ``nn.Input`` placeholders::

        inp = nn.Input((8, 8, 1))
        h = nn.Conv2D(16, 3, padding="same", activation="relu")(inp)
        out = nn.Dense(10)(nn.Flatten()(nn.MaxPooling2D()(h)))
        model = nn.Model(inp, out)

    ``model(x, training=False)`` takes one array or Tensor (or a list, one per input) and returns one Tensor
    (or a list, one per output); the training API (``compile``, ``fit``, ``evaluate``, ``predict``), ``save``,
    ``summary``, ``parameters()`` and ``get_config``/``from_config`` are Keras'.

    Args:
        inputs: one symbolic tensor from ``nn.Input`` or a list of them.
        outputs: one symbolic tensor computed from ``inputs`` by layers, or a list of them.
        name: str or None (default ``"model"``, made unique).

    Raises:
        TypeError: ``inputs``/``outputs`` not symbolic tensors, or ``name`` not a string.
        ValueError: an input not made by ``nn.Input``, two layers with one name, or a disconnected graph
            (an output needing a placeholder that is not among ``inputs``).
    """

    _summary_shows_connections = True  # a chain (Sequential) leaves the "Connected to" column out

    def __init__(self, inputs, outputs, name=None):
        ModelBase.__init__(self)
        self.name = self._checked_name(name, "model")
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        where = f"Model {self.name!r}"
        self._set_graph(_symbolic_list(where, "inputs", inputs), _symbolic_list(where, "outputs", outputs))

    @staticmethod
    def _checked_name(name, default: str) -> str:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Model: name must be a string; got {name!r}")
        return name or _serial.unique_name(default)

    def _where(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _set_graph(self, inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> None:
        """Take the graph from ``inputs`` to ``outputs``: its nodes in order, its layers, the fused pairs."""
        for t in inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"{self._where()}: every input must come from nn.Input; {t!r} is the output of "
                                 f"{t.node.layer._where()}")
        self._nodes = nodes_between(inputs, outputs, self._where())
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._all_layers = list(dict.fromkeys(node.layer for node in self._nodes))
        names = [layer.name for layer in self._all_layers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{self._where()}: layer names must be unique in a model; {twice} name more than one "
                             f"layer (pass name= to tell them apart)")
        self._layers = [layer for layer in self._all_layers if not isinstance(layer, InputLayer)]
        self._fused = fusion.fusable_pairs(self._nodes, self.outputs)
        self._folds = fusion.foldable_batchnorms(self._nodes, self.outputs)
        self._bn_relus = fusion.batchnorm_relus(self._nodes, self.outputs)
        self.built = True

    # -- structure ---------------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """Every layer in the order of first use, the InputLayers included (as Keras' functional models)."""
        return list(self._all_layers)

    @property
    def input_shape(self):
        """The input shape (batch axis ``None``), a list of them for several inputs."""
        shapes = [t.shape for t in self.inputs] if self.built else [None]
        return shapes[0] if self._single_input else shapes

    @property
    def output_shape(self):
        """The output shape (batch axis ``None``), a list of them for several outputs."""
        self._require_built("output_shape")
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if self._single_output else shapes

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"{self._where()}: the model is not built yet, so it has no {what}; call "
                             f"build(input_shape), start it with an Input or call the model on data")

    def get_layer(self, name=None, index=None) -> Layer:
        """The layer called ``name`` or at position ``index`` of ``layers`` (exactly one of the two)."""
        if (name is None) == (index is None):
            raise ValueError(f"{self._where()}: get_layer takes name or index (exactly one); got name={name!r}, "
                             f"index={index!r}")
        layers = self.layers
        if index is not None:
            if not validation.is_int(index) or not -len(layers) <= index < len(layers):
                raise ValueError(f"{self._where()}: get_layer index={index!r} is out of range for {len(layers)} "
                                 f"layers")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self._where()}: no layer named {name!r}; its layers are "
                         f"{[layer.name for layer in layers]}")

    # -- forward ---------------------------------------------------------------------------------------
    def _input_values(self, x) -> list[Tensor]:
        if len(self.inputs) == 1:  # Model([x], y) also takes a bare array, as Keras does
            one = isinstance(x, (list, tuple)) and len(x) == 1 and not self._single_input
            return [as_tensor(x[0] if one else x)]
        if not isinstance(x, (list, tuple)) or len(x) != len(self.inputs):
            raise ValueError(f"{self._where()}: expected a list of {len(self.inputs)} inputs (one per model input: "
                             f"{[t.name for t in self.inputs]}); got {type(x).__name__}")
        return [as_tensor(v) for v in x]

    def __call__(self, x, training: bool = False):
        if isinstance(x, SymbolicTensor) or (isinstance(x, (list, tuple)) and x
                                             and any(isinstance(t, SymbolicTensor) for t in x)):
            return self._call_symbolic(x)
        values = self._input_values(x)
        if not self.built:
            self.build((None,) + tuple(values[0].shape[1:]))
        for t, v in zip(self.inputs, values, strict=True):
            if v.ndim != len(t.shape):
                consumer = next((n.layer._where() for n in self._nodes if t in n.inputs), "the model")
                raise ValueError(f"{self._where()}: expected inputs of shape {_fmt_shape(t.shape)} (rank "
                                 f"{len(t.shape)}) for {consumer}; got shape {tuple(v.shape)}")
        env = {id(t): v for t, v in zip(self.inputs, values, strict=True)}
        try:
            with outermost_call(self._layers):  # Keras: the model's call clears its layers' activity penalties
                self._run(env, training)
        except ValueError as exc:
            if all(tuple(v.shape[1:]) == tuple(t.shape[1:]) for t, v in zip(self.inputs, values, strict=True)):
                raise
            raise ValueError(f"{exc} ({self._where()} was built for inputs "
                             f"{', '.join(_fmt_shape(t.shape) for t in self.inputs)} and called on shape "
                             f"{', '.join(str(tuple(v.shape)) for v in values)})") from exc
        outs = [env[id(t)] for t in self.outputs]
        return outs[0] if self._single_output else outs

    def _call_symbolic(self, x):
        """The model called on symbolic tensors (a model used as a layer, Keras' nested models): its nodes are
        called again, in order, on ``x`` (one symbolic tensor per model input), so its layers, and their weights,
        join the calling graph as shared layers (a layer called in two graphs has one node in each, and its
        gradient sums over both uses). Returns the symbolic outputs (one, or a list). Unlike Keras, the outer
        model lists the inner model's layers, not the inner model as one layer: its graph is inlined."""
        self._require_built("symbolic call")
        given = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(given) != len(self.inputs) or not all(isinstance(t, SymbolicTensor) for t in given):
            raise ValueError(f"{self._where()}: a symbolic call takes {len(self.inputs)} symbolic tensor(s), one per "
                             f"model input {[t.name for t in self.inputs]}; got {given!r}")
        for t, g in zip(self.inputs, given, strict=True):
            if len(g.shape) != len(t.shape) or any(a is not None and b is not None and a != b
                                                   for a, b in zip(t.shape[1:], g.shape[1:], strict=True)):
                raise ValueError(f"{self._where()}: input {t.name!r} expects shape {_fmt_shape(t.shape)}; got a "
                                 f"symbolic tensor of shape {_fmt_shape(g.shape)}")
        env = {id(t): g for t, g in zip(self.inputs, given, strict=True)}
        for node in self._nodes:
            if id(node.output) in env:
                continue
            args = [env[id(t)] for t in node.inputs]
            env[id(node.output)] = node.layer(args if node.layer.takes_list else args[0])
        outs = [env[id(t)] for t in self.outputs]
        return outs[0] if self._single_output else outs

    def _run(self, env: dict, training: bool) -> None:
        """Compute every node's output into ``env`` (``id(symbolic tensor) -> Tensor``), in graph order."""
        skip = set()
        fuse = fusion.enabled()
        for node in self._nodes:
            if id(node.output) in env or id(node) in skip:
                continue
            args = [env[id(t)] for t in node.inputs]
            x = args if node.layer.takes_list else args[0]
            done = self._run_fused(node, x, training) if fuse else None
            if done is not None:
                last, value, skipped = done
                env[id(last.output)] = value
                skip.update(id(n) for n in skipped)
            else:
                env[id(node.output)] = node.layer(x, training=training)

    def _run_fused(self, node, x, training: bool):
        """``(last node, its value, the nodes it covers)`` when ``node`` starts a fused run (``nn.fusion``: conv +
        relu + max-pool; conv + BatchNormalization [+ ReLU] folded when the BatchNormalization uses its moving
        statistics; BatchNormalization + ReLU in training), else None. ``x`` is cast to the first layer's dtype;
        observers' events (anomaly mode) name every layer of the run."""
        pool = self._fused.get(id(node))
        if pool is not None:
            run = [pool]
            compute = lambda xc: fusion.conv_relu_max_pool(node.layer, pool.layer, xc)  # noqa: E731
        elif id(node) in self._folds:
            bn, relu = self._folds[id(node)]
            if training and bn.layer.trainable:
                return None
            run = [bn] + ([relu] if relu is not None else [])
            compute = lambda xc: fusion.conv_batchnorm(node.layer, bn.layer, xc, relu=relu is not None)  # noqa: E731
        elif id(node) in self._bn_relus and training and node.layer.trainable:
            run = [self._bn_relus[id(node)]]
            compute = lambda xc: fusion.batchnorm_relu(node.layer, xc)  # noqa: E731
        else:
            return None
        if any(n.layer.dtype != node.layer.dtype for n in run):
            return None
        xc = node.layer._cast_input(x)
        if not observe.observers():
            value = compute(xc)
        else:
            with observe.in_layer(" + ".join(n.layer._where() for n in [node] + run) + " (fused)"):
                value = compute(xc)
        return None if value is None else (run[-1], value, run)

    # -- weights ---------------------------------------------------------------------------------------
    @property
    def weights(self) -> list[Tensor]:
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable(self) -> bool:
        """True if some layer is trainable. Setting it sets every layer's ``trainable`` (freezing or releasing the
        whole model); a layer's own flag can be changed afterwards and is what counts (unlike Keras, where a
        frozen model also hides the weights of a layer set trainable again)."""
        return any(layer.trainable for layer in self._layers)

    @trainable.setter
    def trainable(self, value) -> None:
        value = validation.boolean(self._where(), "trainable", value)
        for layer in self._layers:
            layer.trainable = value

    def parameters(self) -> list[Tensor]:
        """The trainable weight Tensors, in Keras order (for the optimizers)."""
        return [w for layer in self._layers for w in layer.trainable_weights]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self._layers)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, layer by layer (order of first use), kernel then bias (Keras order)."""
        return [a for layer in self._layers for a in layer.get_weights()]

    def set_weights(self, arrays) -> None:
        """Set every weight from arrays in Keras order; every array is checked before anything changes
        (``layer.assign_checked``)."""
        if not self.built:
            raise ValueError(f"{self._where()}: set_weights on a model that is not built (it has no weights yet); "
                             f"build it first: model.build(input_shape), or start it with nn.Input(shape)")
        arrays = list(arrays)
        slots = [(f"{self._where()}: {layer._where()} weight {name!r}", t) for layer in self._layers
                 for name, t in zip(layer.weight_names, layer.weights, strict=True)]
        if len(arrays) != len(slots):
            raise ValueError(f"{self._where()}: set_weights expects {len(slots)} arrays; got {len(arrays)}")
        assign_checked(slots, arrays)

    def apply_constraints(self) -> None:
        """Project the constrained weights of every layer (after each optimizer step)."""
        for layer in self._layers:
            layer.apply_constraints()

    @property
    def losses(self) -> list[Tensor]:
        """Every layer's regularization penalties (weights now, activity of the last call: one per layer call)."""
        return [loss for layer in self._layers for loss in layer.losses]

    def save_weights(self, path) -> None:
        """Write the weights to ``path`` atomically: Keras' layout for a ``.weights.h5`` (or ``.h5``) name
        (``nn.saving``), ``.npz`` otherwise (``nn.checkpoint``)."""
        if os.fspath(path).endswith(".h5"):
            saving.save_keras_weights(self, path)
        else:
            checkpoint.save_weights(self, path)

    def load_weights(self, path) -> None:
        """Load weights from a ``.weights.h5`` file (Keras' or ``save_weights``'), a ``.keras`` archive or an
        ``.npz`` written by ``save_weights`` (or Keras-ordered arrays); all checked before any change."""
        if os.fspath(path).endswith((".h5", ".keras")):
            saving.load_keras_weights(self, path)
        else:
            checkpoint.load_weights(self, path)

    def save(self, path, overwrite=True, include_optimizer=True) -> None:
        """Write the whole model to ``path`` in Keras 3's ``.keras`` format (``keras.models.load_model`` opens it).

        The archive holds the architecture (``get_config``), the weights and, with ``include_optimizer``, the
        optimizer with its state and the compile arguments; it is written atomically. ``nn.load_model(path)``
        reads it back (``nn.saving``).

        Args:
            path: file path ending in ``.keras``.
            overwrite: bool, default True; False refuses an existing file.
            include_optimizer: bool, default True: also save the optimizer state, to resume training.
        """
        saving.save_model(self, path, overwrite=overwrite, include_optimizer=include_optimizer)

    # -- config ----------------------------------------------------------------------------------------
    def _node_keys(self) -> dict[int, list]:
        """``id(node) -> [layer name, node index, 0]``: Keras' reference to a call (the index counts the layer's
        calls inside this model)."""
        keys, seen = {}, {}
        for node in self._nodes:
            index = seen.get(id(node.layer), 0)
            seen[id(node.layer)] = index + 1
            keys[id(node)] = [node.layer.name, index, 0]
        return keys

    def get_config(self) -> dict:
        """JSON-able description (Keras' functional layout): ``layers`` (each with ``inbound_nodes``: per call,
        the ``[layer name, node index, tensor index]`` it reads), ``input_layers`` and ``output_layers``."""
        keys = self._node_keys()
        layers = []
        for layer in self._all_layers:
            calls = [[keys[id(t.node)] for t in node.inputs] for node in self._nodes if node.layer is layer]
            layers.append({**registry.serialize(layer), "name": layer.name,
                           "inbound_nodes": [call for call in calls if call]})
        return {"name": self.name, "layers": layers,
                "input_layers": [keys[id(t.node)] for t in self.inputs],
                "output_layers": [keys[id(t.node)] for t in self.outputs]}

    @classmethod
    @_serial.names_kept_on_failure()
    def from_config(cls, config: dict) -> "Model":
        """Rebuild the graph (fresh weights) from ``get_config()``; a failure uses up no layer name."""
        layers = {entry["name"]: registry.deserialize(entry) for entry in config["layers"]}
        produced: dict[tuple, SymbolicTensor] = {}
        for entry in config["layers"]:
            layer = layers[entry["name"]]
            if isinstance(layer, InputLayer):
                produced[(layer.name, 0)] = layer.output
        pending = [(entry["name"], i, call) for entry in config["layers"]
                   for i, call in enumerate(entry["inbound_nodes"])]
        while pending:  # a call waits until the calls it reads exist (a shared layer may be reused downstream)
            ready = [p for p in pending if all((name, index) in produced for name, index, _ in p[2])]
            if not ready:
                raise ValueError(f"Model.from_config: the calls {[(n, i) for n, i, _ in pending]} read values no "
                                 f"layer produces; the config is inconsistent")
            for name, i, call in ready:
                args = [produced[(n, j)] for n, j, _ in call]
                produced[(name, i)] = layers[name](args[0] if len(args) == 1 else args)
                pending.remove((name, i, call))

        def pick(refs):
            return [produced[(name, index)] for name, index, _ in refs]

        inputs, outputs = pick(config["input_layers"]), pick(config["output_layers"])
        return cls(inputs[0] if len(inputs) == 1 else inputs, outputs[0] if len(outputs) == 1 else outputs,
                   name=config.get("name"))

    # -- summary ----------------------------------------------------------------------------------------
    def receptive_fields(self) -> list[str]:
        """Per layer of ``layers``, the input pixels one output unit sees along every path, as ``"RxR"`` (several
        joined by ``" | "`` where paths differ; ``"all"`` after Dense/global pooling; ``"1"`` before any
        spatial layer). A shared layer lists the fields of all its calls."""
        self._require_built("receptive fields")
        spatial = _input_spatial(self.inputs[0].shape, self._layers)
        fields: dict[int, set] = {}
        per_layer: dict[str, set] = {}
        for node in self._nodes:
            states = set().union(*(fields[id(t)] for t in node.inputs)) if node.inputs else {None}
            rf = node.layer.receptive_field()
            if rf == "global":
                states = {"all"}
            elif rf is not None:
                states = {_grow(state, rf) for state in states}
            fields[id(node.output)] = states
            per_layer.setdefault(node.layer.name, set()).update(states)
        return [" | ".join(sorted({_show(s, spatial) for s in per_layer[layer.name]}, key=_size_key))
                for layer in self.layers]

    def summary(self, print_fn=print) -> str:
        """Print (and return) a table of the layers, as Keras' ``summary``.

        Columns: layer (type), output shape, parameter count, the layers it reads (graph models only) and
        its receptive field in input pixels; then the total, trainable and non-trainable parameter counts.

        Args:
            print_fn: callable taking one line of text, default ``print``; pass ``lambda s: None`` to only
                get the string.

        Returns:
            The table as one string.

        Raises:
            ValueError: the model is not built yet (call it on data or give an input shape).
        """
        self._require_built("summary")
        chain = not self._summary_shows_connections
        rows = []
        for layer, field in zip(self.layers, self.receptive_fields(), strict=True):
            nodes = [n for n in self._nodes if n.layer is layer]
            shape = " | ".join(dict.fromkeys(_fmt_shape(n.output.shape) for n in nodes))
            inbound = ", ".join(f"{t.node.layer.name}" for n in nodes for t in n.inputs)
            row = [f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"]
            rows.append(row + ([] if chain else [inbound or "-"]) + [field])
        head = ["Layer (type)", "Output Shape", "Param #"] + ([] if chain else ["Connected to"]) + ["Receptive field"]
        widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))]
        line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()
        rule = "-" * len(line)
        total = self.count_params()
        trainable = sum(t.size for t in self.parameters())
        shapes = ", ".join(_fmt_shape(t.shape) for t in self.inputs)
        text = [f'Model: "{self.name}"', rule, line, rule]
        text += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        text += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}", f"Input shape: {shapes}"]
        out = "\n".join(text)
        if print_fn is not None:
            print_fn(out)
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={len(self._layers)} built={self.built}>"


def _grow(state, rf):
    """One layer's effect on a receptive-field state ``(R per axis, J per axis)`` (``None``: no spatial layer yet;
    ``"all"``: the whole input)."""
    if state == "all":
        return state
    r, jump = state if state is not None else ((1.0,) * len(rf), (1.0,) * len(rf))
    return (tuple(ri + (k - 1) * ji for ri, ji, (k, _) in zip(r, jump, rf, strict=True)),
            tuple(ji * s for ji, (_, s) in zip(jump, rf, strict=True)))


def _show(state, spatial) -> str:
    if state is None:
        return "1"
    if state == "all":
        return "all" if spatial is None else "all (" + "x".join(str(n) for n in spatial) + ")"
    sizes = [int(round(v)) for v in state[0]]
    if spatial is not None and len(spatial) == len(sizes):
        sizes = [min(v, n) if n is not None else v for v, n in zip(sizes, spatial, strict=True)]
    return "x".join(str(v) for v in sizes)


def _size_key(text: str):
    head = text.split(" ")[0].split("x")[0]
    return (not head.isdigit(), int(head) if head.isdigit() else 0, text)


def _input_spatial(input_shape, layers):
    """The spatial sizes of the model input, read with the data format of the first layer that has one."""
    if input_shape is None or len(input_shape) < 3:
        return None
    fmt = next((getattr(layer, "data_format", None) for layer in layers if hasattr(layer, "data_format")),
               "channels_last")
    return tuple(input_shape[1:-1]) if fmt == "channels_last" else tuple(input_shape[2:])

