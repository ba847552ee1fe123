"""Shape layers with Keras 3's names, arguments and defaults: ``Reshape``, ``Permute``, ``RepeatVector``,
``ZeroPadding1D/2D/3D``, ``Cropping1D/2D/3D``, ``UpSampling1D/2D/3D``.

Each moves values without arithmetic (bilinear upsampling aside), so its vjp moves the cotangent back:
Reshape/Permute reshape/transpose it back, RepeatVector and nearest upsampling sum it over the copies,
ZeroPadding cuts the padded border off it, Cropping pads it with zeros where cells were cut. All are built from
``tinygrad_cnn.ops`` (reshape, transpose, repeat, pad, getitem) and ``F.resize``.

Shapes (batch first; ``S`` = the spatial axes, channels last unless ``data_format="channels_first"``):
Reshape ``(B, *in) -> (B, *target_shape)`` (one -1 inferred); Permute ``(B, *in) -> (B, in[d_1 - 1], ...)``;
RepeatVector ``(B, F) -> (B, n, F)``; ZeroPadding ``S_i -> S_i + before_i + after_i``; Cropping
``S_i -> S_i - before_i - after_i``; UpSampling ``S_i -> S_i * size_i``.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import functional as F
from tinygrad_cnn import ops, validation
from tinygrad_cnn.nn.layer import Layer, _fmt_shape

__all__ = ["Cropping1D", "Cropping2D", "Cropping3D", "Permute", "RepeatVector", "Reshape", "UpSampling1D",
           "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"]


def _check_rank(layer: Layer, shape, rank: int, layout: str) -> None:
    if len(shape) != rank:
        raise ValueError(f"{layer._where()}: expected an input of rank {rank} ({layout}); got shape "
                         f"{_fmt_shape(shape)} (rank {len(shape)})")


class Reshape(Layer):
    """``(batch, *in) -> (batch, *target_shape)``, row-major; one entry of ``target_shape`` may be -1 (inferred).

    Args:
        target_shape: tuple of ints, the output shape without the batch axis (one -1 inferred).
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        shape = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else None
        if (shape is None or not all(validation.is_int(s) and (s > 0 or s == -1) for s in shape)
                or shape.count(-1) > 1):
            raise ValueError(f"{self._where()}: target_shape must be a tuple of positive ints with at most one -1 "
                             f"(the batch axis excluded); got {target_shape!r}")
        self.target_shape = tuple(int(s) for s in shape)

    def build(self, input_shape):
        self.input_spec = None  # any input whose size fits; compute_output_shape checks each call
        self.built = True

    def check_build_shape(self, shape):
        self.compute_output_shape(shape)

    def check_input_shape(self, shape):
        self.compute_output_shape(shape)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape[1:])
        known = int(np.prod([s for s in self.target_shape if s != -1]))
        if any(s is None for s in rest):
            return (input_shape[0], *(None if s == -1 else s for s in self.target_shape))
        total = int(np.prod(rest))
        if -1 in self.target_shape:
            if total % known:
                raise ValueError(f"{self._where()}: cannot reshape an input of shape {_fmt_shape(input_shape)} "
                                 f"({total} values per example) to target_shape={self.target_shape}: {total} is "
                                 f"not a multiple of {known}")
            return (input_shape[0], *(total // known if s == -1 else s for s in self.target_shape))
        if total != known:
            raise ValueError(f"{self._where()}: cannot reshape an input of shape {_fmt_shape(input_shape)} "
                             f"({total} values per example) to target_shape={self.target_shape} ({known} values)")
        return (input_shape[0], *self.target_shape)

    def call(self, x, training=False):
        return ops.reshape(x, (x.shape[0],) + self.compute_output_shape(x.shape)[1:])

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permute the non-batch axes: output axis i (1-based) is input axis ``dims[i - 1]``.

    Args:
        dims: tuple of the ints 1..rank in some order (1-based; the batch axis 0 stays).
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, (tuple, list)) else None
        if dims is None or not all(validation.is_int(d) for d in dims) or sorted(dims) != list(
                range(1, len(dims) + 1)):
            raise ValueError(f"{self._where()}: dims must be a permutation of 1..n (the non-batch axes, 1-based); "
                             f"got {dims!r}")
        self.dims = tuple(int(d) for d in dims)

    def check_build_shape(self, shape):
        _check_rank(self, shape, len(self.dims) + 1, f"batch and the {len(self.dims)} axes dims={self.dims} permutes")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def call(self, x, training=False):
        return ops.transpose(x, (0, *self.dims))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """``(batch, features) -> (batch, n, features)``: the input repeated ``n`` times along a new axis 1.

    Args:
        n: positive int, the number of copies.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = validation.positive_int(self._where(), "n", n)

    def check_build_shape(self, shape):
        _check_rank(self, shape, 2, "batch, features")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def call(self, x, training=False):
        return ops.repeat(ops.reshape(x, (x.shape[0], 1, x.shape[1])), self.n, axis=1)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class _Spatial(Layer):
    """A layer acting on the ``rank`` spatial axes of (batch, spatial..., channels) or (batch, channels,
    spatial...) inputs."""

    rank = 2

    def _init_format(self, data_format):
        self.data_format = validation.data_format(self._where(), data_format or "channels_last")

    def _spatial_axes(self) -> range:
        return range(1, self.rank + 1) if self.data_format == "channels_last" else range(2, self.rank + 2)

    def check_build_shape(self, shape):
        layout = "spatial..., channels" if self.data_format == "channels_last" else "channels, spatial..."
        _check_rank(self, shape, self.rank + 2, f"batch, {layout}; {self.rank} spatial axes")
        self.compute_output_shape(shape)

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        self.compute_output_shape(shape)

    def _map_spatial(self, input_shape, fn) -> tuple:
        out = list(input_shape)
        for i, axis in enumerate(self._spatial_axes()):
            out[axis] = None if input_shape[axis] is None else fn(i, input_shape[axis])
        return tuple(out)

    def _format_config(self) -> dict:
        return {"data_format": self.data_format}


def _pairs(where: str, arg: str, value, rank: int) -> tuple[tuple[int, int], ...]:
    """Keras' padding/cropping forms as one ``(before, after)`` pair per spatial axis: an int (every side), one
    int per axis (both sides), one pair per axis, or (1-D) one pair."""
    def is_int(v):
        return validation.is_int(v)

    def is_pair(v):
        return isinstance(v, (tuple, list)) and len(v) == 2 and all(is_int(u) for u in v)

    if is_int(value):
        pairs = ((value, value),) * rank
    elif rank == 1 and is_pair(value):
        pairs = (tuple(value),)
    elif isinstance(value, (tuple, list)) and len(value) == rank and all(is_int(v) or is_pair(v) for v in value):
        pairs = tuple((v, v) if is_int(v) else tuple(v) for v in value)
    else:
        forms = "an int or a (before, after) pair" if rank == 1 else (
            f"an int, a tuple of {rank} ints or a tuple of {rank} (before, after) pairs")
        raise ValueError(f"{where}: {arg} must be {forms}; got {value!r}")
    if any(v < 0 for p in pairs for v in p):
        raise ValueError(f"{where}: {arg} must be non-negative; got {value!r}")
    return tuple((int(b), int(a)) for b, a in pairs)


def _pairs_config(pairs, rank):
    return list(pairs[0]) if rank == 1 else [list(p) for p in pairs]


class _ZeroPadding(_Spatial):
    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._init_format(data_format)
        self.padding = _pairs(self._where(), "padding", padding, self.rank)

    def compute_output_shape(self, input_shape):
        return self._map_spatial(input_shape, lambda i, n: n + sum(self.padding[i]))

    def call(self, x, training=False):
        width = [(0, 0)] * x.ndim
        for axis, pair in zip(self._spatial_axes(), self.padding, strict=True):
            width[axis] = pair
        return ops.pad(x, width)

    def get_config(self):
        return {**super().get_config(), "padding": _pairs_config(self.padding, self.rank), **self._format_config()}


class ZeroPadding1D(_ZeroPadding):
    """Zeros added before and after the steps of (batch, steps, channels): ``padding`` an int or a pair.

    Args:
        padding: int (default 1) or a ``(before, after)`` pair of steps.
        data_format: ``"channels_last"`` (default None: channels_last) or ``"channels_first"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 1


class ZeroPadding2D(_ZeroPadding):
    """Zeros around the rows and columns: ``padding`` an int, (rows, cols) or ((top, bottom), (left, right)).

    Args:
        padding: int (default 1), (rows, cols) or ((top, bottom), (left, right)).
        data_format: ``"channels_last"`` (default None: channels_last) or ``"channels_first"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 2


class ZeroPadding3D(_ZeroPadding):
    """Zeros around the three spatial axes: ``padding`` an int, three ints or three (before, after) pairs.

    Args:
        padding: int (default 1), three ints or three ``(before, after)`` pairs.
        data_format: ``"channels_last"`` (default None: channels_last) or ``"channels_first"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 3


class _Cropping(_Spatial):
    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._init_format(data_format)
        self.cropping = _pairs(self._where(), "cropping", cropping, self.rank)

    def _cropped(self, i, n):
        size = n - sum(self.cropping[i])
        if size < 1:
            raise ValueError(f"{self._where()}: cropping={self.cropping} removes {sum(self.cropping[i])} cells "
                             f"along spatial axis {i}, which has only {n}; it must leave at least one")
        return size

    def compute_output_shape(self, input_shape):
        return self._map_spatial(input_shape, self._cropped)

    def call(self, x, training=False):
        index = [slice(None)] * x.ndim
        for axis, (before, after) in zip(self._spatial_axes(), self.cropping, strict=True):
            index[axis] = slice(before, x.shape[axis] - after)
        return ops.getitem(x, tuple(index))

    def get_config(self):
        return {**super().get_config(), "cropping": _pairs_config(self.cropping, self.rank), **self._format_config()}


class Cropping1D(_Cropping):
    """Cut ``cropping = (before, after)`` steps off (batch, steps, channels) inputs (Keras' default (1, 1)).

    Args:
        cropping: int or ``(before, after)`` pair of steps, default (1, 1).
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, **kwargs)

    def _format_config(self):
        return {}


class Cropping2D(_Cropping):
    """Cut rows and columns off: ``cropping`` an int, (rows, cols) or ((top, bottom), (left, right)).

    Args:
        cropping: int, (rows, cols) or ((top, bottom), (left, right)), default no cropping.
        data_format: ``"channels_last"`` (default None: channels_last) or ``"channels_first"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Cut cells off the three spatial axes (Keras' default one on each side).

    Args:
        cropping: int, one int per axis, or one ``(before, after)`` pair per axis; default one cell each side.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class _UpSampling(_Spatial):

    def __init__(self, size=2, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self._init_format(data_format)
        self.size = validation.int_tuple(self._where(), "size", size, self.rank)
        self.interpolation = validation.choice(self._where(), "interpolation", str(interpolation).lower(),
                                               ("nearest", "bilinear"))

    def compute_output_shape(self, input_shape):
        return self._map_spatial(input_shape, lambda i, n: n * self.size[i])

    def receptive_field(self):
        """Per axis: an output cell reads 1 input cell (nearest) or 2 (bilinear), at 1/size of the input's step."""
        taps = 2 if self.interpolation == "bilinear" else 1
        return tuple((taps if s > 1 else 1, 1.0 / s) for s in self.size)

    def call(self, x, training=False):
        if self.interpolation == "bilinear":
            spatial = [x.shape[a] * s for a, s in zip(self._spatial_axes(), self.size, strict=True)]
            return F.resize(x, spatial, "bilinear", self.data_format)
        for axis, s in zip(self._spatial_axes(), self.size, strict=True):
            x = ops.repeat(x, s, axis=axis) if s > 1 else x
        return x

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), **self._format_config()}


class UpSampling1D(_UpSampling):
    """Repeat each step ``size`` times: (batch, steps, channels) -> (batch, steps * size, channels);
    ``interpolation="bilinear"`` (linear along the steps) is this project's extension (Keras' UpSampling1D only
    repeats).

    Args:
        size: positive int, default 2: the factor along the steps.
        interpolation: ``"nearest"`` (default) or ``"bilinear"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 1

    def __init__(self, size=2, interpolation="nearest", **kwargs):
        super().__init__(size, interpolation=interpolation, **kwargs)

    def get_config(self):
        config = {**Layer.get_config(self), "size": self.size[0]}
        return config if self.interpolation == "nearest" else {**config, "interpolation": self.interpolation}


class UpSampling2D(_UpSampling):
    """Rows and columns times ``size``: ``interpolation="nearest"`` repeats cells, ``"bilinear"`` interpolates
    (``F.resize``, half-pixel centres, as Keras' ``ops.image.resize``).

    Args:
        size: int or (rows, cols) of positive ints, default 2.
        data_format: ``"channels_last"`` (default None: channels_last) or ``"channels_first"``.
        interpolation: ``"nearest"`` (default) or ``"bilinear"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 2

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    """Each spatial axis times ``size`` by repeating cells; ``interpolation="bilinear"`` (linear along each axis)
    is this project's extension (Keras' UpSampling3D only repeats).

    Args:
        size: int or three positive ints, default (2, 2, 2).
        data_format: ``"channels_last"`` (default None: channels_last) or ``"channels_first"``.
        interpolation: ``"nearest"`` (default) or ``"bilinear"``.
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format, interpolation, **kwargs)

    def get_config(self):
        config = super().get_config()
        return config if self.interpolation == "nearest" else {**config, "interpolation": self.interpolation}
