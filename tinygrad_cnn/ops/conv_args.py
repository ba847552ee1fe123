"""Argument checking and resolution for the conv and pool wrappers in ``tinygrad_cnn.functional``.

Turns user arguments (ints or tuples, padding names, data formats) into the
explicit per-axis tuples the primitives take, raising ``ValueError``/``TypeError``
messages that name the function, the argument, the value and what was expected.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.conv_arithmetic import (
    ConvGeometry,
    PoolGeometry,
    resolve_padding,
    transpose_padding,
)


def spatial_shape(x_shape, data_format: str) -> tuple[int, ...]:
    return tuple(x_shape[1:-1]) if data_format == "channels_last" else tuple(x_shape[2:])


def channels(x_shape, data_format: str) -> int:
    return x_shape[-1] if data_format == "channels_last" else x_shape[1]


def conv_args(fn: str, x_shape, k_shape, strides, padding, dilation_rate, groups, data_format,
              rank=None) -> tuple[str, ConvGeometry]:
    """Check a conv call; return ``(data_format, geometry)``."""
    data_format = validation.data_format(fn, data_format)
    d = len(k_shape) - 2
    if d not in (1, 2, 3):
        raise ValueError(f"{fn}: kernel must have rank 3, 4 or 5 (kernel_size + (in_channels // groups, "
                         f"filters)); got shape {tuple(k_shape)}")
    if rank is not None and d != rank:
        raise ValueError(f"{fn}: kernel must have rank {rank + 2} (kernel_size + (in_channels // groups, "
                         f"filters)); got shape {tuple(k_shape)} (rank {len(k_shape)})")
    validation.rank(fn, "x", x_shape, d + 2)
    groups = validation.positive_int(fn, "groups", groups)
    c_in = channels(x_shape, data_format)
    if c_in % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the input's {c_in} channels (x shape {tuple(x_shape)})")
    if k_shape[-1] % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the kernel's {k_shape[-1]} filters "
                         f"(kernel shape {tuple(k_shape)})")
    if k_shape[-2] * groups != c_in:
        per = f" ({k_shape[-2]} per group x {groups} groups)" if groups > 1 else ""
        raise ValueError(f"{fn}: input has {c_in} channels but kernel expects {k_shape[-2] * groups}{per} "
                         f"(kernel shape {tuple(k_shape)})")
    for n in k_shape[:-2]:
        if n < 1:
            raise ValueError(f"{fn}: kernel_size must be >= 1 on every axis; got kernel shape {tuple(k_shape)}")
    strides = validation.int_tuple(fn, "strides", strides, d)
    dilation = validation.int_tuple(fn, "dilation_rate", dilation_rate, d)
    return data_format, ConvGeometry.resolve(fn, spatial_shape(x_shape, data_format), k_shape[:-2], strides,
                                             padding, dilation, groups)


def conv_transpose_args(fn: str, x_shape, k_shape, strides, padding, output_padding, dilation_rate,
                        data_format, groups=1) -> tuple[str, ConvGeometry, tuple[int, ...]]:
    """Check a transposed conv; return ``(data_format, geometry, out_spatial)``.

    Output sizes as Keras' ``Conv*DTranspose`` (see :func:`tinygrad_cnn.conv_arithmetic.transpose_padding`).
    The result is the adjoint of a conv from that size with pads ``(F_eff-1-left, F_eff-1-right)``,
    where ``(left, right)`` is the padding of the equivalent stride-1 conv over the dilated input.
    """
    data_format = validation.data_format(fn, data_format)
    d = len(k_shape) - 2
    if d not in (1, 2, 3):
        raise ValueError(f"{fn}: kernel must have rank 3, 4 or 5 (kernel_size + (filters // groups, "
                         f"in_channels)); got shape {tuple(k_shape)}")
    validation.rank(fn, "x", x_shape, d + 2)
    groups = validation.positive_int(fn, "groups", groups)
    c_in = channels(x_shape, data_format)
    if c_in % groups:
        raise ValueError(f"{fn}: groups={groups} must divide the input's {c_in} channels (x shape {tuple(x_shape)})")
    if k_shape[-1] != c_in:
        raise ValueError(f"{fn}: input has {c_in} channels but kernel expects {k_shape[-1]} "
                         f"(kernel shape {tuple(k_shape)}, layout kernel_size + (filters, in_channels))")
    strides = validation.int_tuple(fn, "strides", strides, d)
    dilation = validation.int_tuple(fn, "dilation_rate", dilation_rate, d)
    ksize = tuple(k_shape[:-2])
    lax_pads, out = transpose_padding(fn, spatial_shape(x_shape, data_format), ksize, strides, dilation, padding,
                                      output_padding)
    geo = ConvGeometry(ksize, strides, dilation, lax_pads, groups)
    return data_format, geo.with_pads((ke - 1 - left, ke - 1 - right) for ke, (left, right) in
                                      zip(geo.effective_kernel(), lax_pads, strict=True)), out


def pool_args(fn: str, x_shape, pool_size, strides, padding, data_format, dilation_rate=1,
              ceil_mode=False) -> tuple[str, PoolGeometry, tuple[tuple[int, int], ...]]:
    """Check a pooling call; return ``(data_format, geometry, pads)``.

    ``pads`` are the ``(before, after)`` pads ``padding`` names (see :func:`resolve_padding`; explicit amounts
    are accepted); the geometry's pads add, with ``ceil_mode``, the cells after that :func:`ceil_extra` needs.
    Every window must cover at least one real cell.
    """
    data_format = validation.data_format(fn, data_format)
    if len(x_shape) not in (3, 4, 5):
        raise ValueError(f"{fn}: x must have rank 3, 4 or 5 (batch, 1-3 spatial axes, channels); "
                         f"got shape {tuple(x_shape)} (rank {len(x_shape)})")
    d = len(x_shape) - 2
    pool = validation.int_tuple(fn, "pool_size", pool_size, d)
    strides = pool if strides is None else validation.int_tuple(fn, "strides", strides, d)
    dilation = validation.int_tuple(fn, "dilation_rate", dilation_rate, d)
    ceil_mode = validation.boolean(fn, "ceil_mode", ceil_mode)
    spatial = spatial_shape(x_shape, data_format)
    pads = resolve_padding(fn, padding, spatial, pool, strides, dilation, modes=("valid", "same"))
    geo = PoolGeometry(pool, strides, pads, dilation)
    if ceil_mode:
        geo = geo.with_pads((b, a + e) for (b, a), e in zip(pads, ceil_extra(geo, spatial), strict=True))
    padded = any(b or a for b, a in geo.pads)  # without padding every window lies inside the input
    for n, o, s, k, r, (b, _) in zip(spatial, geo.output_size(spatial), strides, pool, dilation, geo.pads,
                                     strict=True):
        if not padded:
            break
        taps = np.arange(o)[:, None] * s + np.arange(k)[None, :] * r - b
        if not ((taps >= 0) & (taps < n)).any(axis=1).all():
            raise ValueError(f"{fn}: padding={padding!r} leaves a window with no input cell (input size {n}, "
                             f"pool_size {k}, strides {s}, dilation_rate {r}); use less padding")
    return data_format, geo, pads


def ceil_extra(geo: PoolGeometry, spatial) -> tuple[int, ...]:
    """The cells ``ceil_mode`` adds after each axis (PyTorch's rule).

    ``O = ceil((W + P - F_eff) / S) + 1``, less one if that last window would start at or after
    ``W + before`` (it must start inside the input or the padding before it); the extra cells make that last
    window fit: ``max((O - 1) S + F_eff - (W + P), 0)``. They take no part in any result (never a maximum,
    never counted by an average).
    """
    extra = []
    for n, s, k, (b, a) in zip(spatial, geo.strides, geo.effective_kernel(), geo.pads, strict=True):
        o = -(-(n + b + a - k) // s) + 1
        if (o - 1) * s >= n + b:
            o -= 1
        extra.append(max((o - 1) * s + k - (n + b + a), 0))
    return tuple(extra)
