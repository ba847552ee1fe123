"""Keras-style layers, the Sequential model, initializers, regularizers, constraints and activations."""

from tinygrad_cnn.nn import activations, constraints, initializers, regularizers  # isort: skip
from tinygrad_cnn.nn import losses  # isort: skip
from tinygrad_cnn.nn import callbacks  # isort: skip
from tinygrad_cnn.nn.layer import Layer  # isort: skip
from tinygrad_cnn.nn.activation_layers import ELU, LeakyReLU, PReLU, Rescaling, Softmax
from tinygrad_cnn.nn.conv import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from tinygrad_cnn.nn.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, ReLU
from tinygrad_cnn.nn.initializers import set_random_seed
from tinygrad_cnn.nn.lambda_layer import Lambda
from tinygrad_cnn.nn.merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from tinygrad_cnn.nn.model import Model
from tinygrad_cnn.nn.models import reference_cnn, small_resnet
from tinygrad_cnn.nn.noise import GaussianDropout, GaussianNoise, SpatialDropout1D, SpatialDropout2D, SpatialDropout3D
from tinygrad_cnn.nn.normalization import BatchNormalization, GroupNormalization, LayerNormalization
from tinygrad_cnn.nn.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    LPPooling2D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from tinygrad_cnn.nn.registry import register_serializable
from tinygrad_cnn.nn.reshaping import (
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Permute,
    RepeatVector,
    Reshape,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from tinygrad_cnn.nn.saving import load_model
from tinygrad_cnn.nn.sequential import Sequential
from tinygrad_cnn.nn.training import History

from tinygrad_cnn.nn import registry  # isort: skip

# The one registry of layer classes, by class name: every public Layer subclass of this package (new layers join it
# by being imported above). serialize/deserialize, Sequential.from_config and the JAX twin (jax_ref._layers) key on it;
# a user's own Layer subclasses join deserialize through nn.register_serializable (nn.registry).
LAYER_CLASSES = registry.layer_classes()


def serialize(layer) -> dict:
    """``{"class_name": "Conv2D", "config": layer.get_config()}``: everything needed to rebuild the layer (plus
    ``"registered_name"`` for a class registered with ``register_serializable``).

    Args:
        layer: a ``Layer`` (built or not).
    """
    return registry.serialize(layer)


def deserialize(config: dict):
    """The layer described by ``serialize(layer)`` (fresh weights; copy them with ``set_weights``): a registered
    class by its ``registered_name``, else the class name looked up in ``LAYER_CLASSES`` (any case).

    Args:
        config: ``{"class_name": ..., "config": {...}}`` as ``serialize`` returns it.

    Raises:
        ValueError: an unknown class (the message says how to register one).
    """
    return registry.deserialize(config, LAYER_CLASSES)


__all__ = [
    "Activation", "Add", "Average", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "BatchNormalization",
    "Concatenate", "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose",
    "Cropping1D", "Cropping2D", "Cropping3D", "Dense", "DepthwiseConv1D", "DepthwiseConv2D", "Dropout", "ELU",
    "Flatten", "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GroupNormalization",
    "History", "Input", "InputLayer", "LAYER_CLASSES", "LPPooling2D", "Lambda", "Layer", "LayerNormalization",
    "LeakyReLU", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Maximum", "Minimum", "Model", "Multiply", "PReLU",
    "Permute", "ReLU", "RepeatVector", "Rescaling", "Reshape", "SeparableConv1D", "SeparableConv2D", "Sequential",
    "Softmax", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "Subtract", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "activations", "constraints", "deserialize",
    "initializers", "reference_cnn", "register_serializable", "regularizers", "serialize", "set_random_seed",
    "small_resnet",
]
__all__ += ["callbacks", "load_model", "losses"]
