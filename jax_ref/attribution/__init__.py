"""What the network looks at: saliency, SmoothGrad, integrated gradients, occlusion, Grad-CAM,
feature maps and filters, for a ``JaxModel`` or an engine model (``Sequential`` or a graph ``Model``, one
input, one output; layers are named by node, so Grad-CAM and feature maps reach every call of a graph).

Every function returns raw NumPy arrays (no normalisation, no channel
reduction: that is ``tinygrad_cnn.viz``'s job), shaped like ``x`` (one image
or a batch, in the model's data format). The score is the target class'
logit (pre-softmax) unless ``score="probability"``; ``target`` defaults to
the predicted class. Definitions are in each function's docstring.
"""

from jax_ref.attribution.gradients import completeness, integrated_gradients, saliency, smoothgrad
from jax_ref.attribution.layers import feature_maps, filters, grad_cam
from jax_ref.attribution.occlusion import occlusion, window_masks

__all__ = [
    "completeness", "feature_maps", "filters", "grad_cam", "integrated_gradients", "occlusion", "saliency",
    "smoothgrad", "window_masks",
]
