"""Layer runs that a model computes as one primitive: same values and gradients, fewer memory passes.

Conv + relu + max-pooling: ``Conv1D``/``Conv2D``/``Conv3D`` with ``activation="relu"`` followed by a
``MaxPooling`` of the same rank and data format whose windows do not overlap (``strides == pool_size``,
``padding="valid"``), neither with an activity regularizer and the conv with one group, run as
:class:`tinygrad_cnn.ops.conv_pool.ConvReluMaxPool` (see there for why it is faster).

Conv + BatchNormalization [+ ReLU], folded at inference: a conv without activation whose only reader is a
``BatchNormalization`` over its channel axis is, when the BatchNormalization uses its moving statistics
(inference, or a frozen layer), one conv with kernel ``K s`` and bias ``s (b - mean) + beta``, where
``s = gamma / sqrt(moving_variance + epsilon)`` per output channel (``b = 0`` without a conv bias; ``gamma = 1``,
``beta = 0`` without scale/center): ``BN(conv(x, K) + b) = s (conv(x, K) + b - mean) + beta`` and the conv is
linear in its kernel. When the BatchNormalization's only reader is a plain ``ReLU`` layer (no threshold, slope
or ceiling), the relu runs inside the conv primitive too. The folded kernel and bias are computed with engine ops,
so gradients reach the input, the kernel, gamma and beta exactly as without folding (to rounding). In training
the batch statistics depend on the batch, so nothing folds.

BatchNormalization + ReLU in training: a BatchNormalization on its batch statistics whose only reader is a plain
``ReLU`` runs as one :class:`tinygrad_cnn.ops.normalization.Normalize` with ``relu=True`` (one pass less each
way, and one graph node instead of two); the moving statistics are updated as by the layer alone.

Anything else runs layer by layer; so does everything inside ``with fusion.disabled():``. Calling the layers
yourself (``layer(x)``) never fuses, so every layer's own output stays available that way.
"""

from __future__ import annotations

import contextlib

from tinygrad_cnn import functional as F
from tinygrad_cnn import ops
from tinygrad_cnn.conv_arithmetic import PoolGeometry
from tinygrad_cnn.nn import activations
from tinygrad_cnn.nn.conv import _Conv
from tinygrad_cnn.nn.core import ReLU
from tinygrad_cnn.nn.normalization import BatchNormalization
from tinygrad_cnn.nn.pooling import MaxPooling1D, MaxPooling2D
from tinygrad_cnn.ops import conv_pool
from tinygrad_cnn.ops.conv_args import conv_args

_disabled = [0]  # nesting depth of ``disabled()``


@contextlib.contextmanager
def disabled():
    """Inside this context every model runs layer by layer (the reference that fusion must match)."""
    _disabled[0] += 1
    try:
        yield
    finally:
        _disabled[0] -= 1


def enabled() -> bool:
    """False inside ``disabled()``."""
    return not _disabled[0]


def _pair_can_fuse(conv, pool) -> bool:
    return (isinstance(conv, _Conv) and isinstance(pool, (MaxPooling1D, MaxPooling2D)) and conv.rank == pool.rank
            and conv.activation is activations.relu and conv.groups == 1 and conv.data_format == pool.data_format
            and conv.activity_regularizer is None and pool.activity_regularizer is None
            and pool.padding == "valid" and pool.strides == pool.pool_size)


def _conv_bn_can_fold(conv, bn) -> bool:
    return (isinstance(conv, _Conv) and isinstance(bn, BatchNormalization)
            and conv.activation is activations.linear and conv.dtype == bn.dtype
            and conv.activity_regularizer is None and bn.activity_regularizer is None
            and bn.axis % (conv.rank + 2) == conv._channel_axis() % (conv.rank + 2))


def _is_plain_relu(layer) -> bool:
    return (type(layer) is ReLU and layer.max_value is None and layer.threshold == 0.0 and layer.negative_slope == 0.0
            and layer.activity_regularizer is None)


def _only_readers(nodes, outputs) -> dict:
    """``{id(node): its one reader}`` for the nodes whose output one node reads and which is no model output."""
    readers: dict[int, list] = {}
    for node in nodes:
        for t in node.inputs:
            readers.setdefault(id(t), []).append(node)
    output_ids = {id(t) for t in outputs}
    return {id(node): readers[id(node.output)][0] for node in nodes
            if len(readers.get(id(node.output), [])) == 1 and id(node.output) not in output_ids}


def fusable_pairs(nodes, outputs) -> dict:
    """``{id(conv node): pool node}`` for the graph nodes that may run fused: the conv's output is read by
    nothing but the pool (and is not a model output), and the layer pair can fuse (see the module docstring)."""
    only = _only_readers(nodes, outputs)
    return {id(node): only[id(node)] for node in nodes
            if id(node) in only and _pair_can_fuse(node.layer, only[id(node)].layer)}


def foldable_batchnorms(nodes, outputs) -> dict:
    """``{id(conv node): (BatchNormalization node, ReLU node or None)}`` for the convs whose only reader is a
    BatchNormalization they fold into at inference (see the module docstring); the ReLU node when it is the
    BatchNormalization's only reader and a plain relu."""
    only = _only_readers(nodes, outputs)
    folds = {}
    for node in nodes:
        bn = only.get(id(node))
        if bn is not None and _conv_bn_can_fold(node.layer, bn.layer):
            relu = only.get(id(bn))
            folds[id(node)] = (bn, relu if relu is not None and _is_plain_relu(relu.layer) else None)
    return folds


def batchnorm_relus(nodes, outputs) -> dict:
    """``{id(BatchNormalization node): ReLU node}`` for the BatchNormalizations whose only reader is a plain ReLU
    (in training they run as one primitive, see the module docstring)."""
    only = _only_readers(nodes, outputs)
    return {id(node): only[id(node)] for node in nodes
            if isinstance(node.layer, BatchNormalization) and node.layer.activity_regularizer is None
            and id(node) in only and _is_plain_relu(only[id(node)].layer)}


def batchnorm_relu(bn, x):
    """``relu(BN(x))`` as one primitive when the BatchNormalization normalizes with the batch's statistics
    (training, layer trainable); ``None`` otherwise (its moving statistics: layer by layer or folded)."""
    if not bn.built:
        return None
    bn.check_input_shape(x.shape)
    bn._activity_losses = []
    return bn.normalize_batch(x, relu=True)


def conv_batchnorm(conv, bn, x, relu: bool = False):
    """``BN(conv(x))`` (``relu(...)`` with ``relu=True``) as one conv with the folded kernel and bias, when the
    BatchNormalization runs on its moving statistics; ``None`` when the pair cannot fold."""
    if not (_conv_bn_can_fold(conv, bn) and conv.built and bn.built) or x.dtype != conv.kernel.dtype:
        return None
    conv.check_input_shape(x.shape)
    scale = ops.pow(bn.moving_variance + bn.epsilon, -0.5)
    if bn.gamma is not None:
        scale = scale * bn.gamma
    shift = (conv.bias - bn.moving_mean) * scale if conv.bias is not None else -(bn.moving_mean * scale)
    if bn.beta is not None:
        shift = shift + bn.beta
    conv._activity_losses, bn._activity_losses = [], []
    return F._conv("conv", x, conv.kernel * scale, shift, conv.strides, conv.padding, conv.dilation_rate,
                   conv.groups, conv.data_format, relu=relu)


def conv_relu_max_pool(conv, pool, x):
    """``pool(conv(x))`` as one primitive when the pair and the input allow it; ``None`` otherwise."""
    if not (_pair_can_fuse(conv, pool) and conv.built and pool.built):
        return None
    conv.check_input_shape(x.shape)
    fmt, geo = conv_args("conv", x.shape, conv.kernel.shape, conv.strides, conv.padding, conv.dilation_rate,
                         conv.groups, conv.data_format)
    xl = F._to_last(x, fmt)
    window = PoolGeometry(pool.pool_size, pool.strides, ((0, 0),) * pool.rank)
    if x.dtype != conv.kernel.dtype or not conv_pool.fusable(geo, window, xl.shape):
        return None
    conv._activity_losses, pool._activity_losses = [], []
    return F._from_last(conv_pool.conv_relu_max_pool(xl, conv.kernel, conv.bias, geo=geo, pool=pool.pool_size), fmt)
