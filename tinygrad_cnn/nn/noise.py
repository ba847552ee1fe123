"""Noise layers, active only while training (the identity otherwise), seeded as ``Dropout``:
``SpatialDropout1D/2D/3D``, ``GaussianNoise``, ``GaussianDropout`` (Keras 3's arguments and formulas).

- ``SpatialDropout*D(rate)``: ``Dropout`` with one mask per (batch element, channel), shared along every
  spatial axis (Keras' noise shape ``(batch, 1, ..., 1, channels)``): whole feature maps are dropped.
- ``GaussianNoise(stddev)``: ``y = x + e``, ``e ~ N(0, stddev^2)``; dy/dx = 1.
- ``GaussianDropout(rate)``: ``y = x * e``, ``e ~ N(1, rate / (1 - rate))``; dy/dx = e.

The draws come from ``seed`` (an int, or None for a fresh stream); ``fit(seed=...)`` reseeds every layer
with a ``reseed`` method, so a seeded run is bit for bit repeatable. The twin draws from ``jax.random``
instead, so engine and twin agree in inference mode, and in training only in distribution.
"""

from __future__ import annotations

import math

from tinygrad_cnn import ops, validation
from tinygrad_cnn.nn.core import Dropout
from tinygrad_cnn.nn.layer import Layer, _fmt_shape
from tinygrad_cnn.ops.random import rng as make_rng

__all__ = ["GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"]


class _SpatialDropout(Dropout):
    """Dropout of whole channels: the mask has shape ``(batch, 1, ..., 1, channels)`` (channels_last) or
    ``(batch, channels, 1, ..., 1)`` (channels_first), broadcast over the spatial axes."""

    rank = 2

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = validation.data_format(self._where(), data_format or "channels_last")
        ones = (1,) * self.rank
        self.noise_shape = (None, *ones, None) if self.data_format == "channels_last" else (None, None, *ones)

    def check_build_shape(self, shape):
        if len(shape) != self.rank + 2:
            layout = "spatial..., channels" if self.data_format == "channels_last" else "channels, spatial..."
            raise ValueError(f"{self._where()}: expected an input of rank {self.rank + 2} (batch, {layout}); got "
                             f"shape {_fmt_shape(shape)} (rank {len(shape)})")

    def get_config(self):
        """Keras' SpatialDropout config: no ``trainable`` (its constructor takes none: nothing here trains)."""
        base = {k: v for k, v in Layer.get_config(self).items() if k != "trainable"}
        config = {**base, "rate": self.rate, "seed": self.seed}
        return config if self.rank == 1 else {**config, "data_format": self.data_format}


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of (batch, steps, channels) inputs (no ``data_format``, as in Keras).

    Args:
        rate: float in [0, 1): the probability of dropping a channel (the rest are scaled by 1/(1-rate)).
        seed: non-negative int or None (default).
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 1

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of (batch, rows, cols, channels) inputs.

    Args:
        rate: float in [0, 1): the probability of dropping a channel (the rest are scaled by 1/(1-rate)).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        seed: non-negative int or None (default).
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of (batch, d1, d2, d3, channels) inputs.

    Args:
        rate: float in [0, 1): the probability of dropping a channel (the rest are scaled by 1/(1-rate)).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        seed: non-negative int or None (default).
        **kwargs: the base ``Layer`` arguments.
    """

    rank = 3


class _Noise(Layer):
    """A seeded noise draw applied while training (``amount`` > 0); the identity otherwise."""

    amount_arg = "rate"

    def __init__(self, amount, seed=None, **kwargs):
        super().__init__(**kwargs)
        setattr(self, self.amount_arg, validation.number_in(self._where(), self.amount_arg, amount, 0.0, 1.0,
                                                            high_open=self.amount_arg == "rate"))
        self.seed = validation.seed(self._where(), "seed", seed, allow_generator=False)
        self._rng = make_rng(seed)

    @property
    def random_in_training(self) -> bool:
        """Whether a training call draws random numbers (the twin cannot reproduce the engine's draws)."""
        return getattr(self, self.amount_arg) > 0

    def reseed(self, generator) -> None:
        """Draw future noise from ``generator`` (``fit(seed=...)`` uses this for reproducible runs)."""
        self._rng = generator

    def call(self, x, training=False):
        if not training or not self.random_in_training:
            return x
        return self.apply_noise(x, self._rng.standard_normal(x.shape))

    def get_config(self):
        return {**super().get_config(), self.amount_arg: getattr(self, self.amount_arg), "seed": self.seed}


class GaussianNoise(_Noise):
    """``y = x + stddev * z``, z standard normal, while training (``0 <= stddev <= 1``, as Keras checks).

    Args:
        stddev: float in [0, 1], the noise's standard deviation.
        seed: non-negative int or None (default).
        **kwargs: the base ``Layer`` arguments.
    """

    amount_arg = "stddev"

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(stddev, seed=seed, **kwargs)

    def apply_noise(self, x, z):
        return x + ops.constant((self.stddev * z).astype(x.dtype))


class GaussianDropout(_Noise):
    """``y = x * (1 + sqrt(rate / (1 - rate)) z)``, z standard normal, while training (``0 <= rate < 1``: rate 1
    would be an infinite standard deviation).

    Args:
        rate: float in [0, 1): the equivalent drop probability.
        seed: non-negative int or None (default).
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)

    def apply_noise(self, x, z):
        return x * ops.constant((1.0 + math.sqrt(self.rate / (1.0 - self.rate)) * z).astype(x.dtype))
