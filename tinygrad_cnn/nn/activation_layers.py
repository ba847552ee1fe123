"""Elementwise layers with Keras 3's names, arguments and kinks: ``LeakyReLU``, ``PReLU``, ``ELU``, ``Softmax``
and ``Rescaling``.

- ``LeakyReLU(negative_slope=0.3)``: x for x >= 0, negative_slope x otherwise (``jax.nn.leaky_relu``:
  derivative 1 at 0).
- ``PReLU``: ``relu(x) - alpha relu(-x)`` with a learned ``alpha`` of shape ``input_shape[1:]``, size 1 along
  the ``shared_axes`` (1-based, as Keras); as Keras computes it, the derivative at x = 0 is 0 (both relus'
  derivative at 0); d/d alpha = -relu(-x), summed over the shared axes.
- ``ELU(alpha=1.0)``: x for x > 0, alpha (e^x - 1) otherwise (derivative alpha at 0, as ``jax.nn.elu``).
- ``Softmax(axis=-1)``: e^x / sum e^x over ``axis`` (an int or a list of axes).
- ``Rescaling(scale, offset=0.0)``: ``x * scale + offset``; scale/offset a number or a list broadcasting
  against the input's trailing axes (NumPy's rule).
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import functional as F
from tinygrad_cnn import ops, validation
from tinygrad_cnn.nn import constraints, initializers, regularizers
from tinygrad_cnn.nn.layer import Layer, _fmt_shape

__all__ = ["ELU", "LeakyReLU", "PReLU", "Rescaling", "Softmax"]


class LeakyReLU(Layer):
    """x for x >= 0, ``negative_slope`` x otherwise (Keras 3's default slope 0.3).

    Args:
        negative_slope: float >= 0, default 0.3: the slope for x < 0 (slope 1 at x = 0, as ``jax.nn``).
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = validation.number_in(self._where(), "negative_slope", negative_slope, 0.0,
                                                   float("inf"))

    def call(self, x, training=False):
        return ops.leaky_relu(x, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """x for x > 0, ``alpha`` (e^x - 1) otherwise.

    Args:
        alpha: float, default 1.0: the negative branch saturates at -alpha; elu'(0) = alpha.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = validation.number_in(self._where(), "alpha", alpha, -float("inf"), float("inf"))

    def call(self, x, training=False):
        return ops.elu(x, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """e^x_i / sum_j e^x_j over ``axis`` (an int, or a list of axes normalised together).

    Args:
        axis: int or list of ints, default -1.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        if not axes or not all(validation.is_int(a) for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(f"{self._where()}: axis must be an int or a list of distinct ints; got {axis!r}")
        self.axis = int(axis) if validation.is_int(axis) else [int(a) for a in axis]

    def _axes(self, ndim) -> tuple:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if not all(-ndim <= a < ndim for a in axes) or any(a % ndim == 0 for a in axes):
            raise ValueError(f"{self._where()}: axis={self.axis!r} must name non-batch axes of an input of rank "
                             f"{ndim}")
        return tuple(a % ndim for a in axes)

    def check_build_shape(self, shape):
        self._axes(len(shape))

    def call(self, x, training=False):
        axes = self._axes(x.ndim)
        if len(axes) == 1:
            return F.softmax(x, axes[0])
        shifted = x - ops.constant(np.max(x.data, axis=axes, keepdims=True))
        e = ops.exp(shifted)
        return e / ops.sum(e, axes, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PReLU(Layer):
    """``relu(x) - alpha relu(-x)``, ``alpha`` learned per position and channel (see the module docstring).

    Args:
        alpha_initializer: default ``"zeros"`` (PReLU starts as ReLU).
        alpha_regularizer: a penalty on alpha, default None.
        alpha_constraint: a projection of alpha after each step, default None.
        shared_axes: None (default) or the axes (1-based, batch excluded) along which one alpha is shared,
            e.g. ``[1, 2]`` for one alpha per channel of an image.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = self._resolve("initializer", "alpha_initializer", alpha_initializer)
        self.alpha_regularizer = self._resolve("regularizer", "alpha_regularizer", alpha_regularizer)
        self.alpha_constraint = self._resolve("constraint", "alpha_constraint", alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if not all(validation.is_int(a) and a >= 1 for a in axes):
                raise ValueError(f"{self._where()}: shared_axes must be None or ints >= 1 (axes of the input, the "
                                 f"batch axis 0 excluded); got {shared_axes!r}")
            self.shared_axes = [int(a) for a in axes]

    def check_build_shape(self, shape):
        if len(shape) < 2:
            raise ValueError(f"{self._where()}: expected an input of rank >= 2; got shape {_fmt_shape(shape)}")
        bad = [a for a in self.shared_axes or [] if a >= len(shape)]
        if bad:
            raise ValueError(f"{self._where()}: shared_axes={self.shared_axes} name axes beyond an input of shape "
                             f"{_fmt_shape(shape)} (rank {len(shape)})")
        free = [a for a in range(1, len(shape)) if a not in (self.shared_axes or [])]
        unknown = [a for a in free if shape[a] is None]
        if unknown:
            raise ValueError(f"{self._where()}: axes {unknown} of the input {_fmt_shape(shape)} are unknown; alpha "
                             f"needs their sizes (or list them in shared_axes)")

    def build(self, input_shape):
        shape = [1 if a in (self.shared_axes or []) else input_shape[a] for a in range(1, len(input_shape))]
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer, self.alpha_regularizer,
                                     self.alpha_constraint)
        self.input_spec = {"ndim": len(input_shape),
                           "axes": {a: input_shape[a] for a in range(1, len(input_shape))
                                    if a not in (self.shared_axes or [])}}
        self.built = True

    def call(self, x, training=False):
        return ops.relu(x) - self.alpha * ops.relu(-x)

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint), "shared_axes": self.shared_axes}


def _numbers(where: str, arg: str, value):
    """A float, or a list of floats (from a number, a sequence or an array)."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    array = np.asarray(value)
    if array.ndim == 0 or not np.issubdtype(array.dtype, np.number) or array.dtype == bool:
        raise TypeError(f"{where}: {arg} must be a number or a list of numbers; got {value!r}")
    return array.astype(float).tolist()


class Rescaling(Layer):
    """``y = x * scale + offset`` (e.g. ``Rescaling(1 / 255)`` for pixel values); dy/dx = scale.

    Args:
        scale: number (or array broadcasting against the input).
        offset: number (or array), default 0.0.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _numbers(self._where(), "scale", scale)
        self.offset = _numbers(self._where(), "offset", offset)

    def check_build_shape(self, shape):
        for arg in ("scale", "offset"):
            value = np.shape(getattr(self, arg))
            if len(value) > len(shape) or not all(v == 1 or s is None or v == s
                                                  for v, s in zip(value[::-1], tuple(shape)[::-1], strict=False)):
                raise ValueError(f"{self._where()}: {arg} of shape {value} does not broadcast against the input "
                                 f"shape {_fmt_shape(shape)} (NumPy's rule, aligned on the last axes, without "
                                 f"growing the input)")

    def call(self, x, training=False):
        scale = np.asarray(self.scale, x.dtype)
        offset = np.asarray(self.offset, x.dtype)
        return x * ops.constant(scale) + ops.constant(offset)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}
