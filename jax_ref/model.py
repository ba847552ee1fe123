"""``from_engine(model) -> JaxModel``: the engine's Sequential model as a pure, jittable JAX function.

The twin is read from the engine model itself: the layer stack from
``model.get_config()`` (class names and constructor arguments) and the weights
from each layer (``weight_names`` / ``get_weights()``), so there is no second
hand-written model definition. ``params`` is a pytree
``{layer_name: {"kernel": ..., "bias": ...}}`` (layers without weights are
absent) and ``apply(params, x, training=False, rng=None)`` is a pure function
of it; ``to_engine(params)`` writes weights back into the engine model.
"""

from __future__ import annotations

from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref import _layers, _penalties
from jax_ref.losses import loss_function
from tinygrad_cnn import validation


class LayerInfo:
    """One layer of the twin: engine name and class, config, JAX function, weight names, penalties."""

    def __init__(self, index, name, class_name, config, weight_names, frozen_weights=()):
        self.index, self.name, self.class_name, self.config = index, name, class_name, config
        self.fn = _layers.build(class_name, config)
        self.weight_names = list(weight_names)
        # weights whose engine tensor has requires_grad=False: all of them for a layer with trainable=False
        self.frozen_weights = frozenset(frozen_weights)
        where = f"{class_name} {name!r}"
        self.regularizers, self.constraints = {}, {}
        for w in self.weight_names:
            arg = _layers.weight_arg(class_name, w)
            reg = _penalties.regularizer(where, config.get(f"{arg}_regularizer"))
            con = _penalties.constraint(where, config.get(f"{arg}_constraint"))
            if reg is not None:
                self.regularizers[w] = reg
            if con is not None:
                self.constraints[w] = con
        self.activity_regularizer = _penalties.regularizer(where, config.get("activity_regularizer"))

    def __repr__(self):
        return f"<{self.class_name} {self.name!r}>"


class JaxModel:
    """A JAX twin of an engine ``Sequential`` (see the module docstring).

    ``layers``: ``LayerInfo`` per layer, in order. ``params``: the pytree of
    weights (jnp arrays, the engine's dtype). ``apply`` is pure; ``jit_apply``
    is its compiled version (``training``/``capture`` static).
    """

    def __init__(self, engine_model, layers, params, input_shape):
        self.engine_model = engine_model
        self.layers = layers
        self.params = params
        self.input_shape = input_shape

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def index(self, layer) -> int:
        """Position of a layer given by name or index (negative indices count from the end)."""
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            if not -len(self.layers) <= layer < len(self.layers):
                raise ValueError(f"JaxModel: layer index {layer} is out of range for {len(self.layers)} layers")
            return int(layer) % len(self.layers)
        names = self.layer_names
        if layer not in names:
            validation.choice("JaxModel", "layer", layer, tuple(names))
        return names.index(layer)

    # -- forward ------------------------------------------------------------------------------------
    def apply_range(self, params, h, start=0, stop=None, training=False, rng=None, taps=None):
        """Run layers ``start .. stop-1`` on ``h``; returns ``(output, inputs, outputs)`` lists per layer run.

        ``taps`` (``{layer_name: array}``) is added to those layers' outputs
        (zeros leave the result unchanged; the gradient with respect to a tap is
        the gradient with respect to that layer's output). Layer ``i`` gets the
        key ``fold_in(rng, i)``.
        """
        stop = len(self.layers) if stop is None else stop
        inputs, outputs = [], []
        for layer in self.layers[start:stop]:
            key = None if rng is None else jax.random.fold_in(rng, layer.index)
            inputs.append(h)
            h = layer.fn(params.get(layer.name, {}), h, training, key)
            if taps is not None and layer.name in taps:
                h = h + taps[layer.name]
            outputs.append(h)
        return h, inputs, outputs

    def apply(self, params, x, training=False, rng=None, capture=False):
        """The model's output for ``x``; with ``capture=True`` also ``{"inputs": {name: ...}, "outputs": {...}}``.

        ``training=True`` turns Dropout on (``rng``, a JAX key, is then required).
        """
        x = jnp.asarray(x)
        y, inputs, outputs = self.apply_range(params, x, training=training, rng=rng)
        if not capture:
            return y
        names = self.layer_names
        return y, {"inputs": dict(zip(names, inputs, strict=True)), "outputs": dict(zip(names, outputs, strict=True))}

    def __call__(self, x, training=False, rng=None):
        return self.jit_apply(self.params, x, training=training, rng=rng)

    @cached_property
    def jit_apply(self):
        """``jax.jit(apply)`` with ``training`` and ``capture`` static (compiled once per shape)."""
        return jax.jit(self.apply, static_argnames=("training", "capture"))

    # -- penalties and constraints --------------------------------------------------------------------
    def weight_penalty(self, params):
        """Sum of the weight regularizers (``kernel_regularizer``, ``bias_regularizer``, ...)."""
        total = 0.0
        for layer in self.layers:
            for w, reg in layer.regularizers.items():
                total = total + reg(params[layer.name][w])
        return total

    def activity_penalty(self, outputs):
        """Sum over layers with an ``activity_regularizer`` of ``reg(output) / batch`` (Keras' rule)."""
        total = 0.0
        for layer, out in zip(self.layers, outputs, strict=True):
            if layer.activity_regularizer is not None:
                total = total + layer.activity_regularizer(out) / out.shape[0]
        return total

    def constrain(self, params):
        """``params`` with every weight constraint applied (as the engine does after each optimizer step)."""
        out = {name: dict(ws) for name, ws in params.items()}
        for layer in self.layers:
            for w, project in layer.constraints.items():
                out[layer.name][w] = project(out[layer.name][w])
        return out

    def loss(self, params, x, y, loss="cross_entropy", training=False, rng=None, regularization=True, taps=None):
        """``loss(apply(params, x), y)`` plus the weight and activity penalties (as ``Sequential.fit``)."""
        out, _, outputs = self.apply_range(params, jnp.asarray(x), training=training, rng=rng, taps=taps)
        total = loss_function(loss)(out, y)
        if regularization:
            total = total + self.weight_penalty(params) + self.activity_penalty(outputs)
        return total

    # -- weights both ways ------------------------------------------------------------------------------
    def to_engine(self, params=None, model=None):
        """Write ``params`` (default: ``self.params``) into the engine model (in place); returns the model."""
        params = self.params if params is None else params
        model = self.engine_model if model is None else model
        by_name = {layer.name: layer for layer in model.layers}
        for info in self.layers:
            if not info.weight_names:
                continue
            layer = by_name[info.name]
            dtypes = [w.dtype for w in layer.weights]
            layer.set_weights([np.asarray(params[info.name][w]).astype(dt)
                               for w, dt in zip(info.weight_names, dtypes, strict=True)])
        return model

    def astype(self, params, dtype):
        """``params`` cast to ``dtype``."""
        return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)

    def __repr__(self):
        return f"JaxModel({', '.join(repr(layer) for layer in self.layers)})"


def from_engine(model) -> JaxModel:
    """The JAX twin of an engine ``Sequential`` (built, or with a declared input shape).

    Raises ``NotImplementedError`` naming the layer class if a layer has no twin.
    """
    if not hasattr(model, "get_config") or not hasattr(model, "layers"):
        raise TypeError(f"from_engine: model must be a tinygrad_cnn.nn.Sequential; got {type(model).__name__}")
    if not getattr(model, "built", True):
        raise ValueError(f"from_engine: the engine model {getattr(model, 'name', '')!r} is not built yet; call "
                         f"model.build(input_shape) or run it on data first")
    config = model.get_config()
    entries = [e for e in config["layers"] if e["class_name"] != "InputLayer"]
    engine_layers = list(model.layers)
    if len(entries) != len(engine_layers):
        raise ValueError(f"from_engine: config lists {len(entries)} layers but the model has {len(engine_layers)}")
    layers, params = [], {}
    for i, (entry, layer) in enumerate(zip(entries, engine_layers, strict=True)):
        cfg = entry["config"]
        frozen = [w for w, t in zip(layer.weight_names, layer.weights, strict=True) if not t.requires_grad]
        info = LayerInfo(i, layer.name, entry["class_name"], cfg, layer.weight_names, frozen)
        layers.append(info)
        if info.weight_names:
            params[layer.name] = {w: jnp.asarray(a) for w, a in zip(info.weight_names, layer.get_weights(),
                                                                     strict=True)}
    return JaxModel(model, layers, params, config.get("build_input_shape"))

