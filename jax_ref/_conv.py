"""Convolutions of the twin on ``lax.conv_general_dilated`` / ``lax.conv_transpose``, with Keras kernel layouts.

conv kernel ``kernel_size + (in_channels // groups, filters)``, depthwise kernel
``kernel_size + (in_channels, depth_multiplier)``, transposed kernel
``kernel_size + (filters, in_channels)``. ``data_format`` is ``"channels_last"``
(N W.. C) or ``"channels_first"`` (N C W..).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from tinygrad_cnn import validation
from tinygrad_cnn.conv_arithmetic import resolve_padding, transpose_padding

_SPATIAL = {1: "W", 2: "HW", 3: "DHW"}


def dimension_numbers(rank: int, data_format: str):
    """``(lhs, rhs, out)`` spec strings for ``lax``: Keras kernels are ``<spatial>IO``.

    A transposed-conv kernel ``kernel_size + (filters, in)`` is the ``<spatial>IO``
    kernel of the forward conv from ``filters`` to ``in`` channels, which
    ``lax.conv_transpose(..., transpose_kernel=True)`` transposes.
    """
    sp = _SPATIAL[rank]
    lhs = "N" + sp + "C" if data_format == "channels_last" else "NC" + sp
    return (lhs, sp + "IO", lhs)


def _channel_axis(ndim: int, data_format: str) -> int:
    return ndim - 1 if data_format == "channels_last" else 1


def _add_bias(y, bias, data_format):
    if bias is None:
        return y
    shape = [1] * y.ndim
    shape[_channel_axis(y.ndim, data_format)] = -1
    return y + jnp.reshape(bias, shape)


def _spatial_shape(x, data_format):
    return tuple(x.shape[1:-1]) if data_format == "channels_last" else tuple(x.shape[2:])


def _check(fn, x, kernel, data_format, expect_rank=None):
    data_format = validation.data_format(fn, data_format)
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise ValueError(f"{fn}: kernel must have rank 3, 4 or 5 (1-3 spatial axes); got shape {kernel.shape}")
    if expect_rank is not None and rank != expect_rank:
        raise ValueError(f"{fn}: kernel must have rank {expect_rank + 2}; got shape {kernel.shape}")
    if x.ndim != rank + 2:
        raise ValueError(f"{fn}: input must have rank {rank + 2} for a kernel of shape {kernel.shape}; "
                         f"got shape {x.shape}")
    return data_format, rank


def conv(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
         data_format="channels_last"):
    """y[n, o, c_out] = sum_{k, c_in} x[n, o * s + k * d - pad_before, g(c_out) c_in] kernel[k, c_in, c_out] + bias."""
    return _conv("conv", x, kernel, bias, strides, padding, dilation_rate, groups, data_format)


def _conv(_fn, x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank=None):
    """:func:`conv` reporting errors as ``_fn``, checking the kernel's spatial rank when ``rank`` is given."""
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    data_format, rank = _check(_fn, x, kernel, data_format, rank)
    strides = validation.int_tuple(_fn, "strides", strides, rank)
    dilation_rate = validation.int_tuple(_fn, "dilation_rate", dilation_rate, rank)
    groups = validation.positive_int(_fn, "groups", groups)
    cin = x.shape[_channel_axis(x.ndim, data_format)]
    if cin != kernel.shape[-2] * groups:
        raise ValueError(f"{_fn}: input has {cin} channels but kernel expects {kernel.shape[-2] * groups} "
                         f"(kernel shape {tuple(kernel.shape)}, groups={groups})")
    if kernel.shape[-1] % groups:
        raise ValueError(f"{_fn}: filters={kernel.shape[-1]} must be divisible by groups={groups}")
    pads = resolve_padding(_fn, padding, _spatial_shape(x, data_format), kernel.shape[:-2], strides, dilation_rate)
    y = lax.conv_general_dilated(x, kernel, strides, pads, rhs_dilation=dilation_rate,
                                 dimension_numbers=dimension_numbers(rank, data_format), feature_group_count=groups,
                                 precision=lax.Precision.HIGHEST)
    return _add_bias(y, bias, data_format)


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1, data_format="channels_last"):
    """``conv`` with one spatial axis (N W C)."""
    return _conv("conv1d", x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank=1)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1, data_format="channels_last"):
    """``conv`` with two spatial axes (N H W C)."""
    return _conv("conv2d", x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank=2)


def conv3d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1, data_format="channels_last"):
    """``conv`` with three spatial axes (N D H W C)."""
    return _conv("conv3d", x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank=3)


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                     data_format="channels_last"):
    """Each input channel c convolved with its own ``depth_multiplier`` filters; output channel c * m + j.

    The kernel ``(kh, kw, C, m)`` is the grouped conv kernel ``(kh, kw, 1, C * m)`` with ``groups = C``.
    """
    fn = "depthwise_conv2d"
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    if kernel.ndim != 4:
        raise ValueError(f"{fn}: kernel must have rank 4 (kh, kw, in_channels, depth_multiplier); "
                         f"got shape {kernel.shape}")
    cin = kernel.shape[2]
    k = jnp.reshape(kernel, kernel.shape[:2] + (1, cin * kernel.shape[3]))
    return _conv(fn, x, k, bias, strides, padding, dilation_rate, cin, data_format, rank=2)


def conv_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                   data_format="channels_last", *, groups=1):
    """The adjoint (input gradient) of ``conv`` with kernel ``kernel`` read as ``kernel_size + (filters // groups,
    in)``: ``lax.conv_general_dilated`` of the input dilated by ``strides`` (``lhs_dilation``) with the kernel
    flipped and its channel axes swapped per group, ``feature_group_count=groups`` (what ``lax.conv_transpose``
    does, with groups). Output sizes follow Keras, or PyTorch for explicit padding (see
    ``tinygrad_cnn.conv_arithmetic.transpose_padding``).
    """
    fn = "conv_transpose"
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    data_format, rank = _check(fn, x, kernel, data_format)
    strides = validation.int_tuple(fn, "strides", strides, rank)
    dilation_rate = validation.int_tuple(fn, "dilation_rate", dilation_rate, rank)
    groups = validation.positive_int(fn, "groups", groups)
    cin = x.shape[_channel_axis(x.ndim, data_format)]
    if cin != kernel.shape[-1] or cin % groups:
        raise ValueError(f"{fn}: input has {cin} channels but kernel expects {kernel.shape[-1]} in {groups} "
                         f"groups (kernel shape {tuple(kernel.shape)}, layout kernel_size + (filters // groups, "
                         f"in_channels))")
    pads = transpose_padding(fn, _spatial_shape(x, data_format), kernel.shape[:-2], strides, dilation_rate, padding,
                             output_padding)[0]
    ksize, per_group = kernel.shape[:-2], kernel.shape[-2]
    flipped = jnp.flip(kernel, tuple(range(rank))).reshape(ksize + (per_group, groups, cin // groups))
    forward_kernel = jnp.transpose(flipped, tuple(range(rank)) + (rank + 2, rank + 1, rank)).reshape(
        ksize + (cin // groups, per_group * groups))  # [k, ci in group, (group, filter)]
    y = lax.conv_general_dilated(x, forward_kernel, (1,) * rank, pads, lhs_dilation=strides,
                                 rhs_dilation=dilation_rate, dimension_numbers=dimension_numbers(rank, data_format),
                                 feature_group_count=groups, precision=lax.Precision.HIGHEST)
    return _add_bias(y, bias, data_format)
