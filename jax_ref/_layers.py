"""Every layer class of ``tinygrad_cnn.nn`` as a pure JAX function, built from the layer's ``get_config()``.

``build(class_name, config) -> fn(params, x, training, key) -> y`` where
``params`` maps weight names (``kernel``, ``bias``) to arrays and ``key`` is a
JAX PRNG key (used by Dropout only). The arguments are read from the config,
never restated by hand; ``BUILDERS`` is keyed by the class names of the
engine's one registry, ``tinygrad_cnn.nn.LAYER_CLASSES``.

A reference that copied the engine's formulas could not catch the engine's
mistakes, so every layer here is written from Keras' specification (its
documented formula and what ``keras.layers.<Name>.call`` computes on the JAX
backend) with JAX's own primitives, never from the engine's code:

- convolutions, pooling and Dense are ``jax_ref.ops`` (``lax.conv_general_dilated``,
  ``lax.reduce_window``, ``jnp.matmul``), checked op by op against the engine;
- global pooling is ``jnp.mean`` / ``jnp.max`` over the spatial axes (Keras'
  ``GlobalAveragePooling2D.call``);
- Flatten is Keras' ``Flatten.call``: channels_first inputs are moved to
  channels-last order, then ``jnp.reshape`` to ``(batch, prod(rest))``;
- Dropout is Keras' ``backend.random.dropout``: a keep mask
  ``jax.random.bernoulli(key, 1 - rate, noise_shape)`` broadcast to the input,
  ``select(mask, x / (1 - rate), 0)``; rate 1 gives zeros. Its masks come from
  the JAX key, so they are not the engine's NumPy masks (``compare_gradients``
  and ``parity`` compare with dropout off);
- ReLU is Keras' formula ``f(x) = min(x, max_value)`` for ``x > threshold``,
  ``negative_slope * (x - threshold)`` otherwise, as ``jnp.where`` of the two
  pieces. Kinks, as Keras: ``f(threshold) = 0`` (Keras computes ``x > threshold``;
  its docstring's ``threshold <= x`` would give ``threshold``), the gradient at
  ``threshold`` is 0 except for the plain leaky case (no max_value, threshold 0),
  which Keras computes with ``jax.nn.leaky_relu`` (gradient 1 at 0), and 0.5 at
  ``x == max_value`` (``jnp.minimum``'s tie, as Keras' ``clip``; Keras' relu6
  shortcut for ``max_value=6`` gives 0 there).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from jax_ref import ops
from jax_ref._penalties import activation


def _where(class_name, config):
    return f"{class_name} {config.get('name')!r}"


def _tuple(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


def _conv(class_name, config):
    act = activation(_where(class_name, config), config.get("activation"))
    kw = dict(strides=_tuple(config["strides"]), padding=config["padding"],
              dilation_rate=_tuple(config["dilation_rate"]), data_format=config["data_format"])
    groups = config.get("groups", 1)

    def fn(p, x, training, key):
        return act(ops.conv(x, p["kernel"], p.get("bias"), groups=groups, **kw))

    return fn


def _depthwise(class_name, config):
    act = activation(_where(class_name, config), config.get("activation"))
    kw = dict(strides=_tuple(config["strides"]), padding=config["padding"],
              dilation_rate=_tuple(config["dilation_rate"]), data_format=config["data_format"])

    def fn(p, x, training, key):
        return act(ops.depthwise_conv2d(x, p["kernel"], p.get("bias"), **kw))

    return fn


def _conv_transpose(class_name, config):
    act = activation(_where(class_name, config), config.get("activation"))
    kw = dict(strides=_tuple(config["strides"]), padding=config["padding"],
              output_padding=_tuple(config.get("output_padding")), dilation_rate=_tuple(config["dilation_rate"]),
              data_format=config["data_format"])

    def fn(p, x, training, key):
        return act(ops.conv_transpose(x, p["kernel"], p.get("bias"), **kw))

    return fn


def _dense(class_name, config):
    act = activation(_where(class_name, config), config.get("activation"))

    def fn(p, x, training, key):
        return act(ops.dense(x, p["kernel"], p.get("bias")))

    return fn


def _pool(op, extra=()):
    def builder(class_name, config):
        kw = dict(strides=_tuple(config["strides"]), padding=config["padding"], data_format=config["data_format"])
        kw.update({k: config[k] for k in extra})
        pool = _tuple(config["pool_size"])

        def fn(p, x, training, key):
            return op(x, pool, **kw)

        return fn

    return builder


def _spatial_axes(ndim, data_format):
    return tuple(range(1, ndim - 1)) if data_format == "channels_last" else tuple(range(2, ndim))


def _global_pool(reduce):
    """Keras' ``GlobalAveragePooling2D`` / ``GlobalMaxPooling2D``: ``reduce`` over the spatial axes."""
    def builder(class_name, config):
        data_format, keepdims = config["data_format"], config.get("keepdims", False)

        def fn(p, x, training, key):
            return reduce(x, axis=_spatial_axes(x.ndim, data_format), keepdims=keepdims)

        return fn

    return builder


def _dropout(class_name, config):
    """Keras' Dropout: the identity unless training with rate > 0; then ``backend.random.dropout``."""
    rate, noise_shape = float(config["rate"]), config.get("noise_shape")
    where = _where(class_name, config)

    def fn(p, x, training, key):
        if not training or rate == 0.0:
            return x
        if key is None:
            raise ValueError(f"jax_ref: {where} needs a PRNG key when training; pass rng=jax.random.key(seed) "
                             f"to apply")
        if rate == 1.0:
            return jnp.zeros_like(x)
        keep_prob = 1.0 - rate
        shape = x.shape if noise_shape is None else tuple(
            x.shape[i] if s is None else s for i, s in enumerate(noise_shape))
        mask = jnp.broadcast_to(jax.random.bernoulli(key, keep_prob, shape), x.shape)
        return lax.select(mask, x / keep_prob, jnp.zeros_like(x))

    return fn


def _flatten(class_name, config):
    """Keras' Flatten: channels_first inputs to channels-last order, then ``(batch, prod(rest))``."""
    channels_first = config.get("data_format") == "channels_first"

    def fn(p, x, training, key):
        if channels_first and x.ndim > 1:
            x = jnp.transpose(x, (0, *range(2, x.ndim), 1))
        return jnp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))

    return fn


def _activation(class_name, config):
    act = activation(_where(class_name, config), config.get("activation"))
    return lambda p, x, training, key: act(x)


def _relu(class_name, config):
    """Keras' ReLU (the formula and its kinks are in the module docstring)."""
    max_value, slope = config.get("max_value"), float(config.get("negative_slope", 0.0))
    threshold = float(config.get("threshold", 0.0))

    def fn(p, x, training, key):
        if slope and max_value is None and threshold == 0.0:
            return jax.nn.leaky_relu(x, slope)
        top = x if max_value is None else jnp.minimum(x, jnp.asarray(max_value, x.dtype))
        below = -slope * jax.nn.relu(threshold - x) if slope else jnp.zeros_like(x)
        return jnp.where(x > threshold, top, below)

    return fn


BUILDERS = {
    "Conv1D": _conv, "Conv2D": _conv, "Conv3D": _conv, "DepthwiseConv2D": _depthwise,
    "Conv1DTranspose": _conv_transpose, "Conv2DTranspose": _conv_transpose, "Dense": _dense,
    "MaxPooling1D": _pool(ops.max_pool), "MaxPooling2D": _pool(ops.max_pool),
    "AveragePooling1D": _pool(ops.avg_pool), "AveragePooling2D": _pool(ops.avg_pool),
    "LPPooling2D": _pool(ops.lp_pool, extra=("p",)),
    "GlobalMaxPooling2D": _global_pool(jnp.max), "GlobalAveragePooling2D": _global_pool(jnp.mean),
    "Dropout": _dropout, "Flatten": _flatten, "Activation": _activation, "ReLU": _relu,
}


# Engine layers the twin cannot build yet, and why: the merge layers live only in graph models, and the twin walks
# Sequential chains; the normalizations wait for the twin's layer-state pytree (BatchNormalization's statistics)
NOT_YET = {"Add": "graph", "Average": "graph", "Concatenate": "graph", "Multiply": "graph", "Subtract": "graph",
           "BatchNormalization": "state", "GroupNormalization": "state", "LayerNormalization": "state"}


def build(class_name: str, config: dict):
    """The JAX function of one engine layer; ``NotImplementedError`` naming the class if it is unknown."""
    if class_name in NOT_YET:
        why = ("it lives in graph models, and the twin runs Sequential models only" if NOT_YET[class_name] == "graph"
               else "the twin has no layer state (moving statistics) yet")
        raise NotImplementedError(f"jax_ref.from_engine: layer {config.get('name')!r} of class {class_name} has no "
                                  f"JAX twin yet: {why}")
    if class_name not in BUILDERS:
        raise NotImplementedError(f"jax_ref.from_engine: layer {config.get('name')!r} of class {class_name} has no "
                                  f"JAX twin; supported layer classes: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[class_name](class_name, config)
