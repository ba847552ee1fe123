"""Guided backpropagation, deconvnet and guided Grad-CAM: the input gradient with ReLU's backward rule replaced.

The model is not rebuilt: ``Net.forward(..., relu=rule)`` runs the same walk with ``rule`` (a ``jax.custom_vjp``
function whose forward value is ``max(h, 0)``) wherever a layer ends in a plain ReLU (``activation="relu"``,
``Activation("relu")``, ``ReLU()`` with its default config). Every other layer, LeakyReLU, PReLU and ELU
included, keeps its own gradient, as captum's ``GuidedBackprop`` / ``Deconvolution`` hook ``nn.ReLU`` modules
only. With ``h`` the ReLU's input and ``g`` the gradient arriving at its output:

- guided backprop (Springenberg et al. 2015; captum ``GuidedBackprop``): ``g -> [h > 0] relu(g)``, the usual
  ReLU gradient with the negative gradients cut too (captum applies ``relu`` to the gradient at the ReLU's input,
  ``relu([h > 0] g)``, the same thing);
- deconvnet (Zeiler and Fergus 2014; captum ``Deconvolution``): ``g -> relu(g)``, ignoring the forward mask.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution import _net
from jax_ref.attribution.gradients import input_gradient
from jax_ref.attribution.layers import grad_cam

__all__ = ["deconvnet", "guided_backprop", "guided_grad_cam"]


def _relu_rule(backward):
    @jax.custom_vjp
    def relu(h):
        return jax.nn.relu(h)

    relu.defvjp(lambda h: (jax.nn.relu(h), h), lambda h, g: (backward(h, g),))
    return relu


GUIDED_RELU = _relu_rule(lambda h, g: jnp.where(h > 0, jax.nn.relu(g), 0).astype(g.dtype))
DECONV_RELU = _relu_rule(lambda h, g: jax.nn.relu(g))


def guided_backprop(model, x, target=None, score: str = "logit"):
    """Guided backpropagation: ``dS_target/dx`` with every ReLU's backward ``g -> [h > 0] relu(g)`` (module
    docstring), shaped like ``x``."""
    return input_gradient("guided_backprop", model, x, target, score, relu=GUIDED_RELU)


def deconvnet(model, x, target=None, score: str = "logit"):
    """Deconvnet: ``dS_target/dx`` with every ReLU's backward ``g -> relu(g)`` (module docstring), shaped like
    ``x``."""
    return input_gradient("deconvnet", model, x, target, score, relu=DECONV_RELU)


def guided_grad_cam(model, x, layer, target=None, score: str = "logit"):
    """Guided Grad-CAM (Selvaraju et al. 2017): ``guided_backprop(x) * grad_cam(x, layer)``, the Grad-CAM map
    resized bilinearly to the input and broadcast over the channels, shaped like ``x``.

    captum's ``GuidedGradCam`` computes the same product but resizes the Grad-CAM map with ``nearest``
    interpolation by default; ``interpolate_mode="bilinear"`` there gives ours (``F.interpolate``'s half-pixel
    bilinear, ``align_corners=False``, equals ``jax.image.resize``'s when upsampling; measured equal to
    rounding in tests/jax_ref/test_attribution_vs_captum.py).
    """
    gb = guided_backprop(model, x, target, score)
    cam = grad_cam(model, x, layer, target, score, upsample=True)
    net = _net.as_net(model)[0]
    single = gb.ndim == (3 if net.image_shape is None else len(net.image_shape))
    return gb * np.expand_dims(cam, -1 if net.data_format == "channels_last" else 1 - single)
