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

import functools
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


# -- graph and state: merges and normalizations ---------------------------------------------------------------
# A merge's ``fn`` takes the list of its inputs (its node's inputs, in order). A stateful layer's function (a
# class of ``STATE_WEIGHTS``) is ``fn(p, s, x, training, key) -> (y, s_new)``: ``s`` holds the weights named in
# ``STATE_WEIGHTS`` (never trained by a gradient), the rest are in ``p``; ``s_new`` is ``s`` itself outside
# training.


def _merge(combine):
    """Keras' ``Add``/``Subtract``/``Multiply``/``Average`` (``_Merge._merge_function``, broadcasting size-1 axes)."""
    def builder(class_name, config):
        return lambda p, xs, training, key: combine(list(xs))

    return builder


def _concatenate(class_name, config):
    """Keras' ``Concatenate(axis)``: ``jnp.concatenate`` of the inputs along ``axis``."""
    axis = int(config.get("axis", -1))
    return lambda p, xs, training, key: jnp.concatenate(list(xs), axis=axis)


def _moments(x, axes):
    """``keras.ops.moments``: mean and biased variance over ``axes``, kept as size-1 axes."""
    mean = jnp.mean(x, axis=axes, keepdims=True)
    return mean, jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)


def _scale_shift(x, mean, variance, gamma, beta, epsilon):
    """``keras.ops.batch_normalization``'s formula: ``x * inv + (beta - mean * inv)`` with
    ``inv = gamma / sqrt(variance + epsilon)``."""
    inv = lax.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    shift = -mean * inv
    return x * inv + (shift if beta is None else shift + beta)


def _feature(w, ndim, axes):
    """A weight over the features of ``axes`` shaped to broadcast against a rank-``ndim`` input (None stays)."""
    if w is None:
        return None
    shape = [1] * ndim
    for a, n in zip(axes, w.shape, strict=True):
        shape[a] = n
    return jnp.reshape(w, shape)


def _batch_normalization(class_name, config):
    """Keras' ``BatchNormalization.call``: in training (and trainable) the batch's moments over every axis but
    ``axis``, then ``moving <- moving * momentum + batch * (1 - momentum)`` (mean and biased variance); otherwise
    the moving statistics. ``trainable=False`` means inference mode, as in Keras."""
    momentum, epsilon = float(config["momentum"]), float(config["epsilon"])
    trainable = bool(config.get("trainable", True))

    def fn(p, s, x, training, key):
        axis = int(config["axis"]) % x.ndim
        gamma, beta = (_feature(p.get(w), x.ndim, (axis,)) for w in ("gamma", "beta"))
        if not (training and trainable):
            mean, variance = (_feature(s[w], x.ndim, (axis,)) for w in ("moving_mean", "moving_variance"))
            return _scale_shift(x, mean, variance, gamma, beta, epsilon), s
        mean, variance = _moments(x, tuple(i for i in range(x.ndim) if i != axis))
        new = {"moving_mean": s["moving_mean"] * momentum + jnp.reshape(mean, (-1,)) * (1.0 - momentum),
               "moving_variance": s["moving_variance"] * momentum + jnp.reshape(variance, (-1,)) * (1.0 - momentum)}
        return _scale_shift(x, mean, variance, gamma, beta, epsilon), new

    return fn


def _layer_normalization(class_name, config):
    """Keras' ``ops.layer_normalization``: moments per example over ``axis`` (an int or a list), gamma and beta
    over those axes."""
    epsilon = float(config["epsilon"])
    axis = config.get("axis", -1)

    def fn(p, x, training, key):
        axes = tuple(sorted(a % x.ndim for a in (axis if isinstance(axis, (list, tuple)) else (axis,))))
        mean, variance = _moments(x, axes)
        gamma, beta = (_feature(p.get(w), x.ndim, axes) for w in ("gamma", "beta"))
        return _scale_shift(x, mean, variance, gamma, beta, epsilon)

    return fn


def _group_normalization(class_name, config):
    """Keras' ``GroupNormalization.call``: the features of ``axis`` reshaped to ``(groups, features // groups)``,
    moments per example and group over every other non-batch axis, gamma and beta per feature."""
    epsilon, groups, axis = float(config["epsilon"]), int(config["groups"]), int(config.get("axis", -1))

    def fn(p, x, training, key):
        a = axis % x.ndim
        grouped = jnp.reshape(x, x.shape[:a] + (groups, x.shape[a] // groups) + x.shape[a + 1:])
        mean, variance = _moments(grouped, tuple(i for i in range(1, grouped.ndim) if i != a))
        per_group = tuple(groups if i == a else (x.shape[a] // groups if i == a + 1 else 1)
                          for i in range(grouped.ndim))
        gamma, beta = (None if p.get(w) is None else jnp.reshape(p[w], per_group) for w in ("gamma", "beta"))
        return jnp.reshape(_scale_shift(grouped, mean, variance, gamma, beta, epsilon), x.shape)

    return fn


BUILDERS.update({
    "Add": _merge(lambda xs: functools.reduce(jnp.add, xs)),
    "Subtract": _merge(lambda xs: jnp.subtract(*xs)),
    "Multiply": _merge(lambda xs: functools.reduce(jnp.multiply, xs)),
    "Average": _merge(lambda xs: functools.reduce(jnp.add, xs) / len(xs)),
    "Concatenate": _concatenate,
    "LayerNormalization": _layer_normalization, "GroupNormalization": _group_normalization,
    "BatchNormalization": _batch_normalization,
})
# The stateful layers (their ``fn`` takes and returns the state) and which of their weights are state; the
# others are parameters.
STATE_WEIGHTS = {"BatchNormalization": ("moving_mean", "moving_variance")}

# Engine layers the twin cannot build yet, and why (class name -> reason)
NOT_YET: dict[str, str] = {}


def build(class_name: str, config: dict):
    """The JAX function of one engine layer (``fn(p, x, training, key)``, or ``fn(p, s, x, training, key)`` for
    a class of ``STATE_WEIGHTS``); ``NotImplementedError`` naming the class if it is unknown."""
    if class_name in NOT_YET:
        raise NotImplementedError(f"jax_ref.from_engine: layer {config.get('name')!r} of class {class_name} has no "
                                  f"JAX twin yet: {NOT_YET[class_name]}")
    if class_name not in BUILDERS:
        raise NotImplementedError(f"jax_ref.from_engine: layer {config.get('name')!r} of class {class_name} has no "
                                  f"JAX twin; supported layer classes: "
                                  f"{', '.join(sorted(BUILDERS))}")
    return BUILDERS[class_name](class_name, config)
