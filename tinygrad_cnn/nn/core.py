"""Core layers: Dense, Dropout, Flatten, Activation, ReLU and the Input placeholder."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import functional as F
from tinygrad_cnn import ops, validation
from tinygrad_cnn.nn import activations, constraints, initializers, regularizers
from tinygrad_cnn.nn._docs import INPUT_ARGS, LAYER_KWARGS, WEIGHT_ARGS
from tinygrad_cnn.nn.graph import Node, SymbolicTensor
from tinygrad_cnn.nn.layer import Layer
from tinygrad_cnn.ops.random import dropout_mask
from tinygrad_cnn.ops.random import rng as make_rng

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Input", "InputLayer", "ReLU", "WeightedMixin"]


class WeightedMixin:
    """Shared kernel/bias argument handling for Dense and the convolutions."""

    def _init_weight_args(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                          bias_regularizer, kernel_constraint, bias_constraint, kernel_arg="kernel"):
        self.activation = self._resolve("activation", "activation", activation)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise TypeError(f"{self._where()}: use_bias must be True or False; got {use_bias!r}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = self._resolve("initializer", f"{kernel_arg}_initializer", kernel_initializer)
        self.bias_initializer = self._resolve("initializer", "bias_initializer", bias_initializer)
        self.kernel_regularizer = self._resolve("regularizer", f"{kernel_arg}_regularizer", kernel_regularizer)
        self.bias_regularizer = self._resolve("regularizer", "bias_regularizer", bias_regularizer)
        self.kernel_constraint = self._resolve("constraint", f"{kernel_arg}_constraint", kernel_constraint)
        self.bias_constraint = self._resolve("constraint", "bias_constraint", bias_constraint)
        self._kernel_arg = kernel_arg

    def _add_kernel_and_bias(self, kernel_shape, bias_size):
        self.kernel = self.add_weight("kernel", kernel_shape, self.kernel_initializer, self.kernel_regularizer,
                                      self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (bias_size,), self.bias_initializer, self.bias_regularizer,
                                        self.bias_constraint)

    def _weight_config(self) -> dict:
        k = self._kernel_arg
        return {
            "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            f"{k}_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            f"{k}_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            f"{k}_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }


class Dense(WeightedMixin, Layer):
    __doc__ = """Fully connected layer, as ``keras.layers.Dense``: ``y = activation(x @ kernel + bias)``.

    Acts on the last axis: input ``(batch, ..., in_features)``, output ``(batch, ..., units)``.
    Weights: ``kernel`` of shape ``(in_features, units)``, ``bias`` of shape ``(units,)``.

    Args:
        units: positive int, the number of output features.
""" + WEIGHT_ARGS.format(k="kernel") + "\n" + LAYER_KWARGS + """

    Raises:
        ValueError: ``units`` not a positive int, or an input of rank < 2 or with an unknown last axis.
"""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = validation.positive_int(self._where(), "units", units)
        self._init_weight_args(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, kernel_constraint, bias_constraint)

    def check_build_shape(self, shape):
        if len(shape) < 2 or shape[-1] is None:
            raise ValueError(f"{self._where()}: expected an input of rank >= 2 with a known last axis; got "
                             f"{tuple(shape)}")

    def build(self, input_shape):
        self._add_kernel_and_bias((input_shape[-1], self.units), self.units)
        self.input_spec = {"min_ndim": 2, "axes": {-1: input_shape[-1]}}
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def receptive_field(self):
        shape = getattr(self, "_build_shape", None)
        return "global" if shape is not None and len(shape) == 2 else None

    def call(self, x, training=False):
        return self.activation(F.dense(x, self.kernel, self.bias))

    def get_config(self):
        return {**super().get_config(), "units": self.units, **self._weight_config()}


class Dropout(Layer):
    __doc__ = """Inverted dropout, as ``keras.layers.Dropout``: random zeros while training, identity otherwise.

    With ``training=True``: ``y = x * m / (1 - rate)``, m ~ Bernoulli(1 - rate) per element, so E[y] = x;
    the gradient is ``m / (1 - rate)``. With ``training=False`` (``predict``/``evaluate``): ``y = x``.
    Output shape = input shape.

    Args:
        rate: float in [0, 1), the probability of zeroing an element.
        noise_shape: tuple or None (default): the mask's shape, broadcast against the input; None entries
            are filled from the input, and an entry 1 shares one mask along that axis.
        seed: non-negative int or None (default): the mask generator's seed (``fit(seed=...)`` reseeds it).
""" + LAYER_KWARGS + """

    Raises:
        ValueError: ``rate`` outside [0, 1).
        TypeError: ``noise_shape`` not a tuple, or ``seed`` not a non-negative int.
"""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = validation.number_in(self._where(), "rate", rate, 0.0, 1.0)
        if noise_shape is not None and not isinstance(noise_shape, (tuple, list)):
            raise TypeError(f"{self._where()}: noise_shape must be a tuple or None; got {noise_shape!r}")
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = validation.seed(self._where(), "seed", seed, allow_generator=False)
        self._rng = make_rng(seed)

    @property
    def random_in_training(self) -> bool:
        """Whether a training call draws random numbers (the twin cannot reproduce the engine's draws)."""
        return self.rate > 0

    def reseed(self, generator: np.random.Generator) -> None:
        """Draw future masks from ``generator`` (``fit(seed=...)`` uses this for reproducible runs)."""
        self._rng = generator

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            return x
        if self.noise_shape is None:
            return F.dropout(x, self.rate, True, seed=self._rng)
        shape = tuple(x.shape[i] if s is None else s for i, s in enumerate(self.noise_shape))
        return x * ops.constant(dropout_mask(shape, self.rate, x.dtype, self._rng))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class Flatten(Layer):
    __doc__ = """Reshape to ``(batch, prod(other axes))``, as ``keras.layers.Flatten``.

    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"``; a channels_first input is moved to
            channels-last order before flattening (as Keras), so the features come in the same order.
""" + LAYER_KWARGS + """
"""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = validation.data_format(self._where(), data_format or "channels_last")

    def build(self, input_shape):
        self.input_spec = {"min_ndim": 1, "axes": {}}
        self.built = True

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if any(s is None for s in rest) else int(np.prod(rest)))

    def call(self, x, training=False):
        if self.data_format == "channels_first" and x.ndim > 2:
            x = ops.transpose(x, (0, *range(2, x.ndim), 1))
        return ops.reshape(x, (x.shape[0], int(np.prod(x.shape[1:]))))  # not -1: an empty batch is fine too

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Activation(Layer):
    """Apply an activation function, as ``keras.layers.Activation``; output shape = input shape.

    Args:
        activation: a name (``"relu"``, ``"sigmoid"``, ``"softmax"``, ``"tanh"``, ``"gelu"``, ...) or a callable
            Tensor -> Tensor.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = self._resolve("activation", "activation", activation)

    def call(self, x, training=False):
        return self.activation(x)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class ReLU(Layer):
    """Keras' ReLU: max_value if x >= max_value; x if threshold <= x < max_value; negative_slope * (x - threshold)
    otherwise.

    Args:
        max_value: float >= 0 or None (default, no cap).
        negative_slope: float >= 0, default 0.
        threshold: float, default 0.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        w = self._where()
        self.max_value = None if max_value is None else validation.number_in(w, "max_value", max_value, 0.0,
                                                                               float("inf"))
        self.negative_slope = validation.number_in(w, "negative_slope", negative_slope, 0.0, float("inf"))
        self.threshold = validation.number_in(w, "threshold", threshold, 0.0, float("inf"))

    def call(self, x, training=False):
        t = self.threshold
        if self.max_value is None and t == 0.0:
            return ops.leaky_relu(x, self.negative_slope) if self.negative_slope else ops.relu(x)
        above = ops.constant((x.data > t).astype(x.dtype)) if t != 0.0 else None
        y = x * above if above is not None else ops.relu(x)
        if self.max_value is not None:
            y = ops.clip(y, 0.0, self.max_value)
        if self.negative_slope:
            y = y - ops.relu(t - x) * self.negative_slope
        return y

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class InputLayer(Layer):
    __doc__ = """The input placeholder: fixes the input shape of a Sequential model (batch axis excluded from
    ``shape``).

    Args:
""" + INPUT_ARGS + """
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype or "float32", **kwargs)
        where = self._where()
        if batch_shape is None:
            if shape is None:
                raise ValueError(f"{where}: give shape (without the batch axis) or batch_shape")
            if validation.is_int(shape):
                shape = (shape,)
            if not isinstance(shape, (tuple, list)):
                raise TypeError(f"{where}: shape must be a tuple of ints; got {shape!r}")
            batch_shape = (batch_size,) + tuple(shape)
        self.batch_shape = self._shape_arg("batch_shape", tuple(batch_shape))
        self.built = True
        Node(self, [], SymbolicTensor(self.batch_shape, self.dtype))  # the graph's entry: a node reading nothing

    def call(self, x, training=False):
        return x

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):  # noqa: N802 (Keras' name)
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name)
    return layer.output


Input.__doc__ = """The symbolic input of a graph model (Keras' ``keras.Input``): ``x = Input((28, 28, 1))``, then
    ``y = layer(x)`` ... and ``Model(x, y)``; also the first element of ``Sequential([Input(...), ...])``.
    ``shape`` excludes the batch axis (``batch_shape`` includes it).

    Args:
""" + INPUT_ARGS + """

    Returns:
        A symbolic tensor (a placeholder: calling layers on it records the graph, it holds no data).
    """
