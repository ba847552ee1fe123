"""Model-level differential fuzzing: random valid Sequential stacks vs their JAX twin (from_engine), float64.

Hypothesis draws a data format, a spatial rank (1-D or 2-D), an input size and a stack of 1-3 blocks
(Conv, DepthwiseConv2D, ConvTranspose, Max/Average/LP pooling, activations, Dropout in inference, and the
relu conv + max-pool pair that Sequential fuses into one primitive) with random
filters, kernel sizes, strides, dilations, groups and paddings, then a head (Flatten or global pooling, Dense).
Shapes are kept valid by building the model and rejecting stacks whose build raises. The whole model's output,
loss, every weight's gradient and every layer input's gradient are compared with
``jax_ref.compare_gradients`` (one JAX compilation per model: ~1-2 s, so the CI count is small).
"""

from __future__ import annotations

import jax
import numpy as np
from fuzzing import CASES, LONG, examples
from hypothesis import assume, given
from hypothesis import strategies as st

import jax_ref
import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn

SIZES = st.integers(4, 9) if LONG else st.sampled_from([6, 7])


def _block(draw, rank, fmt, index):
    kind = draw(st.sampled_from(["conv", "conv", "pool", "activation", "conv_relu_pool", "conv_relu_pool"]
                                + (["depthwise", "transpose"] if rank == 2 else ["transpose"])))
    name = f"b{index}_{kind}"
    ks = draw(st.integers(1, 3))
    strides = draw(st.integers(1, 2))
    common = dict(data_format=fmt, name=name, dtype="float64")
    if kind == "conv":
        padding = draw(st.sampled_from(["valid", "same"] + (["causal"] if rank == 1 else [])))
        dilation = 1 if strides > 1 else draw(st.integers(1, 2))
        cls = nn.Conv1D if rank == 1 else nn.Conv2D
        return cls(draw(st.integers(1, 4)), ks, strides=strides, padding=padding, dilation_rate=dilation,
                   activation=draw(st.sampled_from([None, "relu", "tanh", "softplus"])), **common)
    if kind == "conv_relu_pool":  # the pair Sequential runs as one fused primitive
        cls, pool = (nn.Conv1D, nn.MaxPooling1D) if rank == 1 else (nn.Conv2D, nn.MaxPooling2D)
        conv = cls(draw(st.integers(1, 4)), ks, strides=strides, padding=draw(st.sampled_from(["valid", "same"])),
                   activation="relu", **common)
        return [conv, pool(draw(st.integers(1, 3)), **{**common, "name": f"{name}_pool"})]
    if kind == "depthwise":
        return nn.DepthwiseConv2D(ks, strides=strides, padding=draw(st.sampled_from(["valid", "same"])),
                                  depth_multiplier=draw(st.integers(1, 2)), activation="tanh", **common)
    if kind == "transpose":
        cls = nn.Conv1DTranspose if rank == 1 else nn.Conv2DTranspose
        return cls(draw(st.integers(1, 3)), ks, strides=strides, padding=draw(st.sampled_from(["valid", "same"])),
                   **common)
    if kind == "pool":
        pools = {1: [nn.MaxPooling1D, nn.AveragePooling1D], 2: [nn.MaxPooling2D, nn.AveragePooling2D, nn.LPPooling2D]}
        cls = draw(st.sampled_from(pools[rank]))
        return cls(draw(st.integers(1, 2)), strides=draw(st.sampled_from([None, 1, 2])),
                   padding=draw(st.sampled_from(["valid", "same"])), **common)
    if draw(st.booleans()):
        return nn.Activation(draw(st.sampled_from(["tanh", "sigmoid", "softplus"])), name=name, dtype="float64")
    return nn.Dropout(0.3, name=name, dtype="float64")  # identity in inference mode


@st.composite
def models(draw):
    rank = draw(st.sampled_from([1, 2]))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    spatial = (draw(SIZES),) * rank
    channels = draw(st.integers(1, 3))
    shape = (*spatial, channels) if fmt == "channels_last" else (channels, *spatial)
    layers = [nn.Input(shape, dtype="float64")]
    for i in range(draw(st.integers(1, 3))):
        block = _block(draw, rank, fmt, i)
        layers += block if isinstance(block, list) else [block]
    if rank == 2 and draw(st.booleans()):
        pool = draw(st.sampled_from([nn.GlobalAveragePooling2D, nn.GlobalMaxPooling2D]))
        layers.append(pool(data_format=fmt, name="head_pool", dtype="float64"))
    else:
        layers.append(nn.Flatten(data_format=fmt, name="head_flatten", dtype="float64"))
    classes = draw(st.integers(2, 4))
    layers.append(nn.Dense(classes, name="head_dense", dtype="float64"))
    nn.set_random_seed(draw(st.integers(0, 3)))
    try:
        model = nn.Sequential(layers)
    except ValueError:
        assume(False)  # some axis would have no cells left
    return model, shape, classes


@examples(4)
@given(spec=models(), seed=st.integers(0, 3), batch=st.sampled_from([1, 3]))
def test_random_model_matches_twin(spec, seed, batch):
    model, shape, classes = spec
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *shape))
    y = rng.integers(0, classes, batch)
    report = jax_ref.compare_gradients(model, x, y)
    CASES["model"] += 1
    CASES["model rows"] += len(report.entries)
    assert report.passed, f"{[layer.get_config() for layer in model.layers]}\n{report}"
    # the forward pass, whole output, engine vs twin
    twin = jax_ref.from_engine(model)
    out = np.asarray(jax.jit(twin.apply)(twin.params, x))  # one XLA compilation, not one per primitive
    np.testing.assert_allclose(model(x).data, out, rtol=1e-10, atol=1e-12)
    # Sequential's own run (fused pairs included) gives the gradients of the layer-by-layer run checked above
    fused = tg.grad(F.cross_entropy(model(x), y), model.weights)
    h = tg.Tensor(x)
    for layer in model.layers:
        h = layer(h)
    for a, b in zip(fused, tg.grad(F.cross_entropy(h, y), model.weights), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)
