"""The functional API (imported as ``F``): activations, losses, dense, dropout, conv and pooling.

The losses live in ``tinygrad_cnn.losses`` and are re-exported here (``F.cross_entropy``, ``F.huber``, ...).

Every function takes and returns Tensors (arrays are accepted and wrapped)
and is differentiable through the engine's primitives.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops, validation
from tinygrad_cnn.ops.random import dropout_mask
from tinygrad_cnn.tensor import Tensor, as_tensor

__all__ = [
    "cross_entropy", "dense", "dropout", "leaky_relu", "log_softmax", "logsumexp", "mse", "relu",
    "sigmoid", "softmax", "softplus", "tanh",
    # losses (tinygrad_cnn.losses)
    "binary_cross_entropy", "hinge", "huber", "kl_div", "mae", "nll_loss",
    # convolution and pooling
    "avg_pool", "conv", "conv1d", "conv2d", "conv3d", "conv_transpose", "depthwise_conv2d", "global_avg_pool",
    "global_max_pool", "lp_pool", "max_pool",
]


def _float_tensor(fn: str, arg: str, x) -> Tensor:
    if not isinstance(x, (Tensor, np.ndarray, list, tuple, int, float)):
        raise TypeError(f"{fn}: {arg} must be a Tensor or an array; got {type(x).__name__}")
    x = as_tensor(x)
    validation.float_array(fn, arg, x.data)
    return x


def relu(x):
    """max(x, 0); relu'(0) = 0."""
    return ops.relu(_float_tensor("relu", "x", x))


def softplus(x):
    """log(1 + e^x) = logaddexp(x, 0); its derivative is the logistic sigmoid."""
    return ops.softplus(_float_tensor("softplus", "x", x))


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return ops.sigmoid(_float_tensor("sigmoid", "x", x))


def tanh(x):
    """(e^x - e^-x) / (e^x + e^-x)."""
    return ops.tanh(_float_tensor("tanh", "x", x))


def leaky_relu(x, negative_slope: float = 0.2):
    """x for x >= 0, negative_slope * x otherwise (Keras' default slope 0.2)."""
    validation.number_in("leaky_relu", "negative_slope", negative_slope, 0.0, float("inf"))
    return ops.leaky_relu(_float_tensor("leaky_relu", "x", x), negative_slope)


def _axis(fn: str, x: Tensor, axis) -> int:
    if not validation.is_int(axis) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{fn}: axis={axis!r} is out of range for an input of shape {x.shape}")
    return int(axis)


def logsumexp(x, axis: int = -1, keepdims: bool = False):
    """log sum_i e^{x_i}, computed as m + log sum_i e^{x_i - m} with m = max x (a constant), so no overflow."""
    x = _float_tensor("logsumexp", "x", x)
    axis = _axis("logsumexp", x, axis)
    m = np.max(x.data, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype)
    out = ops.log(ops.sum(ops.exp(x - m), axis, True)) + m
    return out if keepdims else ops.reshape(out, np.delete(np.array(out.shape), axis % x.ndim))


def log_softmax(x, axis: int = -1, _fn: str = "log_softmax"):
    """x_i - logsumexp(x), computed as s_i - log sum_j e^{s_j} with s = x - max x (a constant).

    Finite for logits of +-1000, and accurate: adding max x back before
    subtracting (x - (m + log sum e^{x - m})) would lose the low bits of the
    result to rounding at |x| ~ 1000 (an error of ~3e-5 in float32).
    """
    x = _float_tensor(_fn, "x", x)
    axis = _axis(_fn, x, axis)
    m = np.max(x.data, axis=axis, keepdims=True)
    shifted = x - np.where(np.isfinite(m), m, 0).astype(x.dtype)
    return shifted - ops.log(ops.sum(ops.exp(shifted), axis, True))


def softmax(x, axis: int = -1):
    """e^{x_i} / sum_j e^{x_j}, computed as exp(log_softmax(x))."""
    return ops.exp(log_softmax(x, axis, _fn="softmax"))


def dense(x, kernel, bias=None):
    """y = x @ kernel + bias, kernel of shape (in, out) as in Keras."""
    x, kernel = _float_tensor("dense", "x", x), _float_tensor("dense", "kernel", kernel)
    validation.rank("dense", "kernel", kernel.shape, 2)
    if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"dense: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but "
                         f"kernel expects {kernel.shape[0]} (kernel shape {kernel.shape})")
    y = x @ kernel
    if bias is not None:
        bias = _float_tensor("dense", "bias", bias)
        if bias.shape != (kernel.shape[1],):
            raise ValueError(f"dense: bias must have shape ({kernel.shape[1]},); got {bias.shape}")
        y = y + bias
    return y


def dropout(x, rate: float, training: bool, seed=None):
    """Inverted dropout: each element is zeroed with probability ``rate`` and the rest scaled by 1/(1-rate).

    Identity when not training. ``rate = 1`` gives zeros and a zero gradient
    (never NaN). ``seed`` (int or numpy Generator) makes the mask reproducible.
    """
    x = _float_tensor("dropout", "x", x)
    rate = validation.number_in("dropout", "rate", rate, 0.0, 1.0)
    training = validation.boolean("dropout", "training", training)
    if not training or rate == 0.0:
        return x
    return x * ops.constant(dropout_mask(x.shape, rate, x.dtype, seed))


# -- convolution and pooling --------------------------------------------------------------------------
# The primitives (tinygrad_cnn.ops.conv, .pool) work channels-last; channels_first inputs are transposed
# in and out. Argument checks live in tinygrad_cnn.ops.conv_args.

def _to_last(x: Tensor, data_format: str) -> Tensor:
    return x if data_format == "channels_last" else ops.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))


def _from_last(y: Tensor, data_format: str) -> Tensor:
    return y if data_format == "channels_last" else ops.transpose(y, (0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))


def _bias(fn: str, bias, filters: int, like: Tensor):
    if bias is None:
        return None
    bias = _float_tensor(fn, "bias", bias)
    if bias.shape != (filters,):
        raise ValueError(f"{fn}: bias must have shape ({filters},) (one per filter); got {bias.shape}")
    return bias


def conv(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
         data_format="channels_last", _fn="conv", _rank=None, _relu=False):
    """N-d convolution (cross-correlation, as Keras and lax.conv_general_dilated), spatial rank = kernel.ndim - 2.

    ``y[n, o, f] = bias[f] + sum_{k, c} xpad[n, o*strides + k*dilation_rate, c] * kernel[k, c, f]`` with
    kernel ``kernel_size + (in_channels // groups, filters)``; with ``groups`` each filter sees only its
    group's channels. Output size per axis: ``floor((W + P - F_eff) / S) + 1`` (see ``conv_arithmetic``).
    ``padding``: ``"valid"``, ``"same"`` (extra pad after), ``"causal"`` (1-D) or explicit ints/pairs.
    Gradients: input by the adjoint conv (conv_transpose), kernel by one GEMM; differentiable to any order.
    (``_relu=True``, used by the layers with ``activation="relu"``, returns ``relu(conv(...))`` from one fused
    primitive.)
    """
    x, kernel = _float_tensor(_fn, "x", x), _float_tensor(_fn, "kernel", kernel)
    from tinygrad_cnn.ops import conv as conv_ops
    from tinygrad_cnn.ops.conv_args import conv_args
    data_format, strides, dilation, pads, groups = conv_args(
        _fn, x.shape, kernel.shape, strides, padding, dilation_rate, groups, data_format, rank=_rank)
    bias = _bias(_fn, bias, kernel.shape[-1], x)
    y = conv_ops.conv(_to_last(x, data_format), kernel, bias, strides=strides, dilation=dilation, pads=pads,
                      groups=groups, relu=_relu)
    return _from_last(y, data_format)


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last"):
    """1-D convolution: :func:`conv` with a kernel of shape ``(width, in_channels // groups, filters)``."""
    return conv(x, kernel, bias, strides, padding, dilation_rate, groups, data_format, _fn="conv1d", _rank=1)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last"):
    """2-D convolution: :func:`conv` with a kernel of shape ``(kh, kw, in_channels // groups, filters)``."""
    return conv(x, kernel, bias, strides, padding, dilation_rate, groups, data_format, _fn="conv2d", _rank=2)


def conv3d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last"):
    """3-D convolution: :func:`conv` with a kernel of shape ``(kd, kh, kw, in_channels // groups, filters)``."""
    return conv(x, kernel, bias, strides, padding, dilation_rate, groups, data_format, _fn="conv3d", _rank=3)


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                     data_format="channels_last"):
    """Each input channel convolved with its own ``depth_multiplier`` filters (Keras' DepthwiseConv2D).

    kernel ``(kh, kw, in_channels, depth_multiplier)``; output channel ``c * depth_multiplier + m``. It is
    :func:`conv` with ``groups = in_channels`` and the kernel reshaped to ``(kh, kw, 1, in_channels * M)``.
    """
    fn = "depthwise_conv2d"
    x, kernel = _float_tensor(fn, "x", x), _float_tensor(fn, "kernel", kernel)
    validation.rank(fn, "kernel", kernel.shape, 4)
    validation.rank(fn, "x", x.shape, 4)
    fmt = validation.data_format(fn, data_format)
    c_in = x.shape[-1] if fmt == "channels_last" else x.shape[1]
    if kernel.shape[2] != c_in:
        raise ValueError(f"{fn}: input has {c_in} channels but kernel expects {kernel.shape[2]} "
                         f"(kernel shape {kernel.shape}, layout (kh, kw, in_channels, depth_multiplier))")
    k = ops.reshape(kernel, kernel.shape[:2] + (1, kernel.shape[2] * kernel.shape[3]))
    return conv(x, k, bias, strides, padding, dilation_rate, c_in, fmt, _fn=fn, _rank=2)


def conv_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                   data_format="channels_last"):
    """Transposed convolution (Keras' Conv1D/2D/3DTranspose): the adjoint of a conv, in its input.

    kernel ``kernel_size + (filters, in_channels)``. Output size per axis (F_eff = r*(F-1)+1):
    ``"valid"``: ``(W-1)*S + F_eff + output_padding`` (default ``max(F_eff, S) - F_eff``);
    ``"same"``: ``W*S`` (no output_padding) or ``(W-1)*S + F_eff % 2 + output_padding``.
    ``output_padding`` must be smaller than ``strides``.
    """
    fn = "conv_transpose"
    x, kernel = _float_tensor(fn, "x", x), _float_tensor(fn, "kernel", kernel)
    from tinygrad_cnn.ops import conv as conv_ops
    from tinygrad_cnn.ops.conv_args import conv_transpose_args
    data_format, strides, dilation, pads, out = conv_transpose_args(
        fn, x.shape, kernel.shape, strides, padding, output_padding, dilation_rate, data_format)
    xl = _to_last(x, data_format)
    y = conv_ops.conv_transpose(xl, kernel, (x.shape[0],) + out + (kernel.shape[-2],), strides=strides,
                                dilation=dilation, pads=pads)
    bias = _bias(fn, bias, kernel.shape[-2], x)
    if bias is not None:
        y = y + bias
    return _from_last(y, data_format)


def _pool(fn, x, pool_size, strides, padding, data_format):
    from tinygrad_cnn.ops.conv_args import pool_args
    from tinygrad_cnn.ops.pool import pool_geometry
    x = _float_tensor(fn, "x", x)
    data_format, pool, strides, pads = pool_args(fn, x.shape, pool_size, strides, padding, data_format)
    return x, data_format, pool_geometry(pool, strides, pads)


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    """Maximum over each window (1-3 spatial axes, by x.ndim - 2); ``strides`` defaults to ``pool_size``.

    ``"same"`` pads so the output has ``ceil(W / S)`` cells; padded cells never win. Gradient: the whole
    window's cotangent goes to its first maximum in row-major window order (as jax.grad of
    lax.reduce_window max; a window of equal values sends it all to its first cell).
    """
    from tinygrad_cnn.ops.pool import max_pool as max_pool_op
    x, fmt, geo = _pool("max_pool", x, pool_size, strides, padding, data_format)
    return _from_last(max_pool_op(_to_last(x, fmt), geo), fmt)


def avg_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    """Mean over each window; with ``"same"`` a border window divides by the real cells it covers (as Keras)."""
    from tinygrad_cnn.ops.pool import window_counts, window_sum_op
    x, fmt, geo = _pool("avg_pool", x, pool_size, strides, padding, data_format)
    xl = _to_last(x, fmt)
    sums = window_sum_op(xl, geo)
    if any(b or a for b, a in geo["pads"]):
        scale = ops.constant((1.0 / window_counts(xl.shape[1:-1], geo, np.float64)).astype(x.dtype))
    else:
        scale = 1.0 / float(np.prod(geo["pool"]))
    return _from_last(sums * scale, fmt)


def lp_pool(x, pool_size, strides=None, padding="valid", p=2, data_format="channels_last"):
    """Lp-norm pooling: ``(sum over the window of |x|^p)^(1/p)``; p=2 is L2-norm pooling.

    Padded cells count as 0. An all-zero window has output 0 and gradient 0 (never NaN). ``p >= 1``.
    """
    from tinygrad_cnn.ops.pool import safe_root, window_sum_op
    x, fmt, geo = _pool("lp_pool", x, pool_size, strides, padding, data_format)
    p = validation.number_in("lp_pool", "p", p, 1.0, float("inf"), high_open=True)
    xl = _to_last(x, fmt)
    powered = xl * xl if p == 2 else ops.pow(ops.abs(xl), p)
    return _from_last(safe_root(window_sum_op(powered, geo), p), fmt)


def _spatial_axes(fn: str, x: Tensor, data_format: str) -> tuple[int, ...]:
    fmt = validation.data_format(fn, data_format)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{fn}: x must have rank 3, 4 or 5 (batch, 1-3 spatial axes, channels); got shape "
                         f"{x.shape} (rank {x.ndim})")
    return tuple(range(1, x.ndim - 1)) if fmt == "channels_last" else tuple(range(2, x.ndim))


def global_max_pool(x, data_format="channels_last", keepdims=False):
    """Maximum over all spatial axes; ties share the gradient evenly (as jnp.max)."""
    x = _float_tensor("global_max_pool", "x", x)
    return ops.max(x, _spatial_axes("global_max_pool", x, data_format), keepdims=bool(keepdims))


def global_avg_pool(x, data_format="channels_last", keepdims=False):
    """Mean over all spatial axes."""
    x = _float_tensor("global_avg_pool", "x", x)
    return ops.mean(x, _spatial_axes("global_avg_pool", x, data_format), keepdims=bool(keepdims))


# the losses use _float_tensor and log_softmax from above, so they are imported last
from tinygrad_cnn.losses import (  # noqa: E402
    binary_cross_entropy,
    cross_entropy,
    hinge,
    huber,
    kl_div,
    mae,
    mse,
    nll_loss,
)
