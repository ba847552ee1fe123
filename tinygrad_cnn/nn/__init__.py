"""Keras-style layers, the Sequential model, initializers, regularizers, constraints and activations."""

from tinygrad_cnn.nn import activations, constraints, initializers, regularizers  # isort: skip
from tinygrad_cnn.nn import losses  # isort: skip
from tinygrad_cnn.nn.layer import Layer  # isort: skip
from tinygrad_cnn.nn.conv import Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, DepthwiseConv2D
from tinygrad_cnn.nn.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, ReLU
from tinygrad_cnn.nn.initializers import set_random_seed
from tinygrad_cnn.nn.models import reference_cnn
from tinygrad_cnn.nn.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LPPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from tinygrad_cnn.nn.sequential import Sequential
from tinygrad_cnn.nn.training import History

LAYER_CLASSES = (
    "Activation", "AveragePooling1D", "AveragePooling2D", "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose",
    "Conv3D", "Dense", "DepthwiseConv2D", "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "InputLayer", "LPPooling2D", "MaxPooling1D", "MaxPooling2D", "ReLU",
)



def serialize(layer) -> dict:
    """``{"class_name": "Conv2D", "config": layer.get_config()}``: everything needed to rebuild the layer."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config: dict):
    """The layer described by ``serialize(layer)`` (fresh weights; copy them with ``set_weights``)."""
    from tinygrad_cnn import validation

    name = config.get("class_name") if isinstance(config, dict) else None
    if name not in LAYER_CLASSES:
        lowered = tuple(c.lower() for c in LAYER_CLASSES)
        key = validation.choice("nn.deserialize", "class_name", name if isinstance(name, str) else repr(name), lowered)
        name = LAYER_CLASSES[lowered.index(key)]
    return globals()[name].from_config(dict(config.get("config") or {}))


__all__ = [
    "Activation", "AveragePooling1D", "AveragePooling2D", "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose",
    "Conv3D", "Dense", "DepthwiseConv2D", "Dropout", "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "History", "Input", "InputLayer", "LAYER_CLASSES", "LPPooling2D", "Layer", "MaxPooling1D", "MaxPooling2D", "ReLU",
    "Sequential", "activations", "constraints", "deserialize", "initializers", "reference_cnn", "regularizers",
    "serialize", "set_random_seed",
]
__all__ += ["losses"]
