"""Layer pairs that a model runs as one primitive: same values and gradients, fewer memory passes.

``Conv1D``/``Conv2D``/``Conv3D`` with ``activation="relu"`` followed by a ``MaxPooling`` of the same rank
and data format whose windows do not overlap (``strides == pool_size``, ``padding="valid"``), neither with
an activity regularizer and the conv with one group, run as
:class:`tinygrad_cnn.ops.conv_pool.ConvReluMaxPool` (see there for why it is faster). Anything else runs
layer by layer. Calling the layers yourself (``layer(x)``) never fuses, so every layer's own output stays
available that way.
"""

from __future__ import annotations

from tinygrad_cnn import functional as F
from tinygrad_cnn.conv_arithmetic import PoolGeometry
from tinygrad_cnn.nn import activations
from tinygrad_cnn.nn.conv import _Conv
from tinygrad_cnn.nn.pooling import MaxPooling1D, MaxPooling2D
from tinygrad_cnn.ops import conv_pool
from tinygrad_cnn.ops.conv_args import conv_args


def _pair_can_fuse(conv, pool) -> bool:
    return (isinstance(conv, _Conv) and isinstance(pool, (MaxPooling1D, MaxPooling2D)) and conv.rank == pool.rank
            and conv.activation is activations.relu and conv.groups == 1 and conv.data_format == pool.data_format
            and conv.activity_regularizer is None and pool.activity_regularizer is None
            and pool.padding == "valid" and pool.strides == pool.pool_size)


def fusable_pairs(nodes, outputs) -> dict:
    """``{id(conv node): pool node}`` for the graph nodes that may run fused: the conv's output is read by
    nothing but the pool (and is not a model output), and the layer pair can fuse (see the module docstring)."""
    readers: dict[int, list] = {}
    for node in nodes:
        for t in node.inputs:
            readers.setdefault(id(t), []).append(node)
    output_ids = {id(t) for t in outputs}
    pairs = {}
    for node in nodes:
        consumers = readers.get(id(node.output), [])
        if (len(consumers) == 1 and id(node.output) not in output_ids
                and _pair_can_fuse(node.layer, consumers[0].layer)):
            pairs[id(node)] = consumers[0]
    return pairs


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
