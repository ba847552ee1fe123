"""What the attribution tools need from a model, and the input/target/score plumbing they share.

``as_net(model)`` accepts a ``JaxModel`` (``jax_ref.from_engine``) or an engine model (a graph ``Model`` or a
``Sequential``, converted once with ``from_engine``) with one input and one output, and returns ``(net,
params)``: ``net`` holds the pure functions (the twin's walk over the model's nodes in inference mode,
max pooling with non-overlapping windows given a fast but identical gradient, see ``_maxpool``) and a cache of
compiled ones (kept on the model under its architecture, ``architecture_key``: a second call with the same
shapes does not recompile, and a model changed since (``model.add``, a rebuild, another config or weight
shape) gets a new net rather than a stale description of the old one), ``params`` every
weight of every layer, ``{layer: {weight: array}}`` with the layer state (BatchNormalization's moving
statistics, which inference uses) beside the trained weights, read afresh on every call (so a model trained
between two calls is seen as it is now).

Layers and feature maps are named by node (``JaxModel.node_names``: the layer's name, ``"<layer>:<k>"`` for
the calls of a shared layer), in graph order.

The score of image ``x`` for class ``t`` is ``logits(x)[t]`` (``score="logit"``,
pre-softmax) or ``softmax(logits(x))[t]`` (``score="probability"``).

``prepare`` checks that the images fit the model before anything is compiled: a
wrong channel count, or an image size some layer cannot take, raises a
ValueError naming the calling function, ``x``, its image shape, the layer and
the image shape the model was built for (never an internal op's label alone).
The check runs once per image shape and dtype (on shapes, by ``jax.eval_shape``);
later calls with that shape only look it up.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref import _layers, _penalties
from jax_ref.attribution._maxpool import max_pool_stage
from jax_ref.model import JaxModel, from_engine
from tinygrad_cnn import validation

__all__ = ["Net", "as_net", "prepare", "score_fn", "stage_shapes"]

SCORES = ("logit", "probability")
_ATTR = "_jax_ref_attribution_net"


@dataclass(eq=False)
class Net:
    """Pure functions of a model: ``forward(params, x, taps=None, relu=None) -> (logits, {node: output})``
    (``taps``: ``{node: array}`` added to those nodes' outputs; ``relu``: a function used instead of ``max(h, 0)``
    wherever the model applies a plain ReLU, see ``relu_layers``), ``apply(params, x) -> logits``, the node
    ``names`` in graph order, the ``layer_names`` and the ``relu_layers`` (the layers ending in a plain ReLU:
    ``activation="relu"``, ``Activation("relu")``, ``ReLU()`` with its default config), the ``activations`` (every
    layer ending in an elementwise activation, see ``split_activation``) and the ``max_pools``, plus a cache of
    jitted functions. ``forward(..., calls={layer: f(p, s, x, training, key) -> (y, s)})`` replaces those
    layers' functions in the same walk (how DeepLift puts its rules in)."""

    forward: object
    names: tuple
    layer_names: tuple
    data_format: str
    image_shape: tuple | None  # the per-image shape the model was built for
    relu_layers: tuple = ()
    activations: dict = field(default_factory=dict)  # {layer: (pre, activation name, activation)}
    max_pools: dict = field(default_factory=dict)  # {MaxPooling layer: its call in the walk}
    _jits: dict = field(default_factory=dict)

    def apply(self, params, x):
        return self.forward(params, x)[0]

    def jit(self, key, build):
        """The jitted function cached under ``key`` (``build()`` makes it the first time)."""
        fn = self._jits.get(key)
        if fn is None:
            fn = self._jits[key] = build()
        return fn


def _engine_format(layers) -> str:
    return next((layer.data_format for layer in layers if hasattr(layer, "data_format")), "channels_last")


def _fast_pools(jax_model) -> dict:
    """``{layer name: f(p, s, x, training, key) -> (y, s)}`` for the max poolings with non-overlapping windows."""
    fns = {}
    for info in jax_model.layers:
        fast = max_pool_stage(info.config) if info.class_name.startswith("MaxPooling") else None
        if fast is not None:
            fns[info.name] = lambda p, s, x, training, key, fast=fast: (fast(p, x), s)
    return fns


def _identity(p, x, training, key):
    return x


def _weightless(info):
    fn = _layers.build(info.class_name, info.config)
    return lambda h: fn({}, h, False, None)


def split_activation(info):
    """``(pre, name, act)`` with the layer equal to ``act(pre(p, x, training, key))``, ``act`` its final
    elementwise activation (``name``: ``"relu"``, ``"leaky_relu"``, ``"elu"`` or a Keras activation name), or
    None if it has none. ``ReLU()`` is ``"relu"`` with its default config, ``"leaky_relu"`` with only a
    ``negative_slope``; ``LeakyReLU`` and ``ELU`` layers are theirs; ``Activation(a)`` and a layer's
    ``activation=a`` are ``a`` (``"linear"`` and ``"softmax"``, not elementwise, are not activations here)."""
    config, kind = info.config, info.class_name
    if kind == "ReLU":
        if config.get("max_value") is not None or config.get("threshold"):
            return None
        return (_identity, "leaky_relu", _weightless(info)) if config.get("negative_slope") else (
            _identity, "relu", jax.nn.relu)
    if kind in ("LeakyReLU", "ELU"):
        return _identity, {"LeakyReLU": "leaky_relu", "ELU": "elu"}[kind], _weightless(info)
    name = config.get("activation")
    if name in (None, "linear", "softmax", "log_softmax") or kind not in _layers.BUILDERS:
        return None
    act = _penalties.activation(f"{kind} {info.name!r}", name)
    return (_identity if kind == "Activation" else _layers.build(kind, {**config, "activation": "linear"}),
            name, act)


def _build(jax_model) -> Net:
    if jax_model.multiple_inputs or jax_model.multiple_outputs:
        raise ValueError(f"attribution: the model must have one input and one output (an image in, class scores "
                         f"out); this one has inputs {jax_model.input_names} and outputs {jax_model.output_nodes}")
    fns = _fast_pools(jax_model)
    activations = {info.name: split for info in jax_model.layers if (split := split_activation(info)) is not None}
    before_relu = {name: pre for name, (pre, act, _) in activations.items() if act == "relu"}

    def forward(params, x, taps=None, wrap=None, relu=None, calls=None):  # the twin's walk in inference mode
        overrides = calls
        calls = fns
        if relu is not None:
            calls = {**fns, **{name: lambda p, s, x, training, key, f=f: (relu(f(p, x, training, key)), s)
                               for name, f in before_relu.items()}}
        if overrides:
            calls = {**calls, **overrides}
        if wrap is not None:
            calls = {info.name: wrap(info.name, calls.get(info.name, info.call)) for info in jax_model.layers}
        outs, _, outputs, _ = jax_model.run(params, params, jnp.asarray(x), training=False, taps=taps, fns=calls)
        return outs[0], outputs

    engine = getattr(jax_model, "engine_model", None)
    shape = jax_model.input_shape
    return Net(forward, tuple(jax_model.node_names), tuple(jax_model.layer_names),
               _engine_format(getattr(engine, "layers", [])), None if shape is None else tuple(shape[1:]),
               tuple(before_relu), activations,
               {info.name: fns.get(info.name, info.call) for info in jax_model.layers
                if info.class_name.startswith("MaxPooling")})


def _engine_params(model):
    return {layer.name: {w: jnp.asarray(a) for w, a in zip(layer.weight_names, layer.get_weights(), strict=True)}
            for layer in model.layers if layer.weight_names}


def _jax_params(model: JaxModel):
    names = set(model.params) | set(model.state)
    return {name: {**model.params.get(name, {}), **model.state.get(name, {})} for name in names}


def architecture_key(model) -> tuple:
    """What a model's net depends on, as a comparable value: for an engine model its config (layers, their
    hyperparameters and the graph, as JSON), input shape and every weight's ``(layer, name, shape, dtype)``; for
    a ``JaxModel`` (fixed at ``from_engine``) its nodes and the shapes and dtypes of its parameters."""
    if isinstance(model, JaxModel):  # on every call: the tree structure (paths) and leaf shapes, no strings
        leaves, tree = jax.tree_util.tree_flatten((model.params, model.state))
        return tuple(model.node_names), tree, tuple((a.shape, a.dtype) for a in leaves)
    weights = tuple((layer.name, name, tuple(t.shape), str(t.dtype)) for layer in model.layers
                    for name, t in zip(layer.weight_names, layer.weights, strict=True))
    config = json.dumps(model.get_config(), sort_keys=True, default=repr)
    return config, str(getattr(model, "input_shape", None)), weights


def _unchanged_jax_params(model: JaxModel, seen) -> bool:
    """Whether the JaxModel holds exactly the arrays it held when ``seen = (nodes, tree, leaves)`` was taken
    (the same tree and the same array objects: jax arrays are immutable, so its net and params still hold)."""
    leaves, tree = jax.tree_util.tree_flatten((model.params, model.state))
    nodes, seen_tree, seen_leaves = seen
    return (tree == seen_tree and len(leaves) == len(seen_leaves) and all(map(operator.is_, leaves, seen_leaves))
            and len(model.nodes) == len(nodes) and all(map(operator.is_, model.nodes, nodes)))


def as_net(model):
    """``(net, params)`` for a JaxModel or an engine model (see the module docstring)."""
    is_jax = isinstance(model, JaxModel)
    if not is_jax and not (hasattr(model, "layers") and hasattr(model, "get_config")):
        raise TypeError(f"attribution: model must be a jax_ref JaxModel or an engine Model/Sequential; got "
                        f"{type(model).__name__}")
    cached = model.__dict__.get(_ATTR)  # kept on the model: it lives exactly as long as the model does
    if is_jax and cached is not None and cached[2] is not None and _unchanged_jax_params(model, cached[2]):
        return cached[1], cached[3]  # the common case: the same arrays as last time (no key, no new dict)
    key = architecture_key(model)
    if cached is not None and cached[0] == key:
        net = cached[1]
    else:
        net = _build(model if is_jax else from_engine(model))
    params = _jax_params(model) if is_jax else _engine_params(model)
    seen = None
    if is_jax:
        leaves, tree = jax.tree_util.tree_flatten((model.params, model.state))
        seen = (tuple(model.nodes), tree, leaves)
    model.__dict__[_ATTR] = (key, net, seen, params)
    return net, params


def prepare(fn: str, net: Net, x, params=None):
    """``(batch, single)``: ``x`` as a float jnp batch in the weights' dtype (float32 weights compute in
    float32, float64 weights in float64), and whether a batch axis was added."""
    if type(x) is not np.ndarray:
        x = np.asarray(x)
    if x.dtype.kind != "f":  # every NumPy floating dtype is kind "f": the check itself only for the others
        validation.float_array(fn, "x", x)
    if net.image_shape is not None:
        rank = len(net.image_shape)
        if x.ndim not in (rank, rank + 1):
            raise ValueError(f"{fn}: x must be one image of rank {rank} or a batch of rank {rank + 1}; got shape "
                             f"{x.shape}")
        single = x.ndim == rank
    else:
        single = x.ndim == 3
    if x.size == 0:
        raise ValueError(f"{fn}: x is empty (shape {x.shape})")
    leaves = jax.tree_util.tree_leaves(params)
    dtype = leaves[0].dtype if leaves else x.dtype
    xb = (x[None] if single else x).astype(dtype, copy=False)  # NumPy: jit moves it once, no eager dispatch
    stage_shapes(fn, net, params, xb)
    return xb, single


def _check_channels(fn: str, net: Net, image: tuple):
    """The image's channel axis must hold as many channels as the model's input."""
    want = net.image_shape
    axis = -1 if net.data_format == "channels_last" else 0
    if want is not None and want[axis] is not None and image[axis] != want[axis]:
        got = image[axis]
        raise ValueError(f"{fn}: x has {got} channel{'s' * (got != 1)} per image (image shape {image}) but the "
                         f"model takes {want[axis]} (images of shape {want}, {net.data_format})")


def _traced_shapes(fn: str, net: Net, params, xb) -> tuple:
    """Each node's output shape per image (in ``net.names`` order), by abstract evaluation; a layer that cannot
    take its input is reported in terms of ``x``."""
    image = tuple(xb.shape[1:])
    built = "" if net.image_shape is None else f" (the model was built for images of shape {net.image_shape})"

    def wrap(name, call):
        def checked(*args):
            try:
                return call(*args)
            except ValueError as exc:
                raise ValueError(f"{fn}: x holds images of shape {image} that layer {name!r} cannot take{built}: "
                                 f"{exc}") from exc
        return checked

    outputs = jax.eval_shape(lambda p, x: net.forward(p, x, wrap=wrap)[1], params, xb)
    return tuple(tuple(outputs[name].shape[1:]) for name in net.names)


def stage_shapes(fn: str, net: Net, params, xb) -> tuple:
    """Each node's output shape per image for the batch ``xb``, after checking that its images fit the model
    (see the module docstring); computed once per image shape and dtype, then looked up."""
    key = ("shapes", xb.shape[1:], xb.dtype)
    shapes = net._jits.get(key)
    if shapes is None:
        _check_channels(fn, net, tuple(xb.shape[1:]))
        shapes = net._jits[key] = _traced_shapes(fn, net, params, xb)
    return shapes


def score_fn(net: Net, score: str, relu=None):
    """``f(params, xs, targets) -> (M,)`` scores of a batch, each image for its own target class (``relu``: as
    ``Net.forward``)."""
    def f(params, xs, targets):
        out = net.forward(params, xs, relu=relu)[0]
        if score == "probability":
            out = jax.nn.softmax(out, axis=-1)
        return jnp.take_along_axis(out, targets[:, None], axis=1)[:, 0]
    return f


def check_score(fn: str, score) -> str:
    return validation.choice(fn, "score", score, SCORES)


def targets_for(fn: str, net: Net, params, xb, target) -> np.ndarray | None:
    """Target class per image ``(B,)`` int32, validated; None (``target=None``) stands for the predicted
    class, resolved inside the compiled function by ``resolve_targets`` (jit traces None separately from an
    array, so each case compiles without a runtime branch and no separate forward pass is dispatched)."""
    if target is None:
        return None
    if type(target) is int:  # the common case: one lookup of the (read-only) array made for it last time
        kept = net._jits.get(("target", target, xb.shape, xb.dtype))
        if kept is not None:
            return kept
    stage_shapes(fn, net, params, xb)
    n_classes = net.jit(("classes", xb.shape[1:], xb.dtype), lambda: jax.eval_shape(net.apply, params, xb).shape[-1])
    if validation.is_int(target):  # without NumPy round trips
        if not 0 <= target < n_classes:
            raise ValueError(f"{fn}: target {int(target)} is outside the model's classes 0..{n_classes - 1}")
        t = np.full(xb.shape[0], target, np.int32)
        if type(target) is int:
            t.flags.writeable = False
            net._jits[("target", target, xb.shape, xb.dtype)] = t
        return t
    t = np.asarray(target)
    if not np.issubdtype(t.dtype, np.integer) or t.ndim > 1 or (t.ndim == 1 and t.shape[0] != xb.shape[0]):
        raise ValueError(f"{fn}: target must be None, an int class id or {xb.shape[0]} ids (one per image); "
                         f"got {target!r}")
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        bad = t.min() if t.min() < 0 else t.max()
        raise ValueError(f"{fn}: target {int(bad)} is outside the model's classes 0..{n_classes - 1}")
    return np.broadcast_to(t.astype(np.int32), (xb.shape[0],)).copy()


def resolve_targets(net: Net, params, xb, targets):
    """Inside a jitted function: the given targets, or the predicted classes ``argmax`` of the output (int32)
    if ``targets`` is None."""
    return jnp.argmax(net.apply(params, xb), axis=-1).astype(jnp.int32) if targets is None else targets


def finish(result, single: bool) -> np.ndarray:
    """A NumPy array, without the batch axis if the input was one image."""
    out = np.asarray(result)
    return out[0] if single else out
