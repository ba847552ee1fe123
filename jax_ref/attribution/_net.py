"""What the attribution tools need from a model, and the input/target/score plumbing they share.

``as_net(model)`` accepts a ``JaxModel`` (``jax_ref.from_engine``) or an engine
``Sequential`` (converted once with ``from_engine``) and returns ``(net, params)``:
``net`` holds the pure functions (the layers in inference mode, max pooling with
non-overlapping windows given a fast but identical gradient, see ``_maxpool``) and a cache of compiled ones
(kept per model, so a second call with the same shapes does not
recompile), ``params`` the current weights (read afresh on every call, so a
model trained between two calls is seen as it is now).

The score of image ``x`` for class ``t`` is ``logits(x)[t]`` (``score="logit"``,
pre-softmax) or ``softmax(logits(x))[t]`` (``score="probability"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution._maxpool import max_pool_stage
from tinygrad_cnn import validation

__all__ = ["Net", "as_net", "prepare", "score_fn"]

SCORES = ("logit", "probability")
_ATTR = "_jax_ref_attribution_net"


@dataclass(eq=False)
class Net:
    """Pure functions of a model: ``apply(params, x) -> logits`` and its layers ``stages`` as
    ``(name, f(params, h) -> h')`` in order, plus a cache of jitted functions."""

    apply: object
    stages: tuple
    data_format: str
    input_rank: int | None
    _jits: dict = field(default_factory=dict)

    def jit(self, key, build):
        """The jitted function cached under ``key`` (``build()`` makes it the first time)."""
        fn = self._jits.get(key)
        if fn is None:
            fn = self._jits[key] = build()
        return fn

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stages)


def _engine_format(layers) -> str:
    return next((layer.data_format for layer in layers if hasattr(layer, "data_format")), "channels_last")


def _stage(info):
    """The layer in inference mode (Dropout is the identity); non-overlapping max pooling with a fast gradient."""
    if info.class_name.startswith("MaxPooling"):
        fast = max_pool_stage(info.config)
        if fast is not None:
            return fast
    return lambda params, h: info.fn(params.get(info.name, {}), h, False, None)


def _build(jax_model) -> Net:
    stages = tuple((info.name, _stage(info)) for info in jax_model.layers)

    def apply(params, x):  # the model's forward pass: the stages in order
        h = jnp.asarray(x)
        for _, f in stages:
            h = f(params, h)
        return h

    engine = getattr(jax_model, "engine_model", None)
    shape = jax_model.input_shape
    return Net(apply, stages, _engine_format(getattr(engine, "layers", [])),
               len(shape) if shape is not None else None)


def _engine_params(model):
    return {layer.name: {w: jnp.asarray(a) for w, a in zip(layer.weight_names, layer.get_weights(), strict=True)}
            for layer in model.layers if layer.weight_names}


def as_net(model):
    """``(net, params)`` for a JaxModel or an engine Sequential (see the module docstring)."""
    from jax_ref.model import JaxModel, from_engine

    is_jax = isinstance(model, JaxModel)
    if not is_jax and not (hasattr(model, "layers") and hasattr(model, "get_config")):
        raise TypeError(f"attribution: model must be a jax_ref JaxModel or an engine Sequential; got "
                        f"{type(model).__name__}")
    net = model.__dict__.get(_ATTR)  # kept on the model: it lives exactly as long as the model does
    if net is None:
        net = _build(model if is_jax else from_engine(model))
        model.__dict__[_ATTR] = net
    return net, (model.params if is_jax else _engine_params(model))


def prepare(fn: str, net: Net, x, params=None):
    """``(batch, single)``: ``x`` as a float jnp batch in the weights' dtype (float32 weights compute in
    float32, float64 weights in float64), and whether a batch axis was added."""
    x = np.asarray(x)
    validation.float_array(fn, "x", x)
    if net.input_rank is not None:
        if x.ndim not in (net.input_rank, net.input_rank - 1):
            raise ValueError(f"{fn}: x must be one image of rank {net.input_rank - 1} or a batch of rank "
                             f"{net.input_rank}; got shape {x.shape}")
        single = x.ndim == net.input_rank - 1
    else:
        single = x.ndim == 3
    if x.size == 0:
        raise ValueError(f"{fn}: x is empty (shape {x.shape})")
    leaves = jax.tree_util.tree_leaves(params)
    dtype = leaves[0].dtype if leaves else x.dtype
    xb = (x[None] if single else x).astype(dtype, copy=False)  # NumPy: jit moves it once, no eager dispatch
    return xb, single


def score_fn(net: Net, score: str):
    """``f(params, xs, targets) -> (M,)`` scores of a batch, each image for its own target class."""
    def f(params, xs, targets):
        out = net.apply(params, xs)
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
    key = ("classes", xb.shape[1:], xb.dtype)
    n_classes = net._jits.get(key)
    if n_classes is None:  # traced once per input shape, not on every call
        n_classes = net._jits[key] = jax.eval_shape(lambda p, x: net.apply(p, x), params, xb).shape[-1]
    if target is None:
        return None
    if validation.is_int(target):  # the common case, without NumPy round trips
        if not 0 <= target < n_classes:
            raise ValueError(f"{fn}: target {int(target)} is outside the model's classes 0..{n_classes - 1}")
        return np.full(xb.shape[0], target, np.int32)
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
