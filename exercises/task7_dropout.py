"""Task 7: inverted dropout, in training and at test time.

Training: draw u = np.random.default_rng(seed).random(x.shape); keep x where u >= rate and scale the kept
values by 1 / (1 - rate), so the expected output equals x; the others become 0. rate = 1 drops everything
(zeros, never NaN). Test time (training=False): the identity, x itself.
The backward pass multiplies the cotangent by the same mask and scale.
"""

import numpy as np


def dropout(x: np.ndarray, rate: float, training: bool, seed: int = 0) -> np.ndarray:
    """Inverted dropout of x with the mask described above."""
    raise NotImplementedError("task7 dropout")


def dropout_vjp(x: np.ndarray, rate: float, seed: int, g: np.ndarray) -> np.ndarray:
    """dL/dx in training mode, for the cotangent g = dL/d dropout(x, rate, True, seed)."""
    raise NotImplementedError("task7 dropout_vjp")
