"""Ready-made models shared by the benchmarks, the tests and the examples."""

from __future__ import annotations

from tinygrad_cnn.nn.conv import Conv2D
from tinygrad_cnn.nn.core import Dense, Flatten, Input
from tinygrad_cnn.nn.pooling import MaxPooling2D
from tinygrad_cnn.nn.sequential import Sequential


def reference_cnn(input_shape=(28, 28, 1), classes: int = 10) -> Sequential:
    """The reference CNN of the speed figures, built (weights drawn from the initializers' seed).

    Conv2D(32, 3, same, relu) -> MaxPooling2D(2) -> Conv2D(64, 3, same, relu) -> MaxPooling2D(2) -> Flatten
    -> Dense(128, relu) -> Dense(classes) logits. About 1.63 GFLOP per training step at batch 64 on 28x28x1.
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
