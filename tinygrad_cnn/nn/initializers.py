"""Weight initializers with Keras 3's names, arguments and fan rules.

Fans (``compute_fans``): a vector has fan_in = fan_out = its length; a matrix
``(in, out)``; a conv kernel ``kernel_size + (in, out)`` has
fan_in = in * prod(kernel_size) and fan_out = out * prod(kernel_size).
``VarianceScaling(scale, mode, distribution)`` divides ``scale`` by the fan
picked by ``mode`` (fan_avg = (fan_in + fan_out) / 2) and draws from
U(-sqrt(3 scale), sqrt(3 scale)), or from a normal truncated at two standard
deviations with stddev sqrt(scale) / 0.8796... (so the truncated draw has
variance ``scale``), or an untruncated normal with stddev sqrt(scale).

Randomness: an initializer with an integer ``seed`` gives the same values on
every call (as in Keras); an unseeded one draws from the module generator,
reset by ``set_random_seed``.
"""

from __future__ import annotations

import math
import random

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.nn import _serial
from tinygrad_cnn.ops.random import rng as _make_rng
from tinygrad_cnn.ops.random import set_global_seed as _set_global_seed

__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Initializer", "LecunNormal",
    "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling",
    "Zeros", "compute_fans", "get", "serialize", "set_random_seed",
]

_GLOBAL = {"rng": np.random.default_rng()}


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed``: after it, everything drawn without a seed is reproducible -- unseeded
    initializers, ``fit(seed=None)``'s shuffling and Dropout masks (and every op taking ``seed=None``) -- and,
    as Keras does, Python's ``random`` and NumPy's legacy global generator are seeded too.

    Args:
        seed: an int >= 0.

    Raises:
        TypeError: ``seed`` not an int >= 0.
    """
    seed = validation.seed("set_random_seed", "seed", seed, allow_generator=False)
    if seed is None:
        raise TypeError("set_random_seed: seed must be an integer >= 0; got None")
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    _GLOBAL["rng"] = _make_rng(seed)
    _set_global_seed(seed)


def compute_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) by Keras' rule (see the module docstring)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    field = int(np.prod(shape[:-2]))
    return shape[-2] * field, shape[-1] * field


class Initializer(_serial.Configurable):
    """Base class: ``init(shape, dtype="float32") -> np.ndarray``."""

    def __call__(self, shape, dtype="float32") -> np.ndarray:
        raise NotImplementedError


class _Random(Initializer):
    def __init__(self, seed=None):
        if seed is not None and not validation.is_int(seed):
            raise TypeError(f"{type(self).__name__}: seed must be an int or None; got {seed!r}")
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        return _GLOBAL["rng"] if self.seed is None else _make_rng(self.seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


def _truncated(rng: np.random.Generator, shape, mean: float, stddev: float) -> np.ndarray:
    """Normal(mean, stddev) redrawn wherever it falls outside mean +- 2 stddev."""
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return mean + stddev * z


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype="float32"):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype="float32"):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    """Every element equal to ``value``."""

    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(_Random):
    """N(mean, stddev^2)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev = float(mean), float(stddev)
        super().__init__(seed)

    def __call__(self, shape, dtype="float32"):
        return (self.mean + self.stddev * self._rng().standard_normal(shape)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class TruncatedNormal(RandomNormal):
    """N(mean, stddev^2) truncated (redrawn) beyond two standard deviations."""

    def __call__(self, shape, dtype="float32"):
        return _truncated(self._rng(), shape, self.mean, self.stddev).astype(dtype)


class RandomUniform(_Random):
    """U(minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval = float(minval), float(maxval)
        super().__init__(seed)

    def __call__(self, shape, dtype="float32"):
        return self._rng().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class VarianceScaling(_Random):
    """Variance ``scale / fan`` (see the module docstring)."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        where = type(self).__name__
        self.scale = validation.number_in(where, "scale", scale, 0.0, float("inf"))
        if self.scale <= 0:
            raise ValueError(f"{where}: scale must be > 0; got {scale}")
        self.mode = validation.choice(where, "mode", mode, ("fan_in", "fan_out", "fan_avg"))
        distribution = validation.choice(where, "distribution", distribution,
                                         ("uniform", "truncated_normal", "untruncated_normal", "normal"))
        self.distribution = "truncated_normal" if distribution == "normal" else distribution
        super().__init__(seed)

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, fan)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            out = _truncated(rng, shape, 0.0, math.sqrt(scale) / 0.87962566103423978)
        elif self.distribution == "untruncated_normal":
            out = math.sqrt(scale) * rng.standard_normal(shape)
        else:
            limit = math.sqrt(3.0 * scale)
            out = rng.uniform(-limit, limit, shape)
        return out.astype(dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                **super().get_config()}


def _preset(name: str, scale: float, mode: str, distribution: str, doc: str):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform", "U(-l, l), l = sqrt(6 / (fan_in + fan_out)).")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Truncated normal, variance 2 / (fan_in + fan_out).")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform", "U(-l, l), l = sqrt(6 / fan_in).")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal", "Truncated normal, variance 2 / fan_in.")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform", "U(-l, l), l = sqrt(3 / fan_in).")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal", "Truncated normal, variance 1 / fan_in.")


class Orthogonal(_Random):
    """gain * Q from the QR decomposition of a normal matrix (prod(shape[:-1]), shape[-1]), sign-fixed by diag(R)."""

    def __init__(self, gain=1.0, seed=None):
        self.gain = float(gain)
        super().__init__(seed)

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the shape to initialize must have rank >= 2; got {shape}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, **super().get_config()}


_CLASSES = {c.__name__: c for c in (
    Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling, GlorotUniform,
    GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal)}
_BY_NAME = {_serial.snake_case(k): v for k, v in _CLASSES.items()}


def get(identifier, where: str = "initializers.get", arg: str = "identifier"):
    """An Initializer from a name (``"he_normal"``), a config dict or an object (callables pass through)."""
    return _serial.lookup(where, arg, identifier, _BY_NAME, _CLASSES, "initializer")


def serialize(initializer):
    """``{"class_name", "config"}`` (None for None)."""
    return _serial.serialize(initializer)
