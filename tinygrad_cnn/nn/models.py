"""Ready-made models shared by the benchmarks, the tests and the examples."""

from __future__ import annotations

from tinygrad_cnn.nn.conv import Conv2D
from tinygrad_cnn.nn.core import Dense, Flatten, Input, ReLU
from tinygrad_cnn.nn.merge import Add
from tinygrad_cnn.nn.model import Model
from tinygrad_cnn.nn.normalization import BatchNormalization
from tinygrad_cnn.nn.pooling import GlobalAveragePooling2D, MaxPooling2D
from tinygrad_cnn.nn.sequential import Sequential


def reference_cnn(input_shape=(28, 28, 1), classes: int = 10) -> Sequential:
    """The reference CNN of the speed figures, built (weights drawn from the initializers' seed).

    Conv2D(32, 3, same, relu) -> MaxPooling2D(2) -> Conv2D(64, 3, same, relu) -> MaxPooling2D(2) -> Flatten
    -> Dense(128, relu) -> Dense(classes) logits. About 1.63 GFLOP per training step at batch 64 on 28x28x1.

    Args:
        input_shape: shape without the batch axis, default (28, 28, 1) (channels last).
        classes: int, default 10: the logits' width.
    """
    model = Sequential([
        Input(tuple(input_shape)),
        Conv2D(32, 3, padding="same", activation="relu"),
        MaxPooling2D(2),
        Conv2D(64, 3, padding="same", activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(classes),
    ], name="reference_cnn")
    model.build((None,) + tuple(input_shape))
    return model


def _conv_bn(x, filters: int, kernel_size: int, strides: int, name: str, relu: bool):
    """Conv2D (no bias: the BatchNormalization after it has its own shift) -> BatchNormalization [-> ReLU].
    3x3 convs pad one pixel on every side (PyTorch's ``padding=1``, Keras' ``"same"`` at stride 1)."""
    padding = 1 if kernel_size == 3 else 0
    x = Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv")(x)
    x = BatchNormalization(name=f"{name}_bn")(x)
    return ReLU(name=f"{name}_relu")(x) if relu else x


def small_resnet(input_shape=(8, 8, 1), classes: int = 10, widths=(16, 32, 64), blocks_per_stage: int = 2,
                 name: str = "small_resnet") -> Model:
    """A small ResNet (He et al. 2016, the CIFAR "basic block" family) as a graph ``Model``, built.

    Stem: Conv2D(widths[0], 3) -> BN -> ReLU. Then one stage per width, each ``blocks_per_stage`` basic blocks
    ``relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x))``; the first block of every stage after the first
    halves the spatial size (stride 2) and its shortcut is Conv2D(1x1, stride 2) -> BN (the identity elsewhere).
    Head: GlobalAveragePooling2D -> Dense(classes) logits. Layer names:
    ``stem_conv``, ``s<stage>b<block>_{a,b,proj}_{conv,bn}``.

    Args:
        input_shape: shape without the batch axis, default (8, 8, 1) (channels last).
        classes: int, default 10: the logits' width.
        widths: tuple of ints, default (16, 32, 64): the filters of each stage.
        blocks_per_stage: int, default 2.
        name: str, default ``"small_resnet"``: the model's name.
    """
    inputs = Input(tuple(input_shape), name=f"{name}_input")
    x = _conv_bn(inputs, widths[0], 3, 1, "stem", relu=True)
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            strides = 2 if stage > 1 and block == 1 else 1
            tag = f"s{stage}b{block}"
            h = _conv_bn(x, width, 3, strides, f"{tag}_a", relu=True)
            h = _conv_bn(h, width, 3, 1, f"{tag}_b", relu=False)
            shortcut = _conv_bn(x, width, 1, strides, f"{tag}_proj", relu=False) if strides != 1 or (
                x.shape[-1] != width) else x
            x = ReLU(name=f"{tag}_out")(Add(name=f"{tag}_add")([h, shortcut]))
    x = GlobalAveragePooling2D(name="pool")(x)
    return Model(inputs, Dense(classes, name="logits")(x), name=name)
