"""Task 9: saliency and SmoothGrad, with the engine's autodiff.

The score S of an image is its logit for the target class (before softmax). For a batch x (B, H, W, C) and
targets (B,) ints:

* saliency = dS/dx, image by image: the gradient of sum_b logits[b, target[b]] with respect to the batch.
* SmoothGrad = the mean over n noise samples of the saliency at x + sigma_b * noise_k, where noise (n, B, H, W, C)
  holds standard normal samples and sigma_b = noise_level * (max(x_b) - min(x_b)), per image b.

``model`` is an engine model (``model(tensor)`` returns logits (B, classes)); use ``tinygrad_cnn.grad``.
"""

import numpy as np

import tinygrad_cnn as tg  # noqa: F401  (you will need it)


def saliency(model, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d logit[target] / d x for every image of the batch, shaped like x."""
    raise NotImplementedError("task9 saliency")


def smoothgrad(model, x: np.ndarray, target: np.ndarray, noise: np.ndarray, noise_level: float) -> np.ndarray:
    """The mean over the n noise samples of saliency(model, x + sigma * noise[k], target)."""
    raise NotImplementedError("task9 smoothgrad")

