"""Every layer class of ``tinygrad_cnn.nn`` as a pure JAX function, built from the layer's ``get_config()``.

``build(class_name, config) -> fn(params, x, training, key) -> y`` where
``params`` maps weight names (``kernel``, ``bias``) to arrays and ``key`` is a
JAX PRNG key (used by the training-only noise layers: Dropout, SpatialDropout*D,
GaussianNoise, GaussianDropout). The arguments are read from the config, never
restated by hand; ``BUILDERS`` is keyed by the class names of the
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


# -- wave 2: the rest of Keras' CNN layer set ---------------------------------------------------------------------
# Written from Keras 3's layer sources (keras/src/layers/...: each ``call`` on the JAX backend) with jnp/lax/
# jax.random, not from the engine (Maximum and Minimum are with the other merges, below).

def _spatial_axes_of(config, ndim):
    """The spatial axes of an input of rank ``ndim`` (layers without data_format are channels_last)."""
    return _spatial_axes(ndim, config.get("data_format", "channels_last"))


def _reshape(class_name, config):
    target = tuple(config["target_shape"])
    return lambda p, x, training, key: jnp.reshape(x, (x.shape[0],) + target)


def _permute(class_name, config):
    dims = tuple(config["dims"])
    return lambda p, x, training, key: jnp.transpose(x, (0,) + dims)


def _repeat_vector(class_name, config):
    n = config["n"]
    return lambda p, x, training, key: jnp.repeat(x[:, None, :], n, axis=1)


def _pairs_of(value):
    """Keras' stored padding/cropping: a pair (1-D) or one pair per spatial axis."""
    return (tuple(value),) if not isinstance(value[0], (list, tuple)) else tuple(tuple(v) for v in value)


def _zero_padding(class_name, config):
    pads = _pairs_of(config["padding"])

    def fn(p, x, training, key):
        width = [(0, 0)] * x.ndim
        for axis, pair in zip(_spatial_axes_of(config, x.ndim), pads, strict=True):
            width[axis] = pair
        return jnp.pad(x, width)

    return fn


def _cropping(class_name, config):
    crops = _pairs_of(config["cropping"])

    def fn(p, x, training, key):
        index = [slice(None)] * x.ndim
        for axis, (before, after) in zip(_spatial_axes_of(config, x.ndim), crops, strict=True):
            index[axis] = slice(before, x.shape[axis] - after)
        return x[tuple(index)]

    return fn


def _up_sampling(class_name, config):
    """Keras' UpSampling*D: ``jnp.repeat`` along each spatial axis, or (bilinear) ``jax.image.resize`` without
    antialiasing, as ``keras.ops.image.resize`` (linear along each axis; 1-D and 3-D: the engine's extension)."""
    size = config["size"] if isinstance(config["size"], (list, tuple)) else [config["size"]]
    bilinear = config.get("interpolation", "nearest") == "bilinear"

    def fn(p, x, training, key):
        axes = _spatial_axes_of(config, x.ndim)
        if bilinear:
            shape = list(x.shape)
            for axis, s in zip(axes, size, strict=True):
                shape[axis] *= s
            return jax.image.resize(x, shape, method="bilinear", antialias=False)
        for axis, s in zip(axes, size, strict=True):
            x = jnp.repeat(x, s, axis=axis)
        return x

    return fn


def _rescaling(class_name, config):
    scale, offset = config["scale"], config["offset"]
    return lambda p, x, training, key: x * jnp.asarray(scale, x.dtype) + jnp.asarray(offset, x.dtype)


def _lambda(class_name, config):
    """Keras' Lambda of a ``tinygrad_cnn.functional`` function: the ``jax_ref.ops`` function of the same name."""
    name, arguments = config["function"]["config"], dict(config.get("arguments") or {})
    if name not in ops.__all__:
        raise NotImplementedError(f"jax_ref.from_engine: Lambda {config.get('name')!r} wraps F.{name}, which "
                                  f"jax_ref.ops does not mirror yet")
    function = getattr(ops, name)
    return lambda p, x, training, key: function(x, **arguments)


def _separable_conv(class_name, config):
    """Keras' ``ops.separable_conv``: a depthwise conv (strides, padding, dilation), then a 1 x .. x 1 conv."""
    act = activation(_where(class_name, config), config.get("activation"))
    kw = dict(strides=_tuple(config["strides"]), padding=_tuple(config["padding"]),
              dilation_rate=_tuple(config["dilation_rate"]), data_format=config["data_format"])

    def fn(p, x, training, key):
        h = _depthwise_nd(x, p["depthwise_kernel"], None, kw)
        return act(ops.conv(h, p["pointwise_kernel"], p.get("bias"), data_format=kw["data_format"]))

    return fn


def _depthwise_nd(x, kernel, bias, kw):
    """Keras' depthwise conv on JAX: the kernel ``k + (C, M)`` as a grouped kernel ``k + (1, C M)``, C groups."""
    c, m = kernel.shape[-2:]
    return ops.conv(x, jnp.reshape(kernel, kernel.shape[:-2] + (1, c * m)), bias, groups=c, **kw)


def _depthwise_conv(class_name, config):
    act = activation(_where(class_name, config), config.get("activation"))
    kw = dict(strides=_tuple(config["strides"]), padding=_tuple(config["padding"]),
              dilation_rate=_tuple(config["dilation_rate"]), data_format=config["data_format"])
    return lambda p, x, training, key: act(_depthwise_nd(x, p["kernel"], p.get("bias"), kw))


def _needs_key(where, key):
    if key is None:
        raise ValueError(f"jax_ref: {where} needs a PRNG key when training; pass rng=jax.random.key(seed) to apply")


def _spatial_dropout(class_name, config):
    """Keras' SpatialDropout*D: ``backend.random.dropout`` with noise shape (batch, 1, .., 1, channels)."""
    rate, where = float(config["rate"]), _where(class_name, config)

    def fn(p, x, training, key):
        if not training or rate == 0.0:
            return x
        _needs_key(where, key)
        shape = [1] * x.ndim
        shape[0] = x.shape[0]
        channel = 1 if config.get("data_format") == "channels_first" else x.ndim - 1
        shape[channel] = x.shape[channel]
        mask = jnp.broadcast_to(jax.random.bernoulli(key, 1.0 - rate, tuple(shape)), x.shape)
        return lax.select(mask, x / (1.0 - rate), jnp.zeros_like(x))

    return fn


def _gaussian(kind):
    """Keras' GaussianNoise (``x + N(0, stddev^2)``) and GaussianDropout (``x * N(1, rate / (1 - rate))``)."""
    def builder(class_name, config):
        where = _where(class_name, config)
        amount = float(config["stddev" if kind == "noise" else "rate"])

        def fn(p, x, training, key):
            if not training or amount == 0.0:
                return x
            _needs_key(where, key)
            z = jax.random.normal(key, x.shape, x.dtype)
            return x + amount * z if kind == "noise" else x * (1.0 + math.sqrt(amount / (1.0 - amount)) * z)

        return fn

    return builder


def _leaky_relu(class_name, config):
    slope = float(config["negative_slope"])
    return lambda p, x, training, key: jax.nn.leaky_relu(x, slope)


def _prelu(class_name, config):
    """Keras' PReLU.call: ``relu(x) - alpha * relu(-x)``."""
    return lambda p, x, training, key: jax.nn.relu(x) - p["alpha"] * jax.nn.relu(-x)


def _elu(class_name, config):
    alpha = float(config["alpha"])
    return lambda p, x, training, key: jax.nn.elu(x, alpha)


def _softmax(class_name, config):
    axis = tuple(config["axis"]) if isinstance(config["axis"], list) else config["axis"]
    return lambda p, x, training, key: jax.nn.softmax(x, axis=axis)


BUILDERS.update({
    "Reshape": _reshape, "Permute": _permute, "RepeatVector": _repeat_vector,
    "ZeroPadding1D": _zero_padding, "ZeroPadding2D": _zero_padding, "ZeroPadding3D": _zero_padding,
    "Cropping1D": _cropping, "Cropping2D": _cropping, "Cropping3D": _cropping,
    "UpSampling1D": _up_sampling, "UpSampling2D": _up_sampling, "UpSampling3D": _up_sampling,
    "Rescaling": _rescaling, "Lambda": _lambda,
    "MaxPooling3D": _pool(ops.max_pool), "AveragePooling3D": _pool(ops.avg_pool),
    "GlobalMaxPooling1D": _global_pool(jnp.max), "GlobalMaxPooling3D": _global_pool(jnp.max),
    "GlobalAveragePooling1D": _global_pool(jnp.mean), "GlobalAveragePooling3D": _global_pool(jnp.mean),
    "Conv3DTranspose": _conv_transpose, "SeparableConv1D": _separable_conv, "SeparableConv2D": _separable_conv,
    "DepthwiseConv1D": _depthwise_conv,
    "SpatialDropout1D": _spatial_dropout, "SpatialDropout2D": _spatial_dropout, "SpatialDropout3D": _spatial_dropout,
    "GaussianNoise": _gaussian("noise"), "GaussianDropout": _gaussian("dropout"),
    "LeakyReLU": _leaky_relu, "PReLU": _prelu, "ELU": _elu, "Softmax": _softmax,
})

# the config argument naming a weight's regularizer/constraint, where it is not the weight's own name
_WEIGHT_ARGS = {("DepthwiseConv1D", "kernel"): "depthwise", ("DepthwiseConv2D", "kernel"): "depthwise"}
_WEIGHT_ARGS.update({(f"SeparableConv{d}D", f"{kind}_kernel"): kind for d in (1, 2)
                     for kind in ("depthwise", "pointwise")})


def weight_arg(class_name: str, weight: str) -> str:
    """The prefix of the config keys ``<prefix>_regularizer`` / ``<prefix>_constraint`` of a layer's weight."""
    return _WEIGHT_ARGS.get((class_name, weight), weight)


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
    # Keras' ops.maximum / ops.minimum folded left to right; ties share the gradient 0.5 / 0.5 (jnp.maximum)
    "Maximum": _merge(lambda xs: functools.reduce(jnp.maximum, xs)),
    "Minimum": _merge(lambda xs: functools.reduce(jnp.minimum, xs)),
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
