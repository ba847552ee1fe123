"""Normalization layers with Keras' names, arguments, defaults and weight order: ``BatchNormalization``,
``LayerNormalization``, ``GroupNormalization``.

Each normalizes with statistics over some axes, mean mu and (biased) variance s2, and then scales and shifts
per feature:

    y = (x - mu) / sqrt(s2 + epsilon) * gamma + beta

computed from the batch as one primitive, ``ops.normalize`` (its closed-form vjp takes the gradient through mu
and s2 too: every output depends on every input of its group; second derivatives work). Batch normalization on
its moving statistics is plain Tensor ops (and folds into a preceding conv, ``nn.fusion``). Keras' defaults:
``epsilon=1e-3``, ``gamma`` ones and ``beta`` zeros; ``center=False`` drops ``beta``, ``scale=False`` drops
``gamma``.

``BatchNormalization(axis=-1, momentum=0.99)``: statistics over every axis but ``axis`` (the batch and the
spatial axes). In training (``training=True`` and the layer trainable) it uses the batch's statistics and
then updates ``moving_mean <- momentum * moving_mean + (1 - momentum) * mu`` (same for ``moving_variance``
with s2); otherwise (inference, or a frozen layer, as in Keras) it uses the moving statistics. Weights, in
Keras' order: gamma, beta (trainable), moving_mean, moving_variance (never trained by a gradient).
"""

from __future__ import annotations

from tinygrad_cnn import ops, validation
from tinygrad_cnn.modes import no_grad
from tinygrad_cnn.nn import constraints, initializers, regularizers
from tinygrad_cnn.nn._docs import LAYER_KWARGS
from tinygrad_cnn.nn.layer import Layer, _fmt_shape

__all__ = ["BatchNormalization", "GroupNormalization", "LayerNormalization"]


def normalize(d, s2, gamma, beta, epsilon: float):
    """``d / sqrt(s2 + epsilon) * gamma + beta`` for a centred ``d = x - mu`` and given statistics (inference
    on the moving statistics; ``gamma``/``beta`` None: left out). The factor ``gamma / sqrt(s2 + epsilon)`` is
    formed first, on the statistics' (small) shape, so the activations see one multiplication."""
    scale = ops.pow(s2 + epsilon, -0.5)
    if gamma is not None:
        scale = scale * gamma
    y = d * scale
    return y if beta is None else y + beta


class _Normalization(Layer):
    """Shared arguments: epsilon, center/scale and beta/gamma initializers, regularizers and constraints."""

    def __init__(self, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                 gamma_regularizer, beta_constraint, gamma_constraint, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = validation.number_in(self._where(), "epsilon", epsilon, 0.0, float("inf"), high_open=True)
        self.center = validation.boolean(self._where(), "center", center)
        self.scale = validation.boolean(self._where(), "scale", scale)
        self.beta_initializer = self._resolve("initializer", "beta_initializer", beta_initializer)
        self.gamma_initializer = self._resolve("initializer", "gamma_initializer", gamma_initializer)
        self.beta_regularizer = self._resolve("regularizer", "beta_regularizer", beta_regularizer)
        self.gamma_regularizer = self._resolve("regularizer", "gamma_regularizer", gamma_regularizer)
        self.beta_constraint = self._resolve("constraint", "beta_constraint", beta_constraint)
        self.gamma_constraint = self._resolve("constraint", "gamma_constraint", gamma_constraint)

    def _axis(self, axis, rank: int) -> int:
        if not -rank <= axis < rank or axis % rank == 0:
            raise ValueError(f"{self._where()}: axis={axis} must be a feature axis (not the batch axis 0) of inputs "
                             f"of rank {rank}")
        return axis % rank

    def _add_gamma_beta(self, shape) -> None:
        self.gamma = self.beta = None
        if self.scale:
            self.gamma = self.add_weight("gamma", shape, self.gamma_initializer, self.gamma_regularizer,
                                         self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight("beta", shape, self.beta_initializer, self.beta_regularizer,
                                        self.beta_constraint)

    def _feature_shaped(self, w, rank: int, axis: int):
        """``w`` (one value per feature of ``axis``) shaped to broadcast against a rank-``rank`` input."""
        return None if w is None else ops.reshape(w, tuple(w.shape[0] if i == axis else 1 for i in range(rank)))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}


_COMMON = dict(center=True, scale=True, beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
               gamma_regularizer=None, beta_constraint=None, gamma_constraint=None)


class BatchNormalization(_Normalization):
    __doc__ = """Batch normalization, as ``keras.layers.BatchNormalization``.

    ``y = (x - mu) / sqrt(s2 + epsilon) * gamma + beta`` per feature (the entries of ``axis``). While
    training (``training=True`` and the layer trainable) mu and s2 are the batch's mean and biased variance
    over every axis but ``axis``, the gradient flows through them, and afterwards
    ``moving_mean <- momentum * moving_mean + (1 - momentum) * mu`` (likewise ``moving_variance`` with s2).
    Otherwise (inference, or a frozen layer, as Keras) mu and s2 are the moving statistics.
    Output shape = input shape. Weights, in Keras' order: ``gamma``, ``beta`` (trainable, shape
    ``(features,)``), ``moving_mean``, ``moving_variance`` (non-trainable).

    Args:
        axis: int, default -1: the feature axis (channels_last: -1; channels_first: 1).
        momentum: float in [0, 1], default 0.99: the moving statistics' decay.
        epsilon: positive float, default 1e-3, added to the variance.
        center: bool, default True: learn the shift ``beta`` (False: beta = 0).
        scale: bool, default True: learn the scale ``gamma`` (False: gamma = 1).
        beta_initializer, gamma_initializer: default ``"zeros"`` and ``"ones"``.
        moving_mean_initializer, moving_variance_initializer: default ``"zeros"`` and ``"ones"``.
        beta_regularizer, gamma_regularizer: penalties on beta and gamma, default None.
        beta_constraint, gamma_constraint: projections after each optimizer step, default None.
""" + LAYER_KWARGS + """

    Raises:
        TypeError: ``axis`` not an int.
        ValueError: ``momentum`` outside [0, 1], or an input whose ``axis`` has unknown size.
"""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if not validation.is_int(axis):
            raise TypeError(f"{self._where()}: axis must be an int; got {axis!r}")
        self.axis = int(axis)
        self.momentum = validation.number_in(self._where(), "momentum", momentum, 0.0, 1.0)
        self.moving_mean_initializer = self._resolve("initializer", "moving_mean_initializer",
                                                     moving_mean_initializer)
        self.moving_variance_initializer = self._resolve("initializer", "moving_variance_initializer",
                                                         moving_variance_initializer)

    def build(self, input_shape):
        axis = self._axis(self.axis, len(input_shape))
        if input_shape[axis] is None:
            raise ValueError(f"{self._where()}: the size of axis {self.axis} must be known; got input shape "
                             f"{_fmt_shape(input_shape)}")
        features = (input_shape[axis],)
        self._add_gamma_beta(features)
        self.moving_mean = self.add_weight("moving_mean", features, self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", features, self.moving_variance_initializer,
                                               trainable=False)
        self.input_spec = {"ndim": len(input_shape), "axes": {axis: input_shape[axis]}}
        self.built = True

    def call(self, x, training=False):
        if training and self.trainable:
            return self.normalize_batch(x)
        axis = self.axis % x.ndim
        gamma, beta = (self._feature_shaped(w, x.ndim, axis) for w in (self.gamma, self.beta))
        mu, s2 = (self._feature_shaped(w, x.ndim, axis) for w in (self.moving_mean, self.moving_variance))
        return normalize(x - mu, s2, gamma, beta, self.epsilon)

    def normalize_batch(self, x, relu: bool = False):
        """Training mode: normalize ``x`` with its own statistics (``relu=True``: then ``max(., 0)``, in the same
        primitive; what a graph model runs for this layer followed by a plain ``ReLU``, ``nn.fusion``) and
        update the moving statistics."""
        axis = self.axis % x.ndim
        reduce_axes = tuple(i for i in range(x.ndim) if i != axis)
        if any(x.shape[i] == 0 for i in reduce_axes):  # JAX would give NaN statistics and NaN moving averages
            raise ValueError(f"{self._where()}: training mode needs at least one value per channel for the batch "
                             f"statistics; got an input of shape {tuple(x.shape)}")
        gamma, beta = ((self.gamma, self.beta) if axis == x.ndim - 1  # channels-last: (C,) as they are
                       else (self._feature_shaped(w, x.ndim, axis) for w in (self.gamma, self.beta)))
        y, mu, s2 = ops.normalize(x, reduce_axes, gamma, beta, self.epsilon, relu=relu)
        with no_grad():  # the moving statistics follow the batch, outside any graph (after y: a failed call
            m = self.momentum  # leaves them as they were)
            self.moving_mean.copy_(m * self.moving_mean.data + (1.0 - m) * mu.data.reshape(-1))
            self.moving_variance.copy_(m * self.moving_variance.data + (1.0 - m) * s2.data.reshape(-1))
        return y

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer)}


class LayerNormalization(_Normalization):
    """Keras' ``LayerNormalization``: statistics per example over ``axis`` (an int or a tuple; default the last
    axis), one gamma and beta per element of those axes.

    ``y = (x - mu) / sqrt(s2 + epsilon) * gamma + beta`` with mu, s2 the mean and biased variance of each
    example over ``axis``; the same in training and inference. Output shape = input shape.

    Args:
        axis: int or tuple of ints, default -1.
        epsilon: positive float, default 1e-3, added to the variance.
        **kwargs: ``center``, ``scale``, ``beta_initializer``, ``gamma_initializer``, ``beta_regularizer``,
            ``gamma_regularizer``, ``beta_constraint``, ``gamma_constraint`` (as ``BatchNormalization``) and
            the base ``Layer`` arguments.
    """

    def __init__(self, axis=-1, epsilon=1e-3, **kwargs):
        common = {k: kwargs.pop(k, v) for k, v in _COMMON.items()}
        super().__init__(epsilon, **common, **kwargs)
        axes = axis if isinstance(axis, (tuple, list)) else (axis,)
        if not axes or not all(validation.is_int(a) for a in axes):
            raise TypeError(f"{self._where()}: axis must be an int or a tuple of ints; got {axis!r}")
        self.axis = int(axis) if validation.is_int(axis) else tuple(int(a) for a in axes)

    def _axes(self, rank: int) -> tuple:
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        return tuple(sorted(self._axis(a, rank) for a in axes))

    def build(self, input_shape):
        axes = self._axes(len(input_shape))
        if any(input_shape[a] is None for a in axes):
            raise ValueError(f"{self._where()}: the normalized axes {axes} must have known sizes; got input shape "
                             f"{_fmt_shape(input_shape)}")
        self._add_gamma_beta(tuple(input_shape[a] for a in axes))
        self.input_spec = {"ndim": len(input_shape), "axes": {a: input_shape[a] for a in axes}}
        self.built = True

    def call(self, x, training=False):
        axes = self._axes(x.ndim)
        shape = tuple(x.shape[i] if i in axes else 1 for i in range(x.ndim))
        gamma, beta = (None if w is None else ops.reshape(w, shape) for w in (self.gamma, self.beta))
        return ops.normalize(x, axes, gamma, beta, self.epsilon)[0]

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis) if isinstance(self.axis, tuple) else self.axis}


class GroupNormalization(_Normalization):
    """Keras' ``GroupNormalization(groups=32, axis=-1)``: the features of ``axis`` split into ``groups``
    consecutive groups; statistics per example and group over the group's features and every other non-batch
    axis; one gamma and beta per feature. ``groups=1`` is layer normalization over all axes; ``groups`` equal
    to the features is instance normalization.

    Args:
        groups: positive int dividing the size of ``axis``, default 32.
        axis: int, default -1: the feature axis.
        epsilon: positive float, default 1e-3, added to the variance.
        **kwargs: ``center``, ``scale``, ``beta_initializer``, ``gamma_initializer``, ``beta_regularizer``,
            ``gamma_regularizer``, ``beta_constraint``, ``gamma_constraint`` (as ``BatchNormalization``) and
            the base ``Layer`` arguments.

    Raises:
        ValueError: (at build) the features of ``axis`` do not split into ``groups`` equal groups.
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, **kwargs):
        common = {k: kwargs.pop(k, v) for k, v in _COMMON.items()}
        super().__init__(epsilon, **common, **kwargs)
        self.groups = validation.positive_int(self._where(), "groups", groups)
        if not validation.is_int(axis):
            raise TypeError(f"{self._where()}: axis must be an int; got {axis!r}")
        self.axis = int(axis)

    def build(self, input_shape):
        axis = self._axis(self.axis, len(input_shape))
        features = input_shape[axis]
        if features is None or features % self.groups:
            raise ValueError(f"{self._where()}: the {features} features of axis {self.axis} must split into "
                             f"groups={self.groups} equal groups (input shape {_fmt_shape(input_shape)})")
        self._add_gamma_beta((features,))
        self.input_spec = {"ndim": len(input_shape), "axes": {axis: features}}
        self.built = True

    def call(self, x, training=False):
        axis = self.axis % x.ndim
        split = x.shape[:axis] + (self.groups, x.shape[axis] // self.groups) + x.shape[axis + 1:]
        # gamma and beta per feature, shaped as the split input's (groups, features per group) axes
        gamma, beta = (None if w is None else ops.reshape(w, tuple(n if i in (axis, axis + 1) else 1
                                                                   for i, n in enumerate(split)))
                       for w in (self.gamma, self.beta))
        y = ops.normalize(ops.reshape(x, split), tuple(i for i in range(1, len(split)) if i != axis), gamma, beta,
                          self.epsilon)[0]
        return ops.reshape(y, x.shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}
