"""jax_ref.attribution on bad input (images that do not fit the model, layer names): the messages name the
function, the argument, its value and the valid choices in the model's terms, never an internal op's label."""

from __future__ import annotations

import re

import numpy as np
import pytest

from jax_ref import attribution as A
from tinygrad_cnn import nn


@pytest.fixture(scope="module", params=["channels_last", "channels_first"])
def model(request):
    fmt = request.param
    nn.set_random_seed(0)
    return nn.Sequential([nn.Input((8, 8, 1) if fmt == "channels_last" else (1, 8, 8)),
                          nn.Conv2D(3, 3, data_format=fmt, name="conv"), nn.MaxPooling2D(2, data_format=fmt),
                          nn.Flatten(data_format=fmt, name="flat"), nn.Dense(4, name="head")])


def _image(model, channels, size=8):
    fmt = model.layers[0].data_format
    return np.zeros((size, size, channels) if fmt == "channels_last" else (channels, size, size), np.float32)


CALLS = {
    "saliency": lambda m, x: A.saliency(m, x),
    "smoothgrad": lambda m, x: A.smoothgrad(m, x, n=2),
    "integrated_gradients": lambda m, x: A.integrated_gradients(m, x, steps=2),
    "occlusion": lambda m, x: A.occlusion(m, x, window=2),
    "grad_cam": lambda m, x: A.grad_cam(m, x, "conv"),
    "feature_maps": lambda m, x: A.feature_maps(m, x),
}


@pytest.mark.parametrize("fn", CALLS)
def test_wrong_channel_count_names_the_function_x_and_the_models_image_shape(model, fn):
    want = tuple(model.input_shape[1:])
    with pytest.raises(ValueError, match=f"^{fn}: x has 3 channels per image \\(image shape "
                       f"{re.escape(str(_image(model, 3).shape))}\\) but the model takes 1 \\(images of shape "
                       f"{re.escape(str(want))}"):
        CALLS[fn](model, _image(model, 3))


@pytest.mark.parametrize("fn", CALLS)
def test_image_size_a_later_layer_cannot_take_names_the_function_x_and_the_layer(model, fn):
    with pytest.raises(ValueError, match=f"^{fn}: x holds images of shape .* that layer 'head' cannot take "
                       r"\(the model was built for images of shape"):
        CALLS[fn](model, _image(model, 1, size=6)[None])


def test_layer_choices_are_named(model):
    x = _image(model, 1)
    with pytest.raises(ValueError, match=r"grad_cam: layer='flat' .* no spatial axes; choose a layer with spatial "
                       r"output: 'conv', 'max_pooling2d"):
        A.grad_cam(model, x, "flat")
    with pytest.raises(ValueError, match=r"filters: layer='flat' has no kernel; choose one of 'conv', 'head'$"):
        A.filters(model, "flat")
    with pytest.raises(ValueError, match=r"feature_maps|filters: layer='cnv' is not one of .*did you mean 'conv'"):
        A.filters(model, "cnv")
    assert A.filters(model, "conv").shape == (3, 3, 1, 3)
    assert [v.shape for v in A.feature_maps(model, x).values()][-1] == (4,)

