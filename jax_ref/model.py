"""``from_engine(model) -> JaxModel``: any engine model (a graph ``Model`` or a ``Sequential``) as a pure, jittable
JAX function.

The twin is read from the engine model itself: its nodes in the engine's topological order (``model._nodes``:
one per layer call, a shared layer has several), each layer's class and ``get_config()`` (its JAX function from
``jax_ref._layers``, written from Keras' specification) and its weights (``weight_names`` / ``get_weights()``),
so there is no second hand-written model definition. A ``Sequential`` is the chain case of the same walk.

Two pytrees, both ``{layer_name: {weight_name: array}}`` (layers without any are absent):

- ``params``: the weights a gradient trains (``kernel``, ``bias``, ``gamma``, ``beta``; a frozen layer's too,
  marked in ``LayerInfo.frozen_weights``);
- ``state``: the layer state no gradient touches (BatchNormalization's ``moving_mean`` / ``moving_variance``).

``apply_with_state(params, state, x, training=False, rng=None) -> (y, new_state)`` is the pure walk: in
training a BatchNormalization returns its moving statistics updated (Keras' ``moving * momentum + batch *
(1 - momentum)``), otherwise ``new_state`` is ``state``. ``apply(params, x, ...)`` is its output alone (with
``state`` defaulting to ``self.state``). ``x`` is one array, or a list of them for a model with several inputs;
``y`` is one array, or a list for several outputs. ``to_engine(params, state)`` writes weights and moving
statistics back into the engine model.

Nodes are named by their layer; the calls of a shared layer are ``"<layer>:0"``, ``"<layer>:1"``, ... in graph
order. A shared layer has one set of weights: its gradient is the sum over its nodes.
"""

from __future__ import annotations

from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref import _custom, _layers, _penalties
from jax_ref.losses import loss_function


class LayerInfo:
    """One layer of the twin: engine name and class, config, JAX function, weight names (trainable ones in
    ``weight_names``, state in ``state_names``; ``engine_weight_names`` in the engine's order), penalties."""

    def __init__(self, name, class_name, config, weight_names, frozen_weights=(), fn=None, penalties=None):
        self.name, self.class_name, self.config = name, class_name, config
        # a custom layer brings its function (its own call, ``jax_ref._custom``) and its penalty configs
        # (``_custom.penalties``: {weight: (regularizer, constraint)}, activity regularizer); a built-in one is
        # rebuilt from its config
        self.custom = fn is not None
        weight_options, activity = penalties if penalties is not None else (None, config.get("activity_regularizer"))
        self.fn = _layers.build(class_name, config) if fn is None else fn
        self.stateful = not self.custom and class_name in _layers.STATE_WEIGHTS
        state = set(_layers.STATE_WEIGHTS.get(class_name, ())) if self.stateful else set()
        self.engine_weight_names = list(weight_names)
        self.weight_names = [w for w in weight_names if w not in state]
        self.state_names = [w for w in weight_names if w in state]
        # weights whose engine tensor has requires_grad=False: all of them for a layer with trainable=False
        self.frozen_weights = frozenset(frozen_weights) - state
        where = f"{class_name} {name!r}"
        self.regularizers, self.constraints = {}, {}
        for w in self.weight_names:
            arg = _layers.weight_arg(class_name, w)
            reg_config, con_config = (weight_options[w] if weight_options is not None else
                                      (config.get(f"{arg}_regularizer"), config.get(f"{arg}_constraint")))
            reg = _penalties.regularizer(where, reg_config)
            con = _penalties.constraint(where, con_config)
            if reg is not None:
                self.regularizers[w] = reg
            if con is not None:
                self.constraints[w] = con
        self.activity_regularizer = _penalties.regularizer(where, activity)

    def call(self, p, s, x, training, key):
        """``(y, s_new)``: the layer on ``x`` with parameters ``p`` and state ``s`` (stateless layers return ``s``)."""
        if self.stateful:
            return self.fn(p, s, x, training, key)
        return self.fn(p, x, training, key), s

    def __repr__(self):
        return f"<{self.class_name} {self.name!r}>"


class NodeInfo:
    """One call of a layer in the graph: ``name``, its ``layer`` (a LayerInfo), the keys of the values it reads
    (``inputs``) and produces (``output``), whether it takes a list (merges) and its position ``index``."""

    def __init__(self, index, name, layer, inputs, output, takes_list):
        self.index, self.name, self.layer = index, name, layer
        self.inputs, self.output, self.takes_list = list(inputs), output, takes_list

    def __repr__(self):
        return f"<node {self.name!r} of {self.layer!r}>"


class JaxModel:
    """A JAX twin of an engine model (see the module docstring).

    ``layers``: ``LayerInfo`` per layer (order of first use). ``nodes``: ``NodeInfo`` per call, in graph order.
    ``input_names`` / ``output_nodes``: the model's inputs (InputLayer names) and the nodes giving its outputs.
    ``params`` / ``state``: the two pytrees (jnp arrays, the engine's dtype). ``jit_apply`` is ``apply`` compiled.

    Built by ``from_engine``; each argument becomes the attribute of its name.

    Args:
        engine_model: the engine ``Model`` mirrored.
        layers, nodes: ``LayerInfo`` per layer and ``NodeInfo`` per call, as above.
        input_names, output_keys: the inputs' names and the keys of the nodes that give the outputs.
        params, state: the two pytrees, as above.
        input_shape: the input shape without the batch axis.
    """

    def __init__(self, engine_model, layers, nodes, input_names, output_keys, params, state, input_shape):
        self.engine_model = engine_model
        self.layers, self.nodes = layers, nodes
        self.input_names, self.output_keys = list(input_names), list(output_keys)
        self.params, self.state = params, state
        self.input_shape = input_shape
        self.multiple_inputs = isinstance(input_shape, list)
        self.multiple_outputs = not getattr(engine_model, "_single_output", True)

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in self.nodes]

    @property
    def output_nodes(self) -> list[str]:
        """The name of the node computing each model output (an input name if an input is also an output)."""
        by_key = {node.output: node.name for node in self.nodes}
        return [by_key.get(k, self.input_names[k] if k < len(self.input_names) else "?") for k in self.output_keys]

    # -- forward ------------------------------------------------------------------------------------
    def _input_list(self, x) -> list:
        if not self.multiple_inputs:
            return [jnp.asarray(x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x)]
        if not isinstance(x, (list, tuple)) or len(x) != len(self.input_names):
            raise ValueError(f"JaxModel: expected a list of {len(self.input_names)} inputs (one per model input: "
                             f"{self.input_names}); got {type(x).__name__}")
        return [jnp.asarray(v) for v in x]

    def run(self, params, state, x, training=False, rng=None, taps=None, fns=None, input_taps=None):
        """Walk the nodes once: ``(outputs, inputs_by_node, outputs_by_node, new_state)``.

        ``outputs``: one array per model output; ``inputs_by_node``: each node's input (a list for a merge);
        ``outputs_by_node``: each node's output, keyed by node name. ``taps`` (``{node name: array}``) is added
        to those nodes' outputs (zeros leave the result unchanged; the gradient with respect to a tap is the
        gradient with respect to that node's output). ``input_taps`` (``{node name: [array per input]}``) is
        added to what that node reads, and to nothing else: the gradient with respect to it is that node's
        backward alone, ``vjp_node(dL/d output)``, not the sum over every reader of the value.
        ``fns`` (``{layer name: f(p, s, x, training, key) -> (y, s)}``) replaces some layers' functions (same
        values). Node ``i`` gets the key ``fold_in(rng, i)``.
        A shared stateful layer's state flows through its calls in graph order.
        """
        values = dict(enumerate(self._input_list(x)))
        state = dict(state)
        inputs, outputs = {}, {}
        for node in self.nodes:
            layer = node.layer
            key = None if rng is None else jax.random.fold_in(rng, node.index)
            args = [values[k] for k in node.inputs]
            if input_taps is not None and node.name in input_taps:
                args = [a + t for a, t in zip(args, input_taps[node.name], strict=True)]
            arg = args if node.takes_list else args[0]
            call = layer.call if fns is None or layer.name not in fns else fns[layer.name]
            h, s = call(params.get(layer.name, {}), state.get(layer.name, {}), arg, training, key)
            if layer.state_names:
                state[layer.name] = s
            if taps is not None and node.name in taps:
                h = h + taps[node.name]
            inputs[node.name] = arg
            values[node.output] = outputs[node.name] = h
        return [values[k] for k in self.output_keys], inputs, outputs, state

    def _result(self, outs):
        return outs if self.multiple_outputs else outs[0]

    def apply_with_state(self, params, state, x, training=False, rng=None, capture=False):
        """``(y, new_state)``, or ``((y, {"inputs": {node: ...}, "outputs": {node: ...}}), new_state)`` with
        ``capture=True``. ``training=True`` uses batch statistics and updates the moving ones (BatchNormalization)
        and turns Dropout on (``rng``, a JAX key, is then required)."""
        outs, inputs, outputs, new_state = self.run(params, state, x, training=training, rng=rng)
        y = self._result(outs)
        return ((y, {"inputs": inputs, "outputs": outputs}) if capture else y), new_state

    def apply(self, params, x, training=False, rng=None, capture=False, state=None):
        """The model's output for ``x`` (``apply_with_state``'s first result); ``state`` defaults to
        ``self.state`` (read when called: pass it explicitly inside your own ``jax.jit``)."""
        return self.apply_with_state(params, self.state if state is None else state, x, training, rng, capture)[0]

    def __call__(self, x, training=False, rng=None):
        return self.jit_apply(self.params, x, training=training, rng=rng)

    @cached_property
    def jit_apply_with_state(self):
        """``apply_with_state`` compiled (``training``/``capture`` static, once per shape)."""
        return jax.jit(self.apply_with_state, static_argnames=("training", "capture"))

    @property
    def jit_apply(self):
        """``apply`` compiled (``training``/``capture`` static, once per shape); ``state`` defaults to the current
        ``self.state``, passed as an argument (never baked into the compiled function)."""
        def jit_apply(params, x, training=False, rng=None, capture=False, state=None):
            state = self.state if state is None else state
            return self.jit_apply_with_state(params, state, x, training=training, rng=rng, capture=capture)[0]
        return jit_apply

    # -- penalties and constraints --------------------------------------------------------------------
    def weight_penalty(self, params):
        """Sum of the weight regularizers (``kernel_regularizer``, ``bias_regularizer``, ...)."""
        total = 0.0
        for layer in self.layers:
            for w, reg in layer.regularizers.items():
                total = total + reg(params[layer.name][w])
        return total

    def activity_penalty(self, outputs):
        """Sum over nodes whose layer has an ``activity_regularizer`` of ``reg(output) / batch`` (Keras' rule,
        once per call of a shared layer); ``outputs`` is ``{node name: output}``."""
        total = 0.0
        for node in self.nodes:
            reg = node.layer.activity_regularizer
            if reg is not None:
                out = outputs[node.name]
                total = total + reg(out) / out.shape[0]
        return total

    def constrain(self, params):
        """``params`` with every weight constraint applied (as the engine does after each optimizer step)."""
        out = {name: dict(ws) for name, ws in params.items()}
        for layer in self.layers:
            for w, project in layer.constraints.items():
                out[layer.name][w] = project(out[layer.name][w])
        return out

    def loss_with_state(self, params, state, x, y, loss="cross_entropy", training=False, rng=None,
                        regularization=True, taps=None, input_taps=None):
        """``(total, new_state)``: ``loss(apply(params, x), y)`` plus the weight and activity penalties (as the
        engine's ``fit``); with several outputs ``y`` is a list and the losses of the outputs add (Keras).
        ``taps``/``input_taps``: as ``run``."""
        outs, _, outputs, new_state = self.run(params, state, x, training=training, rng=rng, taps=taps,
                                               input_taps=input_taps)
        fn = loss_function(loss)
        ys = list(y) if self.multiple_outputs else [y]
        if len(ys) != len(outs):
            raise ValueError(f"JaxModel: y must hold one target per model output ({len(outs)}); got {len(ys)}")
        total = sum(fn(o, t) for o, t in zip(outs, ys, strict=True))
        if regularization:
            total = total + self.weight_penalty(params) + self.activity_penalty(outputs)
        return total, new_state

    def loss(self, params, x, y, loss="cross_entropy", training=False, rng=None, regularization=True, taps=None,
             state=None):
        """``loss_with_state``'s total (``state`` defaults to ``self.state``)."""
        state = self.state if state is None else state
        return self.loss_with_state(params, state, x, y, loss, training, rng, regularization, taps)[0]

    # -- weights both ways ------------------------------------------------------------------------------
    def to_engine(self, params=None, state=None, model=None):
        """Write ``params`` and ``state`` (defaults: ``self.params``, ``self.state``) into the engine model (in
        place, the engine's dtypes); returns the model."""
        params = self.params if params is None else params
        state = self.state if state is None else state
        model = self.engine_model if model is None else model
        for info in self.layers:
            if not info.engine_weight_names:
                continue
            layer = model.get_layer(info.name)
            values = {**params.get(info.name, {}), **state.get(info.name, {})}
            layer.set_weights([np.asarray(values[w]).astype(t.dtype)
                               for w, t in zip(info.engine_weight_names, layer.weights, strict=True)])
        return model

    def astype(self, params, dtype):
        """``params`` (or any pytree, e.g. ``state``) cast to ``dtype``."""
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)

    def __repr__(self):
        return f"JaxModel({', '.join(repr(layer) for layer in self.layers)})"


def _engine_layer_info(layer) -> LayerInfo:
    frozen = [w for w, t in zip(layer.weight_names, layer.weights, strict=True) if not t.requires_grad]
    if _custom.is_custom(layer):  # a user's subclass: its own call, run on JAX
        return LayerInfo(layer.name, type(layer).__name__, layer.get_config(), layer.weight_names, frozen,
                         fn=_custom.layer_function(layer), penalties=_custom.penalties(layer))
    return LayerInfo(layer.name, type(layer).__name__, layer.get_config(), layer.weight_names, frozen)


def from_engine(model) -> JaxModel:
    """The JAX twin of an engine model (a built ``Model`` or ``Sequential``), walking its nodes in order.

    Each layer is rebuilt from its own ``get_config`` and weights; a custom layer (a user's ``Layer``
    subclass) runs its own ``call`` on JAX (``jax_ref._custom``). ``twin.apply(params, state, x)`` computes
    the same function with ``jax.numpy``/``lax``, so ``jax.grad`` of it checks the engine's gradients.

    Args:
        model: a built engine model (``tinygrad_cnn.nn.Model`` or ``Sequential``); it is not modified.

    Returns:
        A ``JaxModel`` with ``params`` and ``state`` pytrees (jnp arrays in the engine's dtype), ``apply``,
        ``jit_apply`` and ``to_engine()`` (writes trained weights back).

    Raises:
        TypeError: ``model`` is not an engine model.
        ValueError: the model is not built yet.
        NotImplementedError: a layer has no twin, or a custom layer's call uses something the twin cannot
            mirror (the message names the layer, its class and the operation).
    """
    if not hasattr(model, "get_config") or not hasattr(model, "layers"):
        raise TypeError(f"from_engine: model must be a tinygrad_cnn.nn.Model or Sequential; got "
                        f"{type(model).__name__}")
    if not getattr(model, "built", True):
        raise ValueError(f"from_engine: the engine model {getattr(model, 'name', '')!r} is not built yet; call "
                         f"model.build(input_shape) or run it on data first")
    keys = {id(t): i for i, t in enumerate(model.inputs)}  # symbolic tensor -> key of its value in the walk
    input_names = [t.node.layer.name for t in model.inputs]
    calls = [node for node in model._nodes if id(node.output) not in keys]
    count = {}
    for node in calls:
        count[id(node.layer)] = count.get(id(node.layer), 0) + 1
    infos, nodes, seen = {}, [], {}
    for i, node in enumerate(calls):
        layer = node.layer
        if id(layer) not in infos:
            infos[id(layer)] = _engine_layer_info(layer)
        k = seen[id(layer)] = seen.get(id(layer), -1) + 1
        name = layer.name if count[id(layer)] == 1 else f"{layer.name}:{k}"
        missing = [t for t in node.inputs if id(t) not in keys]
        if missing:  # the engine's order puts every node after the nodes it reads
            raise ValueError(f"from_engine: node {name!r} reads {missing} before they are computed")
        keys[id(node.output)] = len(keys)
        nodes.append(NodeInfo(i, name, infos[id(layer)], [keys[id(t)] for t in node.inputs], keys[id(node.output)],
                              bool(layer.takes_list)))
    layers = list(infos.values())
    params, state = {}, {}
    for info in layers:
        arrays = dict(zip(info.engine_weight_names, model.get_layer(info.name).get_weights(), strict=True))
        if info.weight_names:
            params[info.name] = {w: jnp.asarray(arrays[w]) for w in info.weight_names}
        if info.state_names:
            state[info.name] = {w: jnp.asarray(arrays[w]) for w in info.state_names}
    for node, info in zip(calls, (n.layer for n in nodes), strict=True):
        if info.custom:  # trace it once now, so what cannot be mirrored fails here, naming the layer
            _custom.probe(info.fn, node.layer, params.get(info.name, {}), node)
    shape = model.input_shape
    shape = [tuple(s) for s in shape] if isinstance(shape, list) else (None if shape is None else tuple(shape))
    return JaxModel(model, layers, nodes, input_names, [keys[id(t)] for t in model.outputs], params, state, shape)
