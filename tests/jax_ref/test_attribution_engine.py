"""Saliency by the engine's own reverse mode (tinygrad_cnn.grad) equals the twin's, for every layer type."""

from __future__ import annotations

import numpy as np
import pytest

from jax_ref import attribution as A
from jax_ref.attribution.engine import engine_saliency
from tinygrad_cnn import nn

F64 = {"dtype": "float64"}
CF = {"dtype": "float64", "data_format": "channels_first"}

STACKS = {  # every nn layer type appears in at least one stack
    "1d: Conv1D MaxPooling1D Conv1DTranspose AveragePooling1D Flatten Dense": lambda: [
        nn.Input((12, 2)), nn.Conv1D(3, 3, activation="relu", **F64), nn.MaxPooling1D(2, **F64),
        nn.Conv1DTranspose(3, 3, strides=2, activation="tanh", **F64), nn.AveragePooling1D(2, **F64),
        nn.Flatten(**F64), nn.Dense(5, **F64)],
    "2d: Conv2D DepthwiseConv2D MaxPooling2D Activation Dropout Flatten Dense": lambda: [
        nn.Input((9, 9, 2)), nn.Conv2D(4, 3, strides=2, padding="same", activation="relu", **F64),
        nn.DepthwiseConv2D(2, depth_multiplier=2, padding="same", **F64), nn.MaxPooling2D(2, padding="same", **F64),
        nn.Activation("softplus", **F64), nn.Dropout(0.5, **F64), nn.Flatten(**F64), nn.Dense(5, **F64)],
    "2d: Conv2DTranspose AveragePooling2D LPPooling2D ReLU GlobalMaxPooling2D Dense": lambda: [
        nn.Input((6, 6, 2)), nn.Conv2DTranspose(3, 3, strides=2, padding="same", **F64),
        nn.AveragePooling2D(3, strides=2, padding="same", **F64), nn.LPPooling2D(2, **F64),
        nn.ReLU(negative_slope=0.1, **F64), nn.GlobalMaxPooling2D(**F64), nn.Dense(5, **F64)],
    "2d channels_first: Conv2D MaxPooling2D GlobalAveragePooling2D Dense": lambda: [
        nn.Input((2, 8, 8)), nn.Conv2D(4, 3, dilation_rate=2, activation="sigmoid", **CF),
        nn.MaxPooling2D(2, **CF), nn.GlobalAveragePooling2D(**CF), nn.Dense(5, activation="tanh", **F64)],
    "3d: Conv3D Flatten Dense": lambda: [
        nn.Input((5, 5, 4, 1)), nn.Conv3D(2, 3, activation="relu", **F64), nn.Flatten(**F64), nn.Dense(5, **F64)],
}


@pytest.mark.parametrize("stack", list(STACKS))
def test_engine_saliency_equals_twin(stack):
    nn.set_random_seed(3)
    model = nn.Sequential(STACKS[stack]())
    rng = np.random.default_rng(11)
    model.set_weights([w + (0.1 * rng.standard_normal(w.shape) if w.ndim == 1 else 0) for w in model.get_weights()])
    x = rng.random((3,) + model.input_shape[1:])
    targets = np.array([0, 3, 4])
    for score in ("logit", "probability"):
        mine = engine_saliency(model, x, target=targets, score=score)
        twin = A.saliency(model, x, target=targets, score=score)
        assert np.abs(twin).max() > 0
        np.testing.assert_allclose(mine, twin, rtol=1e-9, atol=1e-12 * np.abs(twin).max(), err_msg=score)
    np.testing.assert_allclose(engine_saliency(model, x[1]), A.saliency(model, x[1]), rtol=1e-9, atol=1e-14)


def test_engine_saliency_negative_control():
    """A different target gives a different map (the comparison can fail)."""
    nn.set_random_seed(3)
    model = nn.Sequential(STACKS["3d: Conv3D Flatten Dense"]())
    x = np.random.default_rng(2).random((1,) + model.input_shape[1:])
    assert np.abs(engine_saliency(model, x, target=0) - A.saliency(model, x, target=1)).max() > 1e-3
