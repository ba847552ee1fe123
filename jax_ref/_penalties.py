"""Regularizers, constraints and activations of ``tinygrad_cnn.nn``, rebuilt on JAX from their serialized config.

Regularizers (``{"class_name": "L1L2", "config": {"l1": a, "l2": b}}``):
``a * sum|w| + b * sum w^2``. Constraints (applied after each optimizer step,
norms over ``axis`` with ``EPS = 1e-7``): ``MaxNorm`` ``w * clip(n, 0, m) / (EPS + n)``,
``NonNeg`` ``max(w, 0)``, ``UnitNorm`` ``w / (EPS + n)``, ``MinMaxNorm``
``w * (rate * clip(n, lo, hi) + (1 - rate) n) / (EPS + n)``.
"""

from __future__ import annotations

import jax.numpy as jnp

from jax_ref import ops

EPS = 1e-7

ACTIVATIONS = {
    "relu": ops.relu, "softplus": ops.softplus, "sigmoid": ops.sigmoid, "tanh": ops.tanh,
    "softmax": ops.softmax, "linear": lambda x: x, "leaky_relu": ops.leaky_relu, None: lambda x: x,
    "gelu": ops.gelu, "silu": ops.silu, "swish": ops.swish, "elu": ops.elu, "selu": ops.selu, "celu": ops.celu,
    "softsign": ops.softsign, "hard_sigmoid": ops.hard_sigmoid, "hard_silu": ops.hard_silu,
    "hard_swish": ops.hard_swish, "mish": ops.mish, "relu6": ops.relu6, "log_sigmoid": ops.log_sigmoid,
    "log_softmax": ops.log_softmax, "exponential": jnp.exp,
}


def activation(where: str, name):
    """The JAX activation for a serialized engine activation name."""
    if name not in ACTIVATIONS:
        raise NotImplementedError(f"jax_ref: {where} uses activation {name!r}, which the JAX twin does not know; "
                                  f"supported: {sorted(k for k in ACTIVATIONS if k)}")
    return ACTIVATIONS[name]


def regularizer(where: str, config):
    """``w -> penalty`` for a serialized regularizer, or None."""
    if config is None:
        return None
    name, cfg = config.get("class_name"), config.get("config") or {}
    if name not in ("L1", "L2", "L1L2"):
        raise NotImplementedError(f"jax_ref: {where} uses regularizer {name!r}; supported: L1, L2, L1L2")
    l1, l2 = float(cfg.get("l1", 0.0)), float(cfg.get("l2", 0.0))

    def penalty(w):
        total = jnp.zeros((), w.dtype)
        if l1:
            total = total + l1 * jnp.sum(jnp.abs(w))
        if l2:
            total = total + l2 * jnp.sum(w * w)
        return total

    return penalty


def _norms(w, axis):
    ax = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=ax, keepdims=True))


def constraint(where: str, config):
    """``w -> projected w`` for a serialized constraint, or None."""
    if config is None:
        return None
    name, cfg = config.get("class_name"), config.get("config") or {}
    axis = cfg.get("axis", 0)
    if name == "MaxNorm":
        m = float(cfg.get("max_value", 2.0))
        return lambda w: w * (jnp.clip(_norms(w, axis), 0, m) / (EPS + _norms(w, axis)))
    if name == "NonNeg":
        return lambda w: jnp.maximum(w, 0)
    if name == "UnitNorm":
        return lambda w: w / (EPS + _norms(w, axis))
    if name == "MinMaxNorm":
        lo, hi, rate = float(cfg.get("min_value", 0.0)), float(cfg.get("max_value", 1.0)), float(cfg.get("rate", 1))

        def project(w):
            n = _norms(w, axis)
            return w * ((rate * jnp.clip(n, lo, hi) + (1 - rate) * n) / (EPS + n))

        return project
    raise NotImplementedError(f"jax_ref: {where} uses constraint {name!r}; supported: MaxNorm, NonNeg, UnitNorm, "
                              f"MinMaxNorm")
