"""Keras-style layers, the Sequential model, initializers, regularizers, constraints and activations."""

from tinygrad_cnn.nn import activations, constraints, initializers, regularizers  # isort: skip
from tinygrad_cnn.nn import losses  # isort: skip
from tinygrad_cnn.nn import callbacks  # isort: skip
from tinygrad_cnn.nn.layer import Layer  # isort: skip
from tinygrad_cnn.nn.conv import Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, DepthwiseConv2D
from tinygrad_cnn.nn.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, ReLU
from tinygrad_cnn.nn.initializers import set_random_seed
from tinygrad_cnn.nn.merge import Add, Average, Concatenate, Multiply, Subtract
from tinygrad_cnn.nn.model import Model
from tinygrad_cnn.nn.models import reference_cnn
from tinygrad_cnn.nn.normalization import BatchNormalization, GroupNormalization, LayerNormalization
from tinygrad_cnn.nn.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LPPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from tinygrad_cnn.nn.saving import load_model
from tinygrad_cnn.nn.sequential import Sequential
from tinygrad_cnn.nn.training import History

from tinygrad_cnn.nn import _serial  # isort: skip

# The one registry of layer classes, by class name: every public Layer subclass of this package (new layers join it
# by being imported above). serialize/deserialize, Sequential.from_config and the JAX twin (jax_ref._layers) key on it.
LAYER_CLASSES = _serial.subclasses(Layer, __name__)


def serialize(layer) -> dict:
    """``{"class_name": "Conv2D", "config": layer.get_config()}``: everything needed to rebuild the layer."""
    return _serial.serialize(layer)


def deserialize(config: dict):
    """The layer described by ``serialize(layer)`` (fresh weights; copy them with ``set_weights``); the class name
    is looked up in ``LAYER_CLASSES`` (any case)."""
    return _serial.deserialize(config, LAYER_CLASSES, "nn.deserialize")


__all__ = [
    "Activation", "Add", "Average", "AveragePooling1D", "AveragePooling2D", "BatchNormalization", "Concatenate",
    "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Dense", "DepthwiseConv2D", "Dropout",
    "Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "GroupNormalization", "History", "Input",
    "InputLayer", "LAYER_CLASSES", "LPPooling2D", "Layer", "LayerNormalization", "MaxPooling1D", "MaxPooling2D",
    "Model", "Multiply", "ReLU", "Sequential", "Subtract", "activations", "constraints", "deserialize",
    "initializers", "reference_cnn", "regularizers", "serialize", "set_random_seed",
]
__all__ += ["callbacks", "load_model", "losses"]
