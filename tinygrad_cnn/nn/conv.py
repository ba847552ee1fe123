"""Convolution layers (Keras 3 arguments): Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D,
Conv1D/2D/3DTranspose.

Weights, in Keras' order and layout: ``kernel`` then ``bias``;
conv kernel ``kernel_size + (in_channels // groups, filters)``; depthwise
kernel ``kernel_size + (in_channels, depth_multiplier)`` with bias
``in_channels * depth_multiplier``; separable: ``depthwise_kernel`` (as the
depthwise kernel), ``pointwise_kernel`` ``(1,) * rank + (in_channels *
depth_multiplier, filters)``, ``bias`` ``(filters,)``; transposed kernel
``kernel_size + (filters, in_channels)``. ``y = activation(conv(x, kernel) +
bias)`` with the op from ``tinygrad_cnn.functional``. Output sizes follow
``conv_arithmetic``: ``"valid"`` floor((W - F_eff)/S) + 1, ``"same"``
ceil(W/S); a transposed conv inverts that (Keras' rule, ``(W - 1) S + F_eff +
output_padding`` for ``"valid"`` and ``W S`` for ``"same"``).

``padding`` may also be explicit, as PyTorch's layers take it (not a Keras
option): an int, or one int or ``(before, after)`` pair per spatial axis; a
conv then pads by that many zeros, a transposed conv cuts that many cells from
each side of its full output (``(W - 1) S + F_eff - before - after +
output_padding``, output_padding defaulting to 0).
"""

from __future__ import annotations

from tinygrad_cnn import functional as F
from tinygrad_cnn import validation
from tinygrad_cnn.conv_arithmetic import conv_output_size, effective_kernel_size, explicit_pads
from tinygrad_cnn.nn import activations, constraints, initializers, regularizers
from tinygrad_cnn.nn._docs import CONV_GEOMETRY, LAYER_KWARGS, WEIGHT_ARGS
from tinygrad_cnn.nn.core import WeightedMixin
from tinygrad_cnn.nn.layer import Layer

__all__ = ["Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "DepthwiseConv1D",
           "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"]

_CONV_DOC = """{summary}

    ``y = activation(conv(x, kernel) + bias)``, cross-correlation as Keras (the kernel is not flipped):
    ``y[b, o..., f] = sum_{{k..., c}} x[b, o S + k d..., g(f) C/groups + c] kernel[k..., c, f]``, g(f) the
    group of filter f. Weights: ``kernel`` of shape ``kernel_size + (in_channels // groups, filters)``,
    ``bias`` of shape ``(filters,)``.

    Input shape: ``{shape_in}`` (``channels_last``) or channels first. Output: the same rank
    with ``filters`` channels and each spatial size ``floor((W - F_eff) / S) + 1`` (``"valid"``) or
    ``ceil(W / S)`` (``"same"``).{extra}

    Args:
        filters: positive int, the number of output channels.
""" + CONV_GEOMETRY + """
        groups: positive int, default 1: split the input channels into this many groups, each convolved
            with its own ``filters // groups`` filters (``filters`` and in_channels must be divisible by it).
""" + WEIGHT_ARGS.format(k="kernel") + "\n" + LAYER_KWARGS + """

    Raises:
        ValueError: an argument out of range (named in the message), ``strides > 1`` together with
            ``dilation_rate > 1``, or an input whose rank or channel count does not fit.
"""


_DEPTHWISE_DOC = """{summary}

    Each input channel c is convolved with its own ``depth_multiplier`` filters:
    ``y[b, o..., c M + m] = sum_k x[b, o S + k d..., c] kernel[k..., c, m]`` (M = ``depth_multiplier``), so the
    output has ``in_channels * M`` channels, channel-major. Weights: ``kernel`` of shape
    ``kernel_size + (in_channels, depth_multiplier)``, ``bias`` of shape ``(in_channels * M,)``.

    Args:
""" + CONV_GEOMETRY + """
        depth_multiplier: positive int, default 1: filters per input channel.
""" + WEIGHT_ARGS.format(k="depthwise") + "\n" + LAYER_KWARGS + """
"""

_SEPARABLE_DOC = """{summary}

    A depthwise conv (``strides``, ``padding``, ``dilation_rate``) then a pointwise (1 x ... x 1) conv to
    ``filters`` channels, as Keras' ``ops.separable_conv``:
    ``y = activation(pointwise(depthwise(x, depthwise_kernel), pointwise_kernel) + bias)``. Weights:
    ``depthwise_kernel`` ``kernel_size + (in_channels, depth_multiplier)``, ``pointwise_kernel``
    ``(1,) * rank + (in_channels * depth_multiplier, filters)``, ``bias`` ``(filters,)``.

    Args:
        filters: positive int, the number of output channels.
""" + CONV_GEOMETRY + """
        depth_multiplier: positive int, default 1.
""" + WEIGHT_ARGS.format(k="depthwise") + """
        pointwise_initializer, pointwise_regularizer, pointwise_constraint: the same for the pointwise kernel
            (defaults ``"glorot_uniform"``, None, None).
""" + LAYER_KWARGS + """
"""

_TRANSPOSE_DOC = """{summary}

    The adjoint of the convolution with the same arguments (its input-gradient), as Keras'
    ``Conv*DTranspose``. Output size per axis: ``"valid"`` ``(W - 1) S + F_eff + extra`` with extra =
    ``output_padding`` if given, else ``max(F_eff, S) - F_eff``; ``"same"`` ``W S`` (without
    ``output_padding``); explicit ``(before, after)`` ``(W - 1) S + F_eff - before - after + output_padding``.
    Weights: ``kernel`` of shape ``kernel_size + (filters, in_channels)``, ``bias`` ``(filters,)``.

    Args:
        filters: positive int, the number of output channels.
""" + CONV_GEOMETRY + """
        output_padding: None (default) or an int / one int per axis, each smaller than the stride: extra cells
            at the end of each spatial axis.
""" + WEIGHT_ARGS.format(k="kernel") + "\n" + LAYER_KWARGS + """
"""


class _BaseConv(WeightedMixin, Layer):
    """Shared argument checks, shapes and config of the convolution layers."""

    rank = 2
    _paddings = ("valid", "same")

    def _init_geometry(self, kernel_size, strides, padding, data_format, dilation_rate, forbid_stride_dilation):
        w = self._where()
        self.kernel_size = validation.int_tuple(w, "kernel_size", kernel_size, self.rank)
        self.strides = validation.int_tuple(w, "strides", strides, self.rank)
        self.dilation_rate = validation.int_tuple(w, "dilation_rate", dilation_rate, self.rank)
        pads = explicit_pads(w, padding, self.rank) if not isinstance(padding, str) else None
        self.padding = pads if pads is not None else validation.choice(w, "padding", padding, self._paddings)
        self.data_format = validation.data_format(w, data_format or "channels_last")
        if forbid_stride_dilation and max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{w}: strides > 1 together with dilation_rate > 1 is not supported (as in Keras); "
                             f"got strides={self.strides}, dilation_rate={self.dilation_rate}")

    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _spatial(self, shape) -> tuple:
        return tuple(shape[1:-1]) if self.data_format == "channels_last" else tuple(shape[2:])

    def _with_spatial(self, shape, spatial, channels) -> tuple:
        if self.data_format == "channels_last":
            return (shape[0], *spatial, channels)
        return (shape[0], channels, *spatial)

    def check_build_shape(self, shape):
        if len(shape) != self.rank + 2:
            layout = "spatial..., channels" if self.data_format == "channels_last" else "channels, spatial..."
            raise ValueError(f"{self._where()}: expected an input of rank {self.rank + 2} (batch, {layout}); "
                             f"got shape {tuple(shape)}")
        if shape[self._channel_axis()] is None:
            raise ValueError(f"{self._where()}: the channel axis of the input must be known; got {tuple(shape)}")
        self.compute_output_shape(shape)

    def _set_spec(self, input_shape):
        c = self._channel_axis()
        self.input_spec = {"ndim": self.rank + 2, "axes": {c % (self.rank + 2): input_shape[c]}}

    def _axis_paddings(self) -> tuple:
        """Per spatial axis: the padding name, or the explicit ``(before, after)`` pair."""
        return (self.padding,) * self.rank if isinstance(self.padding, str) else self.padding

    def _conv_output_shape(self, input_shape, channels) -> tuple:
        """``input_shape`` with each spatial size mapped by the conv arithmetic and ``channels`` channels."""
        spatial = tuple(None if n is None else conv_output_size(n, k, s, p, d, fn=self._where()) for n, k, s, p, d in
                        zip(self._spatial(input_shape), self.kernel_size, self.strides, self._axis_paddings(),
                            self.dilation_rate, strict=True))
        return self._with_spatial(input_shape, spatial, channels)

    def receptive_field(self):
        return tuple((effective_kernel_size(k, d), s)
                     for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate, strict=True))

    def _geometry_config(self) -> dict:
        padding = self.padding if isinstance(self.padding, str) else [list(p) for p in self.padding]
        return {"kernel_size": list(self.kernel_size), "strides": list(self.strides), "padding": padding,
                "data_format": self.data_format, "dilation_rate": list(self.dilation_rate)}


class _Conv(_BaseConv):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        w = self._where()
        self.filters = validation.positive_int(w, "filters", filters)
        self.groups = validation.positive_int(w, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"{w}: filters={self.filters} must be divisible by groups={self.groups}")
        self._init_geometry(kernel_size, strides, padding, data_format, dilation_rate, True)
        self._init_weight_args(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, kernel_constraint, bias_constraint)

    def check_build_shape(self, shape):
        super().check_build_shape(shape)
        channels = shape[self._channel_axis()]
        if channels % self.groups:
            raise ValueError(f"{self._where()}: the input has {channels} channels, not divisible by "
                             f"groups={self.groups} (input shape {tuple(shape)})")

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self._add_kernel_and_bias(self.kernel_size + (channels // self.groups, self.filters), self.filters)
        self._set_spec(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._conv_output_shape(input_shape, self.filters)

    def call(self, x, training=False):
        fused = self.activation is activations.relu  # relu inside the conv primitive: one pass fewer each way
        y = F._conv("conv", x, self.kernel, self.bias, self.strides, self.padding, self.dilation_rate,
                    self.groups, self.data_format, relu=fused)
        return y if fused else self.activation(y)

    def get_config(self):
        return {**Layer.get_config(self), "filters": self.filters, **self._geometry_config(), "groups": self.groups,
                **self._weight_config()}


class Conv1D(_Conv):
    __doc__ = _CONV_DOC.format(
        summary="1-D convolution over (batch, steps, channels), as ``keras.layers.Conv1D``.",
        shape_in="(batch, steps, channels)",
        extra=' ``padding`` may also be\n    ``"causal"``: zeros on the left only, output t sees only inputs up to t.')

    rank = 1
    _paddings = ("valid", "same", "causal")


class Conv2D(_Conv):
    __doc__ = _CONV_DOC.format(
        summary="2-D convolution over (batch, rows, cols, channels), as ``keras.layers.Conv2D``.",
        shape_in="(batch, rows, cols, channels)",
        extra="")

    rank = 2


class Conv3D(_Conv):
    __doc__ = _CONV_DOC.format(
        summary="3-D convolution over (batch, d1, d2, d3, channels), as ``keras.layers.Conv3D``.",
        shape_in="(batch, d1, d2, d3, channels)",
        extra="")

    rank = 3


class _DepthwiseConv(_BaseConv):
    """Each input channel convolved with its own ``depth_multiplier`` filters; output channels
    in_channels * depth_multiplier, ordered channel-major (c * depth_multiplier + m)."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.depth_multiplier = validation.positive_int(self._where(), "depth_multiplier", depth_multiplier)
        self._init_geometry(kernel_size, strides, padding, data_format, dilation_rate, False)
        self._init_weight_args(activation, use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer,
                               bias_regularizer, depthwise_constraint, bias_constraint, kernel_arg="depthwise")

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self._add_kernel_and_bias(self.kernel_size + (channels, self.depth_multiplier),
                                  channels * self.depth_multiplier)
        self._set_spec(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._conv_output_shape(input_shape, input_shape[self._channel_axis()] * self.depth_multiplier)

    def call(self, x, training=False):
        y = F._depthwise_conv(self._where(), x, self.kernel, self.bias, self.strides, self.padding,
                              self.dilation_rate, self.data_format, rank=self.rank)
        return self.activation(y)

    def get_config(self):
        return {**Layer.get_config(self), **self._geometry_config(), "depth_multiplier": self.depth_multiplier,
                **self._weight_config()}


class DepthwiseConv1D(_DepthwiseConv):
    __doc__ = _DEPTHWISE_DOC.format(
        summary="Depthwise 1-D convolution over (batch, steps, channels), as ``keras.layers.DepthwiseConv1D``.")

    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    __doc__ = _DEPTHWISE_DOC.format(
        summary="Depthwise 2-D convolution, as ``keras.layers.DepthwiseConv2D``.")

    rank = 2


class _SeparableConv(_BaseConv):
    """A depthwise conv (``strides``, ``padding``, ``dilation_rate``) then a pointwise (1 x ... x 1) conv to
    ``filters`` channels, as Keras' ``ops.separable_conv``:
    ``y = activation(pointwise(depthwise(x, depthwise_kernel), pointwise_kernel) + bias)``."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        w = self._where()
        self.filters = validation.positive_int(w, "filters", filters)
        self.depth_multiplier = validation.positive_int(w, "depth_multiplier", depth_multiplier)
        self._init_geometry(kernel_size, strides, padding, data_format, dilation_rate, False)
        self._init_weight_args(activation, use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer,
                               bias_regularizer, depthwise_constraint, bias_constraint, kernel_arg="depthwise")
        self.pointwise_initializer = self._resolve("initializer", "pointwise_initializer", pointwise_initializer)
        self.pointwise_regularizer = self._resolve("regularizer", "pointwise_regularizer", pointwise_regularizer)
        self.pointwise_constraint = self._resolve("constraint", "pointwise_constraint", pointwise_constraint)

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self.depthwise_kernel = self.add_weight(
            "depthwise_kernel", self.kernel_size + (channels, self.depth_multiplier), self.kernel_initializer,
            self.kernel_regularizer, self.kernel_constraint)
        self.pointwise_kernel = self.add_weight(
            "pointwise_kernel", (1,) * self.rank + (channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer, self.pointwise_regularizer, self.pointwise_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer, self.bias_regularizer,
                                        self.bias_constraint)
        self._set_spec(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self._conv_output_shape(input_shape, self.filters)

    def call(self, x, training=False):
        h = F._depthwise_conv(self._where(), x, self.depthwise_kernel, None, self.strides, self.padding,
                              self.dilation_rate, self.data_format, rank=self.rank)
        y = F._conv(self._where(), h, self.pointwise_kernel, self.bias, data_format=self.data_format, rank=self.rank)
        return self.activation(y)

    def get_config(self):
        return {**Layer.get_config(self), "filters": self.filters, **self._geometry_config(),
                "depth_multiplier": self.depth_multiplier, **self._weight_config(),
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
                "pointwise_constraint": constraints.serialize(self.pointwise_constraint)}


class SeparableConv1D(_SeparableConv):
    __doc__ = _SEPARABLE_DOC.format(
        summary="Depthwise-separable 1-D convolution, as ``keras.layers.SeparableConv1D``.")

    rank = 1


class SeparableConv2D(_SeparableConv):
    __doc__ = _SEPARABLE_DOC.format(
        summary="Depthwise-separable 2-D convolution, as ``keras.layers.SeparableConv2D``.")

    rank = 2


def transpose_output_size(size, kernel_size, stride, padding, output_padding, dilation):
    """Keras' transposed-conv output size along one axis (None stays None).

    ``"valid"``: (W - 1) S + F_eff + (output_padding if given, else max(F_eff, S) - F_eff);
    ``"same"``: W S without output_padding, else (W - 1) S + F_eff % 2 + output_padding;
    explicit ``(before, after)``: (W - 1) S + F_eff - before - after + (output_padding or 0);
    F_eff = d (F - 1) + 1.
    """
    if size is None:
        return None
    k = effective_kernel_size(kernel_size, dilation)
    if not isinstance(padding, str):
        return (size - 1) * stride + k - padding[0] - padding[1] + (output_padding or 0)
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return (size - 1) * stride + k + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + k % 2 + output_padding


class _ConvTranspose(_BaseConv):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        w = self._where()
        self.filters = validation.positive_int(w, "filters", filters)
        self._init_geometry(kernel_size, strides, padding, data_format, dilation_rate, True)
        self.output_padding = (None if output_padding is None else
                               validation.int_tuple(w, "output_padding", output_padding, self.rank, minimum=0))
        if self.output_padding is not None:
            for i, (op, s) in enumerate(zip(self.output_padding, self.strides, strict=True)):
                if op >= s:
                    raise ValueError(f"{w}: output_padding must be smaller than strides on every axis; at axis {i} "
                                     f"output_padding={self.output_padding} and strides={self.strides}")
        self._init_weight_args(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, kernel_constraint, bias_constraint)

    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        self._add_kernel_and_bias(self.kernel_size + (self.filters, channels), self.filters)
        self._set_spec(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        ops_ = self.output_padding or (None,) * self.rank
        spatial = tuple(transpose_output_size(n, k, s, p, op, d) for n, k, s, p, op, d in
                        zip(self._spatial(input_shape), self.kernel_size, self.strides, self._axis_paddings(), ops_,
                            self.dilation_rate, strict=True))
        if any(n is not None and n < 1 for n in spatial):
            raise ValueError(f"{self._where()}: padding={self.padding!r} cuts the whole output away for an input of "
                             f"shape {tuple(input_shape)} (output spatial sizes {spatial})")
        return self._with_spatial(input_shape, spatial, self.filters)

    def receptive_field(self):
        return tuple((-(-effective_kernel_size(k, d) // s), 1.0 / s)
                     for k, s, d in zip(self.kernel_size, self.strides, self.dilation_rate, strict=True))

    def call(self, x, training=False):
        y = F.conv_transpose(x, self.kernel, self.bias, strides=self.strides, padding=self.padding,
                             output_padding=self.output_padding, dilation_rate=self.dilation_rate,
                             data_format=self.data_format)
        return self.activation(y)

    def get_config(self):
        return {**Layer.get_config(self), "filters": self.filters, **self._geometry_config(),
                "output_padding": None if self.output_padding is None else list(self.output_padding),
                **self._weight_config()}


class Conv1DTranspose(_ConvTranspose):
    __doc__ = _TRANSPOSE_DOC.format(
        summary="Transposed 1-D convolution, as ``keras.layers.Conv1DTranspose``.")

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    __doc__ = _TRANSPOSE_DOC.format(
        summary="Transposed 2-D convolution, as ``keras.layers.Conv2DTranspose``.")

    rank = 2


class Conv3DTranspose(_ConvTranspose):
    __doc__ = _TRANSPOSE_DOC.format(
        summary="Transposed 3-D convolution, as ``keras.layers.Conv3DTranspose``.")

    rank = 3
