"""Every layer class of ``tinygrad_cnn.nn`` as a pure JAX function, built from the layer's ``get_config()``.

``build(class_name, config) -> fn(params, x, training, key) -> y`` where
``params`` maps weight names (``kernel``, ``bias``) to arrays and ``key`` is a
JAX PRNG key (used by Dropout only). The math is ``jax_ref.ops``'; the
arguments are read from the config, never restated by hand.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

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


def _global_pool(op):
    def builder(class_name, config):
        kw = dict(data_format=config["data_format"], keepdims=config.get("keepdims", False))
        return lambda p, x, training, key: op(x, **kw)

    return builder


def _dropout(class_name, config):
    rate, noise_shape = float(config["rate"]), config.get("noise_shape")
    where = _where(class_name, config)

    def fn(p, x, training, key):
        if not training or rate == 0.0:
            return x
        if key is None:
            raise ValueError(f"jax_ref: {where} needs a PRNG key when training; pass rng=jax.random.key(seed) "
                             f"to apply")
        if rate >= 1.0:
            return jnp.zeros_like(x)
        shape = x.shape if noise_shape is None else tuple(
            x.shape[i] if s is None else s for i, s in enumerate(noise_shape))
        keep = jax.random.bernoulli(key, 1.0 - rate, shape)
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))

    return fn


def _flatten(class_name, config):
    channels_first = config.get("data_format") == "channels_first"

    def fn(p, x, training, key):
        if channels_first and x.ndim > 2:
            x = jnp.transpose(x, (0, *range(2, x.ndim), 1))
        return jnp.reshape(x, (x.shape[0], -1))

    return fn


def _activation(class_name, config):
    act = activation(_where(class_name, config), config.get("activation"))
    return lambda p, x, training, key: act(x)


def _relu(class_name, config):
    """Keras' ReLU: max_value above, x in [threshold, max_value), negative_slope * (x - threshold) below."""
    max_value, slope, t = config.get("max_value"), float(config.get("negative_slope", 0.0)), float(
        config.get("threshold", 0.0))

    def fn(p, x, training, key):
        if max_value is None and t == 0.0:
            return ops.leaky_relu(x, slope) if slope else ops.relu(x)
        y = x * (x > t).astype(x.dtype) if t != 0.0 else ops.relu(x)
        if max_value is not None:
            y = jnp.clip(y, 0.0, max_value)
        if slope:
            y = y - ops.relu(t - x) * slope
        return y

    return fn


BUILDERS = {
    "Conv1D": _conv, "Conv2D": _conv, "Conv3D": _conv, "DepthwiseConv2D": _depthwise,
    "Conv1DTranspose": _conv_transpose, "Conv2DTranspose": _conv_transpose, "Dense": _dense,
    "MaxPooling1D": _pool(ops.max_pool), "MaxPooling2D": _pool(ops.max_pool),
    "AveragePooling1D": _pool(ops.avg_pool), "AveragePooling2D": _pool(ops.avg_pool),
    "LPPooling2D": _pool(ops.lp_pool, extra=("p",)),
    "GlobalMaxPooling2D": _global_pool(ops.global_max_pool),
    "GlobalAveragePooling2D": _global_pool(ops.global_avg_pool),
    "Dropout": _dropout, "Flatten": _flatten, "Activation": _activation, "ReLU": _relu,
}


def build(class_name: str, config: dict):
    """The JAX function of one engine layer; ``NotImplementedError`` naming the class if it is unknown."""
    if class_name not in BUILDERS:
        raise NotImplementedError(f"jax_ref.from_engine: layer {config.get('name')!r} of class {class_name} has no "
                                  f"JAX twin; supported layer classes: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[class_name](class_name, config)
