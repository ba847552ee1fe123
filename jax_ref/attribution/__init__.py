"""What the network looks at: saliency, input x gradient, SmoothGrad (and ``noise_tunnel`` around any method),
integrated gradients, DeepLIFT (rescale rule), GradientSHAP, blur IG, guided backprop, deconvnet, occlusion,
Grad-CAM, guided Grad-CAM, Grad-CAM++, Score-CAM, layer activations and gradients, XRAI regions, feature maps,
filters and activation maximisation, for a ``JaxModel`` or an engine model (``Sequential`` or a graph
``Model``, one input, one output; layers are named by node, so the CAM methods and feature maps reach every
call of a graph).

Every function returns raw NumPy arrays (no normalisation, no channel
reduction: that is ``tinygrad_cnn.viz``'s job), shaped like ``x`` (one image
or a batch, in the model's data format). The score is the target class'
logit (pre-softmax) unless ``score="probability"``; ``target`` defaults to
the predicted class. Definitions are in each function's docstring.
"""

from jax_ref.attribution.deep_lift import deep_lift
from jax_ref.attribution.gradients import (
    completeness,
    input_x_gradient,
    integrated_gradients,
    saliency,
    smoothgrad,
)
from jax_ref.attribution.guided import deconvnet, guided_backprop, guided_grad_cam
from jax_ref.attribution.layers import (
    feature_maps,
    filters,
    grad_cam,
    grad_cam_plus_plus,
    layer_activation,
    layer_gradient,
)
from jax_ref.attribution.maximization import activation_maximization
from jax_ref.attribution.metrics import deletion_curve, infidelity, insertion_curve, sensitivity_max
from jax_ref.attribution.noise_tunnel import noise_tunnel
from jax_ref.attribution.occlusion import occlusion, window_masks
from jax_ref.attribution.paths import blur_ig, gradient_shap
from jax_ref.attribution.score_cam import score_cam
from jax_ref.attribution.xrai import xrai, xrai_regions, xrai_segments

__all__ = [
    "activation_maximization", "blur_ig", "completeness", "deconvnet", "deep_lift", "deletion_curve", "feature_maps",
    "filters", "grad_cam", "grad_cam_plus_plus", "gradient_shap", "guided_backprop", "guided_grad_cam", "infidelity",
    "input_x_gradient", "insertion_curve", "integrated_gradients", "layer_activation", "layer_gradient",
    "noise_tunnel", "occlusion", "saliency", "score_cam", "sensitivity_max", "smoothgrad", "window_masks", "xrai",
    "xrai_regions", "xrai_segments",
]
