"""Saliency with the engine's own reverse mode, to cross-check the twin's ``saliency``."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import functional as F
from tinygrad_cnn import validation
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.tensor import Tensor

__all__ = ["engine_saliency"]


def engine_saliency(model, x, target=None, score: str = "logit") -> np.ndarray:
    """``dS_target(x)/dx`` computed by ``tinygrad_cnn.grad`` on the engine model itself.

    Same conventions as ``jax_ref.attribution.saliency``: ``x`` one image or a
    batch, ``target`` None (the predicted class), an int or one per image,
    ``score`` ``"logit"`` or ``"probability"``. The gradient of the sum of the
    per-image scores is each image's own gradient (images do not interact).
    """
    score = validation.choice("engine_saliency", "score", score, ("logit", "probability"))
    x = np.asarray(x)
    single = x.ndim == len(model.input_shape) - 1
    xt = Tensor(x[None] if single else x, requires_grad=True)
    out = model(xt, training=False)
    if score == "probability":
        out = F.softmax(out, axis=-1)
    t = np.argmax(out.data, axis=-1) if target is None else np.broadcast_to(np.asarray(target), (out.shape[0],))
    picked = out[np.arange(out.shape[0]), t]
    (g,) = grad(picked.sum(), [xt])
    return g.data[0] if single else g.data
