"""The functional API (imported as ``F``): activations, losses, dense, dropout, conv and pooling.

The losses live in ``tinygrad_cnn.losses`` and the softmax family in ``tinygrad_cnn.softmax``; both are
re-exported here (``F.cross_entropy``, ``F.huber``, ...).

Every function takes and returns Tensors (arrays are accepted and wrapped)
and is differentiable through the engine's primitives.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import ops, validation
from tinygrad_cnn.conv_arithmetic import PoolGeometry, adaptive_windows, explicit_pads
from tinygrad_cnn.losses import (
    binary_cross_entropy,
    cross_entropy,
    hinge,
    huber,
    kl_div,
    mae,
    mse,
    nll_loss,
)
from tinygrad_cnn.ops import conv as conv_ops
from tinygrad_cnn.ops.conv import tap_slices
from tinygrad_cnn.ops.conv_args import channels, conv_args, conv_transpose_args, pool_args, spatial_shape
from tinygrad_cnn.ops.pool import MaxPool, flat_indices, safe_root, window_counts, window_sum
from tinygrad_cnn.ops.pool import max_pool as max_pool_op
from tinygrad_cnn.ops.pool import max_unpool as max_unpool_op
from tinygrad_cnn.ops.random import dropout_mask
from tinygrad_cnn.softmax import log_softmax, logsumexp, softmax
from tinygrad_cnn.tensor import Tensor, as_float_tensor, as_tensor

__all__ = [
    "cross_entropy", "dense", "dropout", "leaky_relu", "log_softmax", "logsumexp", "mse", "relu",
    "sigmoid", "softmax", "softplus", "tanh",
    # more activations
    "celu", "elu", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "mish", "prelu", "relu6", "selu",
    "silu", "softsign", "swish",
    # losses (tinygrad_cnn.losses)
    "binary_cross_entropy", "hinge", "huber", "kl_div", "mae", "nll_loss",
    # convolution and pooling
    "avg_pool", "conv", "conv1d", "conv2d", "conv3d", "conv_transpose", "depthwise_conv2d", "global_avg_pool",
    "global_max_pool", "lp_pool", "max_pool",
    "adaptive_avg_pool", "adaptive_max_pool", "max_unpool",
    # resampling
    "resize",
]


def relu(x):
    """max(x, 0); relu'(0) = 0 (as ``jax.nn.relu``).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.relu(as_float_tensor("relu", "x", x))


def softplus(x):
    """softplus(x) = log(1 + e^x), computed as logaddexp(x, 0) = max(x, 0) + log1p(e^-|x|) (finite for
    |x| = 1000); its derivative is the logistic sigmoid.

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.softplus(as_float_tensor("softplus", "x", x))


def sigmoid(x):
    """1 / (1 + e^-x) (e^x / (1 + e^x) for x < 0: no overflow); vjp: g y (1 - y).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.sigmoid(as_float_tensor("sigmoid", "x", x))


def tanh(x):
    """(e^x - e^-x) / (e^x + e^-x); vjp: g (1 - y)(1 + y).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.tanh(as_float_tensor("tanh", "x", x))


def leaky_relu(x, negative_slope: float = 0.2):
    """x for x >= 0, negative_slope * x otherwise (Keras' default slope 0.2); slope 1 at x = 0 (as JAX).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
        negative_slope: float >= 0, default 0.2 (Keras' default): the slope s for x < 0.
    """
    validation.number_in("leaky_relu", "negative_slope", negative_slope, 0.0, float("inf"))
    return ops.leaky_relu(as_float_tensor("leaky_relu", "x", x), negative_slope)


def gelu(x, approximate: bool = False):
    """x Phi(x) (Phi the standard normal CDF) = x/2 erfc(-x/sqrt 2); with ``approximate=True`` the tanh form
    x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). The default is exact, as Keras' and PyTorch's gelu
    (``jax.nn.gelu`` defaults to the tanh form).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
        approximate: bool, default False: the exact erfc form; True the tanh form.
    """
    approximate = validation.boolean("gelu", "approximate", approximate)
    return ops.gelu(as_float_tensor("gelu", "x", x), approximate)


def silu(x):
    """x sigmoid(x).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.silu(as_float_tensor("silu", "x", x))


def swish(x):
    """x sigmoid(x) (Keras' other name for silu).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.silu(as_float_tensor("swish", "x", x))


def elu(x, alpha: float = 1.0):
    """x for x > 0, alpha (e^x - 1) otherwise; elu'(0) = alpha.

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
        alpha: float, default 1.0: the negative branch saturates at -alpha.
    """
    alpha = validation.number_in("elu", "alpha", alpha, -float("inf"), float("inf"))
    return ops.elu(as_float_tensor("elu", "x", x), alpha)


def selu(x):
    """scale * elu(x, alpha), alpha = 1.67326324..., scale = 1.05070098... (self-normalizing constants).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.selu(as_float_tensor("selu", "x", x))


def celu(x, alpha: float = 1.0):
    """x for x > 0, alpha (e^{x/alpha} - 1) otherwise; alpha > 0; celu'(0) = 1 (as JAX).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
        alpha: float > 0, default 1.0: the negative branch's scale (it saturates at -alpha).
    """
    alpha = validation.number_in("celu", "alpha", alpha, 0.0, float("inf"))
    if alpha == 0.0:
        raise ValueError("celu: alpha must be > 0 (x is divided by it); got 0.0")
    return ops.celu(as_float_tensor("celu", "x", x), alpha)


def softsign(x):
    """x / (1 + |x|); derivative 1 / (1 + |x|)^2.

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.softsign(as_float_tensor("softsign", "x", x))


def hard_sigmoid(x):
    """relu6(x + 3) / 6 (Keras 3's definition; Keras 2 used clip(0.2 x + 0.5, 0, 1)); gradient 0 at x = +-3
    (as JAX).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.hard_sigmoid(as_float_tensor("hard_sigmoid", "x", x))


def hard_silu(x):
    """x hard_sigmoid(x) = x relu6(x + 3) / 6; gradient 0 at x = -3 and 1 at x = 3 (as JAX).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.hard_silu(as_float_tensor("hard_silu", "x", x))


def hard_swish(x):
    """x hard_sigmoid(x) (Keras' other name for hard_silu).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.hard_silu(as_float_tensor("hard_swish", "x", x))


def mish(x):
    """x tanh(softplus(x)), softplus = logaddexp(x, 0).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.mish(as_float_tensor("mish", "x", x))


def relu6(x):
    """min(max(x, 0), 6); relu6'(0) = relu6'(6) = 0.

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.relu6(as_float_tensor("relu6", "x", x))


def log_sigmoid(x):
    """log sigmoid(x) = -softplus(-x), finite for |x| = 1000.

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
    """
    return ops.log_sigmoid(as_float_tensor("log_sigmoid", "x", x))


def prelu(x, alpha):
    """x for x >= 0, alpha x otherwise; ``alpha`` (a Tensor, array or number) broadcasts against x and gets a
    gradient when it requires one (PReLU's learned slopes). The output has x's shape; the slope at x = 0 is 1
    (the x >= 0 side, as ``jax.nn.leaky_relu``).

    Args:
        x: Tensor or array-like of any shape, floating dtype (an array is wrapped; an integer one is refused).
        alpha: Tensor, array or number of slopes for x < 0 that broadcasts to x's shape (e.g. one per channel).
    """
    x = as_float_tensor("prelu", "x", x)
    alpha = as_tensor(alpha, like=x) if isinstance(alpha, (int, float)) else as_float_tensor("prelu", "alpha", alpha)
    try:
        shape = np.broadcast_shapes(x.shape, alpha.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"prelu: alpha with shape {alpha.shape} must broadcast to x's shape {x.shape} (NumPy's "
                         f"rule, without growing x)")
    return ops.prelu(x, alpha)


def dense(x, kernel, bias=None):
    """y = x @ kernel + bias, kernel of shape (in, out) as in Keras.

    Args:
        x: ``(..., in)``.
        kernel: ``(in, out)``.
        bias: ``(out,)`` or None (default).

    Returns:
        A Tensor ``(..., out)``.

    Raises:
        ValueError: ``x``'s last axis does not match ``kernel``'s first.
    """
    x, kernel = as_float_tensor("dense", "x", x), as_float_tensor("dense", "kernel", kernel)
    validation.rank("dense", "kernel", kernel.shape, 2)
    if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"dense: input has {x.shape[-1] if x.ndim else 0} features (shape {x.shape}) but "
                         f"kernel expects {kernel.shape[0]} (kernel shape {kernel.shape})")
    y = x @ kernel
    if bias is not None:
        bias = as_float_tensor("dense", "bias", bias)
        if bias.shape != (kernel.shape[1],):
            raise ValueError(f"dense: bias must have shape ({kernel.shape[1]},); got {bias.shape}")
        y = y + bias
    return y


def dropout(x, rate: float, training: bool, seed=None):
    """Inverted dropout: each element is zeroed with probability ``rate`` and the rest scaled by 1/(1-rate).

    Identity when not training. ``rate = 1`` gives zeros and a zero gradient
    (never NaN). ``seed`` (int or numpy Generator) makes the mask reproducible.

    Args:
        x: any shape.
        rate: float in [0, 1], the drop probability.
        training: bool: False returns ``x`` unchanged.
        seed: int, ``numpy.random.Generator`` or None (default: after ``nn.set_random_seed``, reproducible).

    Returns:
        A Tensor shaped like ``x``; the gradient is the mask / (1 - rate).
    """
    x = as_float_tensor("dropout", "x", x)
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
    bias = as_float_tensor(fn, "bias", bias)
    if bias.shape != (filters,):
        raise ValueError(f"{fn}: bias must have shape ({filters},) (one per filter); got {bias.shape}")
    return bias


def conv(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
         data_format="channels_last"):
    """N-d convolution (cross-correlation, as Keras and lax.conv_general_dilated), spatial rank = kernel.ndim - 2.

    ``y[n, o, f] = bias[f] + sum_{k, c} xpad[n, o*strides + k*dilation_rate, c] * kernel[k, c, f]`` with
    kernel ``kernel_size + (in_channels // groups, filters)``; with ``groups`` each filter sees only its
    group's channels. Output size per axis: ``floor((W + P - F_eff) / S) + 1`` (see ``conv_arithmetic``).
    ``padding``: ``"valid"``, ``"same"`` (extra pad after), ``"causal"`` (1-D) or explicit ints/pairs.
    Gradients: input by the adjoint conv (conv_transpose), kernel by one GEMM; differentiable to any order.

    Args:
        x: input ``(batch, *spatial, in_channels)`` (``channels_last``) or ``(batch, in_channels, *spatial)``;
            a Tensor or an array.
        kernel: ``kernel_size + (in_channels // groups, filters)``.
        bias: ``(filters,)`` or None (default).
        strides: int or one int per spatial axis, default 1.
        padding: ``"valid"`` (default), ``"same"``, ``"causal"`` (1-D) or explicit ints/``(before, after)`` pairs.
        dilation_rate: int or one per spatial axis, default 1.
        groups: positive int dividing both channel counts, default 1.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Returns:
        A Tensor ``(batch, *out_spatial, filters)`` (or channels first).

    Raises:
        ValueError: shapes that do not fit (the message names the argument and both shapes).
    """
    return _conv("conv", x, kernel, bias, strides, padding, dilation_rate, groups, data_format)


def _conv(fn, x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
          data_format="channels_last", rank=None, relu=False):
    """:func:`conv` reporting errors as ``fn`` and, when ``rank`` is given, checking the kernel's spatial rank.

    ``relu=True`` (what the layers with ``activation="relu"`` run) returns ``relu(conv(...))`` from one
    fused primitive.
    """
    x, kernel = as_float_tensor(fn, "x", x), as_float_tensor(fn, "kernel", kernel)
    data_format, geo = conv_args(fn, x.shape, kernel.shape, strides, padding, dilation_rate, groups, data_format,
                                 rank=rank)
    bias = _bias(fn, bias, kernel.shape[-1], x)
    return _from_last(conv_ops.conv(_to_last(x, data_format), kernel, bias, geo=geo, relu=relu), data_format)


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last"):
    """1-D convolution: :func:`conv` with a kernel of shape ``(width, in_channels // groups, filters)``.

    Args:
        x, kernel, bias, strides, padding, dilation_rate, groups, data_format: as :func:`conv`, with
            1 spatial axis.

    Raises:
        ValueError: a kernel of another rank, or shapes that do not fit.
    """
    return _conv("conv1d", x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank=1)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last"):
    """2-D convolution: :func:`conv` with a kernel of shape ``(kh, kw, in_channels // groups, filters)``.

    Args:
        x, kernel, bias, strides, padding, dilation_rate, groups, data_format: as :func:`conv`, with
            2 spatial axises.

    Raises:
        ValueError: a kernel of another rank, or shapes that do not fit.
    """
    return _conv("conv2d", x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank=2)


def conv3d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last"):
    """3-D convolution: :func:`conv` with a kernel of shape ``(kd, kh, kw, in_channels // groups, filters)``.

    Args:
        x, kernel, bias, strides, padding, dilation_rate, groups, data_format: as :func:`conv`, with
            3 spatial axises.

    Raises:
        ValueError: a kernel of another rank, or shapes that do not fit.
    """
    return _conv("conv3d", x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank=3)


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                     data_format="channels_last"):
    """Each input channel convolved with its own ``depth_multiplier`` filters (Keras' DepthwiseConv2D).

    kernel ``(kh, kw, in_channels, depth_multiplier)``; output channel ``c * depth_multiplier + m``. It is
    :func:`conv` with ``groups = in_channels`` and the kernel reshaped to ``(kh, kw, 1, in_channels * M)``.

    Args:
        x: ``(batch, H, W, in_channels)`` (``channels_last``) or channels first.
        kernel: ``(kh, kw, in_channels, depth_multiplier)``.
        bias: ``(in_channels * depth_multiplier,)`` or None (default).
        strides, padding, dilation_rate, data_format: as :func:`conv`.
    """
    return _depthwise_conv("depthwise_conv2d", x, kernel, bias, strides, padding, dilation_rate, data_format, rank=2)


def _depthwise_conv(fn, x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                    data_format="channels_last", rank=2):
    """The depthwise conv of spatial rank ``rank`` (kernel ``kernel_size + (in_channels, depth_multiplier)``),
    reporting errors as ``fn``: :func:`conv` with ``groups = in_channels`` and the kernel reshaped to
    ``kernel_size + (1, in_channels * depth_multiplier)``."""
    x, kernel = as_float_tensor(fn, "x", x), as_float_tensor(fn, "kernel", kernel)
    validation.rank(fn, "kernel", kernel.shape, rank + 2)
    validation.rank(fn, "x", x.shape, rank + 2)
    fmt = validation.data_format(fn, data_format)
    c_in = x.shape[-1] if fmt == "channels_last" else x.shape[1]
    if kernel.shape[-2] != c_in:
        raise ValueError(f"{fn}: input has {c_in} channels but kernel expects {kernel.shape[-2]} "
                         f"(kernel shape {kernel.shape}, layout kernel_size + (in_channels, depth_multiplier))")
    k = ops.reshape(kernel, kernel.shape[:-2] + (1, kernel.shape[-2] * kernel.shape[-1]))
    return _conv(fn, x, k, bias, strides, padding, dilation_rate, c_in, fmt, rank=rank)


def conv_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                   data_format="channels_last", *, groups=1):
    """Transposed convolution (Keras' Conv1D/2D/3DTranspose): the adjoint of a conv, in its input.

    kernel ``kernel_size + (filters, in_channels)``. Output size per axis (F_eff = r*(F-1)+1):
    ``"valid"``: ``(W-1)*S + F_eff + output_padding`` (default ``max(F_eff, S) - F_eff``);
    ``"same"``: ``W*S`` (no output_padding) or ``(W-1)*S + F_eff % 2 + output_padding``.
    Explicit ``padding`` (ints or ``(before, after)`` pairs per axis, PyTorch's meaning: cells cut from each
    side of the full output): ``(W-1)*S + F_eff - before - after + output_padding`` (default 0).
    ``output_padding`` must be smaller than ``strides``. ``groups``: kernel ``kernel_size + (filters //
    groups, in_channels)``, the adjoint of a grouped conv from ``filters`` to ``in_channels`` channels.

    Args:
        x: ``(batch, *spatial, in_channels)`` (``channels_last``) or channels first.
        kernel: ``kernel_size + (filters // groups, in_channels)``.
        bias: ``(filters,)`` or None (default).
        strides: int or one per spatial axis, default 1.
        padding: ``"valid"`` (default), ``"same"`` or explicit ints/pairs (see above).
        output_padding: None (default) or an int / one per axis, each smaller than its stride.
        dilation_rate: int or one per axis, default 1.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        groups: keyword-only int, default 1.

    Returns:
        A Tensor ``(batch, *out_spatial, filters)`` (or channels first).
    """
    fn = "conv_transpose"
    x, kernel = as_float_tensor(fn, "x", x), as_float_tensor(fn, "kernel", kernel)
    data_format, geo, out = conv_transpose_args(
        fn, x.shape, kernel.shape, strides, padding, output_padding, dilation_rate, data_format, groups)
    filters = kernel.shape[-2] * geo.groups
    y = conv_ops.conv_transpose(_to_last(x, data_format), kernel, (x.shape[0],) + out + (filters,), geo=geo)
    bias = _bias(fn, bias, filters, x)
    if bias is not None:
        y = y + bias
    return _from_last(y, data_format)


def _pool(fn, x, pool_size, strides, padding, data_format, dilation_rate=1, ceil_mode=False):
    x = as_float_tensor(fn, "x", x)
    data_format, geo, pads = pool_args(fn, x.shape, pool_size, strides, padding, data_format, dilation_rate,
                                       ceil_mode)
    return x, data_format, geo, pads


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last", *, dilation_rate=1,
             ceil_mode=False, return_indices=False):
    """Maximum over each window (1-3 spatial axes, by x.ndim - 2); ``strides`` defaults to ``pool_size``.

    ``y[n, o, c] = max_k xpad[n, o*strides + k*dilation_rate, c]``. ``padding``: ``"valid"``, ``"same"`` (pads so
    the output has ``ceil(W / S)`` cells) or explicit ints/pairs per spatial axis; padded cells are -inf and
    never win. ``ceil_mode``: PyTorch's rule (see ``conv_args.ceil_extra``). Gradient: the whole window's
    cotangent goes to its first maximum in row-major window order (as jax.grad of lax.reduce_window max; a
    window of equal values sends it all to its first cell). ``return_indices=True`` also returns, as an int64
    Tensor shaped like ``y``, each window's first maximum as a flat row-major index over the input's spatial
    axes (PyTorch's convention, per batch element and channel), for :func:`max_unpool`.

    Args:
        x: input ``(batch, *spatial, channels)`` (``channels_last``) or channels first, 1-3 spatial axes.
        pool_size: int or one int per spatial axis: the window P.
        strides: int, tuple or None (default: ``pool_size``).
        padding: ``"valid"`` (default), ``"same"`` or explicit ints/``(before, after)`` pairs.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        dilation_rate: keyword-only, default 1: gap between window taps.
        ceil_mode: keyword-only bool, default False: PyTorch's rounding up of the output size.
        return_indices: keyword-only bool, default False: also return the argmax indices.

    Returns:
        ``y`` with each spatial size ``floor((W + pads - P_eff) / S) + 1``, or ``(y, indices)``.
    """
    x, fmt, geo, _ = _pool("max_pool", x, pool_size, strides, padding, data_format, dilation_rate, ceil_mode)
    xl = _to_last(x, fmt)
    y = _from_last(max_pool_op(xl, geo), fmt)
    if not validation.boolean("max_pool", "return_indices", return_indices):
        return y
    flat = flat_indices(MaxPool.kink_state(xl.data, geo), geo, xl.shape)
    return y, _from_last(Tensor(flat), fmt)


def max_unpool(x, indices, pool_size, strides=None, padding="valid", data_format="channels_last",
               output_size=None):
    """The partial inverse of :func:`max_pool`: zeros except ``y[n, indices[n, o, c], c] = x[n, o, c]``.

    ``indices`` are :func:`max_pool`'s (``return_indices=True``): flat row-major indices over the output's
    spatial axes. Output spatial size: ``output_size`` (spatial sizes only) or, per axis,
    ``(W - 1) * strides - before - after + pool_size`` (PyTorch's default). Where several inputs name the same
    cell (overlapping windows) the last one in row-major order is kept, as PyTorch's CPU loop does.
    Gradient: ``dx[n, o, c] = g[n, indices[n, o, c], c]`` for the kept elements, 0 for the others.

    Args:
        x: pooled values ``(batch, *spatial, channels)`` (``channels_last``) or channels first.
        indices: int array or Tensor shaped like x, from ``max_pool(..., return_indices=True)``.
        pool_size: int or one int per spatial axis, the window the pool used.
        strides: int, tuple or None (default: ``pool_size``).
        padding: ``"valid"`` (default) or explicit ints/``(before, after)`` pairs, as the pool used.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        output_size: None (default: the formula above) or the output's spatial sizes.
    """
    fn = "max_unpool"
    x = as_float_tensor(fn, "x", x)
    fmt = validation.data_format(fn, data_format)
    validation.rank(fn, "x", x.shape, (3, 4, 5))
    d = x.ndim - 2
    pool = validation.int_tuple(fn, "pool_size", pool_size, d)
    strides = pool if strides is None else validation.int_tuple(fn, "strides", strides, d)
    pads = ((0, 0),) * d if padding == "valid" else explicit_pads(fn, padding, d)
    if pads is None:
        raise ValueError(f"{fn}: padding={padding!r} must be 'valid' or explicit ints/pairs (the pool's padding)")
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.shape != x.shape or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{fn}: indices must be integers shaped like x {x.shape}; got {idx.dtype} {idx.shape}")
    if output_size is None:
        size = tuple((n - 1) * s - b - a + k for n, s, k, (b, a) in
                     zip(spatial_shape(x.shape, fmt), strides, pool, pads, strict=True))
    else:
        size = validation.int_tuple(fn, "output_size", output_size, d)
    cells = int(np.prod(size))
    if idx.size and (idx.min() < 0 or idx.max() >= cells):
        raise ValueError(f"{fn}: indices must lie in [0, {cells}) for an output of spatial size {size}; got "
                         f"values in [{idx.min()}, {idx.max()}]")
    xl, il = _to_last(x, fmt), idx if fmt == "channels_last" else np.moveaxis(idx, 1, -1)
    out_shape = (x.shape[0],) + size + (channels(x.shape, fmt),)
    return _from_last(max_unpool_op(xl, il, out_shape), fmt)


def avg_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last", *, dilation_rate=1,
             ceil_mode=False, count_include_pad=False):
    """Mean over each window: ``y[n, o, c] = sum_k xpad[n, o*strides + k*dilation_rate, c] / count[o]``.

    ``count[o]``: the window's real cells (``count_include_pad=False``, Keras' ``"same"``), or with
    ``count_include_pad=True`` its cells inside the input and the ``padding`` (PyTorch's default; the cells
    ``ceil_mode`` adds are never counted). ``padding``/``ceil_mode`` as :func:`max_pool`.
    The gradient sends ``g[o] / count[o]`` to every cell of window o.

    Args:
        x, pool_size, strides, padding, data_format, dilation_rate, ceil_mode: as :func:`max_pool`.
        count_include_pad: keyword-only bool, default False (see above).

    Returns:
        The pooled Tensor, sizes as :func:`max_pool`.
    """
    x, fmt, geo, pads = _pool("avg_pool", x, pool_size, strides, padding, data_format, dilation_rate, ceil_mode)
    include = validation.boolean("avg_pool", "count_include_pad", count_include_pad)
    xl = _to_last(x, fmt)
    sums = window_sum(xl, geo)
    if any(b or a for b, a in geo.pads) or any(r > 1 for r in geo.dilation):
        spatial, counted = xl.shape[1:-1], geo
        if include:  # count the named padding as cells: only the ceil_mode cells stay uncounted
            spatial = tuple(n + b + a for n, (b, a) in zip(spatial, pads, strict=True))
            counted = PoolGeometry(geo.pool, geo.strides, tuple((0, ga - a) for (_, ga), (_, a) in
                                                                zip(geo.pads, pads, strict=True)), geo.dilation)
        scale = ops.constant((1.0 / window_counts(spatial, counted, np.float64)).astype(x.dtype))
    else:
        scale = 1.0 / float(np.prod(geo.pool))
    return _from_last(sums * scale, fmt)


def lp_pool(x, pool_size, strides=None, padding="valid", p=2, data_format="channels_last", *, dilation_rate=1,
            ceil_mode=False):
    """Lp-norm pooling: ``(sum over the window of |x|^p)^(1/p)``; p=2 is L2-norm pooling.

    Padded cells count as 0. An all-zero window has output 0 and gradient 0 (never NaN). ``p >= 1``.
    ``padding``/``dilation_rate``/``ceil_mode`` as :func:`max_pool`.

    Args:
        x, pool_size, strides, padding, data_format, dilation_rate, ceil_mode: as :func:`max_pool`.
        p: number >= 1, default 2.
    """
    x, fmt, geo, _ = _pool("lp_pool", x, pool_size, strides, padding, data_format, dilation_rate, ceil_mode)
    p = validation.number_in("lp_pool", "p", p, 1.0, float("inf"), high_open=True)
    xl = _to_last(x, fmt)
    if _powers_out_of_range(xl.data, p, geo):
        return _from_last(_lp_pool_scaled(xl, geo, p), fmt)
    powered = xl * xl if p == 2 else ops.pow(ops.abs(xl), p)
    return _from_last(safe_root(window_sum(powered, geo), p), fmt)


def _powers_out_of_range(x: np.ndarray, p: float, geo) -> bool:
    """Whether a window sum of ``|x|^p`` could overflow (the largest power times the window size) or a nonzero
    ``|x|^p`` underflow to (nearly) 0 in ``x``'s dtype: then :func:`lp_pool` scales each window first."""
    a = np.abs(x[np.isfinite(x)])
    a = a[a > 0]
    if not a.size:
        return False
    info = np.finfo(x.dtype)
    log_max = p * np.log(float(a.max())) + np.log(float(np.prod(geo.pool)))
    return bool(log_max > np.log(float(info.max)) or p * np.log(float(a.min())) < np.log(float(info.tiny)))


def _lp_pool_scaled(xl: Tensor, geo, p: float) -> Tensor:
    """Lp pooling without overflow or underflow for any ``p``: ``M (sum_k (|x_k| / M)^p)^(1/p)`` with M the
    window's largest |x| (a constant: the identity holds for any M > 0, so the gradient is exact), the sum taken
    one window tap at a time (a differentiable strided slice of the padded input per tap)."""
    xp = ops.abs(ops.pad(xl, ((0, 0),) + tuple(geo.pads) + ((0, 0),)))
    out = geo.output_size(xl.shape[1:-1])
    taps = [xp[index] for _, index in tap_slices(out, geo.pool, geo.strides, geo.dilation)]
    m = np.max(np.stack([t.data for t in taps]), axis=0)
    m = np.where(m > 0, m, 1).astype(xl.dtype)
    inv = ops.constant(1 / m)
    total = ops.pow(taps[0] * inv, p)
    for t in taps[1:]:
        total = total + ops.pow(t * inv, p)
    return safe_root(total, p) * ops.constant(m)


def _adaptive(fn, x, output_size, data_format):
    x = as_float_tensor(fn, "x", x)
    fmt = validation.data_format(fn, data_format)
    validation.rank(fn, "x", x.shape, (3, 4, 5))
    return x, fmt, validation.int_tuple(fn, "output_size", output_size, x.ndim - 2)


def adaptive_avg_pool(x, output_size, data_format="channels_last"):
    """Mean over PyTorch's adaptive windows: along each spatial axis of ``W`` cells, output cell ``i`` of
    ``output_size`` averages cells ``[floor(i W / out), ceil((i + 1) W / out))`` (windows may differ in size
    and overlap). Separable: one averaging matrix ``A`` (``out x W``) per axis, ``y = A`` applied along each
    axis in turn (the mean over a box is the product of the per-axis means); gradient ``A^T g`` per axis.

    Args:
        x: ``(batch, *spatial, channels)`` (``channels_last``) or channels first.
        output_size: int or one int per spatial axis.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Returns:
        A Tensor ``(batch, *output_size, channels)`` (or channels first).
    """
    x, fmt, out = _adaptive("adaptive_avg_pool", x, output_size, data_format)
    y = _to_last(x, fmt)
    for i, m in enumerate(out):
        axis, n = 1 + i, y.shape[1 + i]
        starts, ends = adaptive_windows(n, m)
        cells = np.arange(n)
        a = ((cells >= starts[:, None]) & (cells < ends[:, None])) / (ends - starts)[:, None]
        perm = tuple(j for j in range(y.ndim) if j != axis) + (axis,)
        moved = ops.transpose(y, perm) @ ops.constant(a.T.astype(x.dtype))
        y = ops.transpose(moved, tuple(np.argsort(perm)))
    return _from_last(y, fmt)


def adaptive_max_pool(x, output_size, data_format="channels_last"):
    """Maximum over PyTorch's adaptive windows (see :func:`adaptive_avg_pool`).

    Separable, one axis at a time: the window's cells are gathered into ``K = max window length`` taps (a
    shorter window repeats its last cell) and a max pool of ``K`` taps with stride ``K`` takes their maximum.
    The max over a box is the max over its rows of the row maxima, and the first maximum of the last axis in
    the first row holding the maximum is the box's first maximum in row-major order: the gradient goes to
    it, as :func:`max_pool`.

    Args:
        x: input ``(batch, *spatial, channels)`` (``channels_last``) or channels first.
        output_size: int or one int per spatial axis: the output's spatial sizes.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Returns:
        A Tensor ``(batch, *output_size, channels)`` (or channels first).
    """
    x, fmt, out = _adaptive("adaptive_max_pool", x, output_size, data_format)
    y = _to_last(x, fmt)
    d = len(out)
    for i, m in enumerate(out):
        starts, ends = adaptive_windows(y.shape[1 + i], m)
        k = int((ends - starts).max())
        taps = np.minimum(starts[:, None] + np.arange(k), ends[:, None] - 1).ravel()
        y = ops.getitem(y, (slice(None),) * (1 + i) + (taps,))
        pool = tuple(k if j == i else 1 for j in range(d))
        y = max_pool_op(y, PoolGeometry(pool, pool, ((0, 0),) * d))
    return _from_last(y, fmt)


def _spatial_axes(fn: str, x: Tensor, data_format: str) -> tuple[int, ...]:
    fmt = validation.data_format(fn, data_format)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{fn}: x must have rank 3, 4 or 5 (batch, 1-3 spatial axes, channels); got shape "
                         f"{x.shape} (rank {x.ndim})")
    return tuple(range(1, x.ndim - 1)) if fmt == "channels_last" else tuple(range(2, x.ndim))


def global_max_pool(x, data_format="channels_last", keepdims=False):
    """Maximum over all spatial axes, ``y[b, c] = max_s x[b, s, c]``; ties share the gradient evenly (as jnp.max).

    Args:
        x: input ``(batch, *spatial, channels)`` (``channels_last``) or channels first.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        keepdims: bool, default False: keep the spatial axes with size 1.

    Returns:
        A Tensor ``(batch, channels)`` (keepdims: the input's rank).
    """
    x = as_float_tensor("global_max_pool", "x", x)
    return ops.max(x, _spatial_axes("global_max_pool", x, data_format), keepdims=bool(keepdims))


def global_avg_pool(x, data_format="channels_last", keepdims=False):
    """Mean over all spatial axes, ``y[b, c] = mean_s x[b, s, c]``; the gradient is ``g / (number of positions)``.

    Args:
        x: input ``(batch, *spatial, channels)`` (``channels_last``) or channels first.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        keepdims: bool, default False: keep the spatial axes with size 1.

    Returns:
        A Tensor ``(batch, channels)`` (keepdims: the input's rank).
    """
    x = as_float_tensor("global_avg_pool", "x", x)
    return ops.mean(x, _spatial_axes("global_avg_pool", x, data_format), keepdims=bool(keepdims))


def _resize_taps(n_in: int, n_out: int, interpolation: str):
    """The cells output cell ``i`` of ``n_out`` reads along one axis of ``n_in`` cells, with half-pixel centres
    (``c = (i + 0.5) n_in / n_out - 0.5``, as ``jax.image.resize``): nearest, ``floor(c + 0.5)`` (computed in
    float32 as jax does); bilinear, the two cells around ``c`` clamped to the axis, ``(lo, hi, w)`` with value
    ``x[lo] + w (x[hi] - x[lo])``."""
    if interpolation == "nearest":
        offsets = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * np.float32(n_in) / np.float32(n_out)
        return np.minimum(np.floor(offsets), n_in - 1).astype(np.int64)
    centres = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    lo = np.floor(centres).astype(np.int64)
    return lo, np.minimum(lo + 1, n_in - 1), centres - lo


def resize(x, size, interpolation="bilinear", data_format="channels_last"):
    """Resample the 1-3 spatial axes of ``x`` to ``size`` cells (Keras' ``ops.image.resize`` on JAX, i.e.
    ``jax.image.resize`` without antialiasing), one axis at a time.

    ``interpolation="nearest"``: ``y[i] = x[floor((i + 0.5) n_in / n_out)]``; ``"bilinear"`` (linear along each
    axis): ``y[i] = x[lo] + w (x[hi] - x[lo])`` at the half-pixel centre ``c = (i + 0.5) n_in / n_out - 0.5``
    clamped to ``[0, n_in - 1]``, ``lo = floor(c)``, ``hi = min(lo + 1, n_in - 1)``, ``w = c - lo``.
    Both are gathers along the axis, so the vjp is their scatter-add (each input cell collects the weights it
    was read with) and is itself differentiable.

    Args:
        x: ``(batch, *spatial, channels)`` (``channels_last``) or channels first, 1-3 spatial axes.
        size: int or one int per spatial axis: the output sizes.
        interpolation: ``"bilinear"`` (default) or ``"nearest"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.

    Returns:
        A Tensor ``(batch, *size, channels)`` (or channels first).
    """
    fn = "resize"
    x = as_float_tensor(fn, "x", x)
    fmt = validation.data_format(fn, data_format)
    validation.rank(fn, "x", x.shape, (3, 4, 5))
    out = validation.int_tuple(fn, "size", size, x.ndim - 2)
    interpolation = validation.choice(fn, "interpolation", interpolation, ("nearest", "bilinear"))
    y = _to_last(x, fmt)
    for i, m in enumerate(out):
        axis, n = 1 + i, y.shape[1 + i]
        if m == n:
            continue
        taps = _resize_taps(n, m, interpolation)
        if interpolation == "nearest":
            y = ops.getitem(y, (slice(None),) * axis + (taps,))
            continue
        lo_idx, hi_idx, w = taps
        lo = ops.getitem(y, (slice(None),) * axis + (lo_idx,))
        hi = ops.getitem(y, (slice(None),) * axis + (hi_idx,))
        weight = ops.constant(w.astype(x.dtype).reshape((m,) + (1,) * (y.ndim - axis - 1)))
        y = lo + (hi - lo) * weight
    return _from_last(y, fmt)
