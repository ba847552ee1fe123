"""Pooling layers: Max/Average pooling 1-D to 3-D, LP (L2-norm) pooling 2-D, global max/average pooling 1-D to 3-D.

Windows of ``pool_size`` moved by ``strides`` (default: ``pool_size``), output
sizes by ``conv_arithmetic`` (``"valid"`` floor((W - P)/S) + 1, ``"same"``
ceil(W/S), padded cells ignored). Each layer calls the op of the same name in
``tinygrad_cnn.functional``. ``LPPooling2D`` is not a Keras layer; it takes the
pooling arguments plus ``p`` and computes (sum over the window of |x|^p)^(1/p).
"""

from __future__ import annotations

from tinygrad_cnn import functional as F
from tinygrad_cnn import validation
from tinygrad_cnn.conv_arithmetic import conv_output_size
from tinygrad_cnn.nn._docs import LAYER_KWARGS, POOL_ARGS
from tinygrad_cnn.nn.layer import Layer

__all__ = [
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "LPPooling2D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
]


_POOL_DOC = """{summary}

    ``y[b, o..., c] = {op}`` over the window ``x[b, o S : o S + P, ..., c]`` (P = ``pool_size``,
    S = ``strides``). {grad}
    Input shape: ``{shape}`` (``channels_last``) or channels first; output: the same rank and channels,
    each spatial size ``floor((W - P) / S) + 1`` (``"valid"``) or ``ceil(W / S)`` (``"same"``).

    Args:
""" + POOL_ARGS + "\n" + LAYER_KWARGS + """

    Raises:
        ValueError: a non-positive size, an unknown ``padding``/``data_format``, or an input of the wrong rank.
"""

_MAX_GRAD = "The gradient goes to each window's first maximum\n    (row-major), as ``jax.grad`` of reduce_window."
_AVG_GRAD = "The gradient spreads evenly, 1/count, over the window's\n    cells inside the input."

_GLOBAL_DOC = """{summary}

    ``y[b, c] = {op}`` over all spatial positions of channel c. {grad}
    Input shape: ``{shape}`` (``channels_last``) or channels first; output ``(batch, channels)``, or with
    ``keepdims=True`` the input's rank with every spatial size 1.

    Args:
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        keepdims: bool, default False: keep the spatial axes with size 1.
""" + LAYER_KWARGS + """
"""

_GLOBAL_MAX_GRAD = "Ties share the gradient evenly (as ``jnp.max``)."


class _Pool(Layer):
    rank = 2

    def __init__(self, pool_size=None, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        w = self._where()
        pool_size = 2 if pool_size is None else pool_size
        self.pool_size = validation.int_tuple(w, "pool_size", pool_size, self.rank)
        self.strides = validation.int_tuple(w, "strides", self.pool_size if strides is None else strides, self.rank)
        self.padding = validation.choice(w, "padding", padding, ("valid", "same"))
        self.data_format = validation.data_format(w, data_format or "channels_last")

    def _spatial_axes(self) -> range:
        return range(1, self.rank + 1) if self.data_format == "channels_last" else range(2, self.rank + 2)

    def check_build_shape(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(f"{self._where()}: expected an input of rank {self.rank + 2}; got shape {tuple(shape)}")
        self.compute_output_shape(shape)

    def build(self, input_shape):
        c = -1 if self.data_format == "channels_last" else 1
        self.input_spec = {"ndim": self.rank + 2, "axes": {c % (self.rank + 2): input_shape[c]}}
        self.built = True

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        for axis, k, s in zip(self._spatial_axes(), self.pool_size, self.strides, strict=True):
            n = input_shape[axis]
            out[axis] = None if n is None else conv_output_size(n, k, s, self.padding, fn=self._where())
        return tuple(out)

    def receptive_field(self):
        return tuple(zip(self.pool_size, self.strides, strict=True))

    def _kw(self) -> dict:
        return {"strides": self.strides, "padding": self.padding, "data_format": self.data_format}

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "padding": self.padding,
                "strides": list(self.strides), "data_format": self.data_format}


class _MaxPool(_Pool):
    def call(self, x, training=False):
        return F.max_pool(x, self.pool_size, **self._kw())


class _AveragePool(_Pool):
    def call(self, x, training=False):
        return F.avg_pool(x, self.pool_size, **self._kw())


class MaxPooling1D(_MaxPool):
    __doc__ = _POOL_DOC.format(
        summary="Maximum over sliding windows, as ``keras.layers.MaxPooling1D``.",
        op="max", grad=_MAX_GRAD, shape="(batch, steps, channels)")

    rank = 1


class MaxPooling2D(_MaxPool):
    __doc__ = _POOL_DOC.format(
        summary="Maximum over sliding windows, as ``keras.layers.MaxPooling2D``.",
        op="max", grad=_MAX_GRAD, shape="(batch, rows, cols, channels)")

    rank = 2


class MaxPooling3D(_MaxPool):
    __doc__ = _POOL_DOC.format(
        summary="Maximum over sliding windows, as ``keras.layers.MaxPooling3D``.",
        op="max", grad=_MAX_GRAD, shape="(batch, d1, d2, d3, channels)")

    rank = 3


class AveragePooling1D(_AveragePool):
    __doc__ = _POOL_DOC.format(
        summary="Mean over sliding windows, as ``keras.layers.AveragePooling1D``.",
        op="mean", grad=_AVG_GRAD, shape="(batch, steps, channels)")

    rank = 1


class AveragePooling2D(_AveragePool):
    __doc__ = _POOL_DOC.format(
        summary="Mean over sliding windows, as ``keras.layers.AveragePooling2D``.",
        op="mean", grad=_AVG_GRAD, shape="(batch, rows, cols, channels)")

    rank = 2


class AveragePooling3D(_AveragePool):
    __doc__ = _POOL_DOC.format(
        summary="Mean over sliding windows, as ``keras.layers.AveragePooling3D``.",
        op="mean", grad=_AVG_GRAD, shape="(batch, d1, d2, d3, channels)")

    rank = 3


class LPPooling2D(_Pool):
    __doc__ = _POOL_DOC.format(
        summary="Power-average (LP) pooling (PyTorch's ``LPPool2d``; not a Keras layer).",
        op="(sum |x|^p)^(1/p)", grad="p=2 is L2-norm pooling; the gradient is 0 on an all-zero window.",
        shape="(batch, rows, cols, channels)").replace(
        "        data_format:", "        p: number >= 1, default 2: the norm's power.\n        data_format:")

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, p=2, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)
        self.p = validation.number_in(self._where(), "p", p, 1.0, float("inf"))

    def call(self, x, training=False):
        return F.lp_pool(x, self.pool_size, p=self.p, **self._kw())

    def get_config(self):
        return {**super().get_config(), "p": self.p}


class _GlobalPool(Layer):
    rank = 2

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = validation.data_format(self._where(), data_format or "channels_last")
        if not isinstance(keepdims, bool):
            raise TypeError(f"{self._where()}: keepdims must be True or False; got {keepdims!r}")
        self.keepdims = keepdims

    def check_build_shape(self, shape):
        if len(shape) != self.rank + 2:
            raise ValueError(f"{self._where()}: expected an input of rank {self.rank + 2}; got shape {tuple(shape)}")

    def build(self, input_shape):
        c = -1 if self.data_format == "channels_last" else 1
        self.input_spec = {"ndim": self.rank + 2, "axes": {c % (self.rank + 2): input_shape[c]}}
        self.built = True

    def compute_output_shape(self, input_shape):
        channels_last = self.data_format == "channels_last"
        c = input_shape[-1] if channels_last else input_shape[1]
        if not self.keepdims:
            return (input_shape[0], c)
        ones = (1,) * self.rank
        return (input_shape[0], *ones, c) if channels_last else (input_shape[0], c, *ones)

    def receptive_field(self):
        return "global"

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class _GlobalMax(_GlobalPool):
    def call(self, x, training=False):
        return F.global_max_pool(x, data_format=self.data_format, keepdims=self.keepdims)


class _GlobalAverage(_GlobalPool):
    def call(self, x, training=False):
        return F.global_avg_pool(x, data_format=self.data_format, keepdims=self.keepdims)


class GlobalMaxPooling1D(_GlobalMax):
    __doc__ = _GLOBAL_DOC.format(
        summary="Maximum over all positions per channel, as ``keras.layers.GlobalMaxPooling1D``.",
        op="max", grad=_GLOBAL_MAX_GRAD, shape="(batch, steps, channels)")

    rank = 1


class GlobalMaxPooling2D(_GlobalMax):
    __doc__ = _GLOBAL_DOC.format(
        summary="Maximum over all positions per channel, as ``keras.layers.GlobalMaxPooling2D``.",
        op="max", grad=_GLOBAL_MAX_GRAD, shape="(batch, rows, cols, channels)")

    rank = 2


class GlobalMaxPooling3D(_GlobalMax):
    __doc__ = _GLOBAL_DOC.format(
        summary="Maximum over all positions per channel, as ``keras.layers.GlobalMaxPooling3D``.",
        op="max", grad=_GLOBAL_MAX_GRAD, shape="(batch, d1, d2, d3, channels)")

    rank = 3


class GlobalAveragePooling1D(_GlobalAverage):
    __doc__ = _GLOBAL_DOC.format(
        summary="Mean over all positions per channel, as ``keras.layers.GlobalAveragePooling1D``.",
        op="mean", grad="The gradient is 1/(number of positions) everywhere.", shape="(batch, steps, channels)")

    rank = 1


class GlobalAveragePooling2D(_GlobalAverage):
    __doc__ = _GLOBAL_DOC.format(
        summary="Mean over all positions per channel, as ``keras.layers.GlobalAveragePooling2D``.",
        op="mean", grad="The gradient is 1/(number of positions) everywhere.", shape="(batch, rows, cols, channels)")

    rank = 2


class GlobalAveragePooling3D(_GlobalAverage):
    __doc__ = _GLOBAL_DOC.format(
        summary="Mean over all positions per channel, as ``keras.layers.GlobalAveragePooling3D``.",
        op="mean", grad="The gradient is 1/(number of positions) everywhere.", shape="(batch, d1, d2, d3, channels)")

    rank = 3
