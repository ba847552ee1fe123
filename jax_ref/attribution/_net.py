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

``prepare`` checks that the images fit the model before anything is compiled: a
wrong channel count, or an image size some layer cannot take, raises a
ValueError naming the calling function, ``x``, its image shape, the layer and
the image shape the model was built for (never an internal op's label alone).
The check runs once per image shape and dtype (on shapes, by ``jax.eval_shape``);
later calls with that shape only look it up.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution._maxpool import max_pool_stage
from jax_ref.model import JaxModel, from_engine
from tinygrad_cnn import validation

__all__ = ["Net", "as_net", "outputs", "prepare", "run", "score_fn", "stage_shapes"]

SCORES = ("logit", "probability")
_ATTR = "_jax_ref_attribution_net"


@dataclass(eq=False)
class Net:
    """Pure functions of a model: ``apply(params, x) -> logits`` and its layers ``stages`` as
    ``(name, f(params, h) -> h')`` in order, plus a cache of jitted functions."""

    apply: object
    stages: tuple
    data_format: str
    image_shape: tuple | None  # the per-image shape the model was built for
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


def run(stages, params, h):
    """``stage_n(... stage_1(h))``: the last of ``stages``' outputs (``h`` itself when there are none)."""
    return functools.reduce(lambda a, stage: stage[1](params, a), stages, h)


def outputs(stages, params, h) -> list:
    """Every stage's output in order: ``[stage_1(h), stage_2(stage_1(h)), ...]``."""
    return list(itertools.accumulate(stages, lambda a, stage: stage[1](params, a), initial=h))[1:]


def _build(jax_model) -> Net:
    stages = tuple((info.name, _stage(info)) for info in jax_model.layers)

    def apply(params, x):  # the model's forward pass: the stages in order
        return run(stages, params, jnp.asarray(x))

    engine = getattr(jax_model, "engine_model", None)
    shape = jax_model.input_shape
    return Net(apply, stages, _engine_format(getattr(engine, "layers", [])),
               None if shape is None else tuple(shape[1:]))


def _engine_params(model):
    return {layer.name: {w: jnp.asarray(a) for w, a in zip(layer.weight_names, layer.get_weights(), strict=True)}
            for layer in model.layers if layer.weight_names}


def as_net(model):
    """``(net, params)`` for a JaxModel or an engine Sequential (see the module docstring)."""
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
    """Each stage's output shape per image, by abstract evaluation; a stage that cannot take its input is
    reported in terms of ``x``."""
    image = tuple(xb.shape[1:])
    built = "" if net.image_shape is None else f" (the model was built for images of shape {net.image_shape})"

    def trace(params, h):
        shapes = []
        for name, stage in net.stages:
            try:
                h = stage(params, h)
            except ValueError as exc:
                raise ValueError(f"{fn}: x holds images of shape {image} that layer {name!r} cannot take{built}: "
                                 f"{exc}") from exc
            shapes.append(h)
        return shapes

    return tuple(tuple(s.shape[1:]) for s in jax.eval_shape(trace, params, xb))


def stage_shapes(fn: str, net: Net, params, xb) -> tuple:
    """Each stage's output shape per image for the batch ``xb``, after checking that its images fit the model
    (see the module docstring); computed once per image shape and dtype, then looked up."""
    key = ("shapes", xb.shape[1:], xb.dtype)
    shapes = net._jits.get(key)
    if shapes is None:
        _check_channels(fn, net, tuple(xb.shape[1:]))
        shapes = net._jits[key] = _traced_shapes(fn, net, params, xb)
    return shapes


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
    if target is None:
        return None
    shapes = stage_shapes(fn, net, params, xb)
    n_classes = shapes[-1][-1] if shapes else xb.shape[-1]
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
