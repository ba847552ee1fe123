"""The functional ops of ``tinygrad_cnn.functional``, name for name and argument for argument, on JAX.

Every function takes arrays (NumPy or JAX) and returns ``jax.Array``s; all of
them are pure and trace under ``jax.jit``/``jax.grad``. Tie conventions match
the engine: ``relu'(0) = 0`` (``jax.nn.relu``), ``leaky_relu'(0) = 1``,
softplus is ``logaddexp(x, 0)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref._conv import conv, conv1d, conv2d, conv3d, conv_transpose, depthwise_conv2d
from jax_ref._docs import take_engine_args
from jax_ref._pool import (
    adaptive_avg_pool,
    adaptive_max_pool,
    avg_pool,
    global_avg_pool,
    global_max_pool,
    lp_pool,
    max_pool,
    max_unpool,
)
from jax_ref.losses import binary_cross_entropy, cross_entropy, hinge, huber, kl_div, mae, mse, nll_loss
from tinygrad_cnn import validation

__all__ = [
    "avg_pool", "conv", "conv1d", "conv2d", "conv3d", "conv_transpose", "cross_entropy", "dense",
    "depthwise_conv2d", "dropout", "global_avg_pool", "global_max_pool", "leaky_relu", "log_softmax",
    "logsumexp", "lp_pool", "max_pool", "mse", "relu", "sigmoid", "softmax", "softplus", "tanh",
    "adaptive_avg_pool", "adaptive_max_pool", "max_unpool", "resize",
    "celu", "elu", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid", "mish", "prelu", "relu6", "selu",
    "silu", "softsign", "swish",
    # losses (jax_ref.losses)
    "binary_cross_entropy", "hinge", "huber", "kl_div", "mae", "nll_loss",
]


def relu(x):
    """max(x, 0); relu'(0) = 0."""
    return jax.nn.relu(jnp.asarray(x))


def softplus(x):
    """log(1 + e^x) = logaddexp(x, 0)."""
    x = jnp.asarray(x)
    return jnp.logaddexp(x, jnp.zeros((), x.dtype))


def sigmoid(x):
    """1 / (1 + e^-x)."""
    return jax.nn.sigmoid(jnp.asarray(x))


def tanh(x):
    """(e^x - e^-x) / (e^x + e^-x)."""
    return jnp.tanh(jnp.asarray(x))


def leaky_relu(x, negative_slope: float = 0.2):
    """x for x >= 0, negative_slope * x otherwise."""
    validation.number_in("leaky_relu", "negative_slope", negative_slope, 0.0, float("inf"))
    return jax.nn.leaky_relu(jnp.asarray(x), negative_slope)


def gelu(x, approximate: bool = False):
    """x Phi(x) = x/2 erfc(-x/sqrt 2) (``jax.nn.gelu(approximate=False)``) or the tanh form (``approximate=True``)."""
    approximate = validation.boolean("gelu", "approximate", approximate)
    return jax.nn.gelu(jnp.asarray(x), approximate=approximate)


def silu(x):
    """x sigmoid(x)."""
    return jax.nn.silu(jnp.asarray(x))


def swish(x):
    """x sigmoid(x)."""
    return jax.nn.swish(jnp.asarray(x))


def elu(x, alpha: float = 1.0):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    alpha = validation.number_in("elu", "alpha", alpha, -float("inf"), float("inf"))
    return jax.nn.elu(jnp.asarray(x), alpha)


def selu(x):
    """jax.nn.selu: 1.0507... * elu(x, 1.6732...)."""
    return jax.nn.selu(jnp.asarray(x))


def celu(x, alpha: float = 1.0):
    """max(x, 0) + alpha expm1(min(x, 0) / alpha), alpha > 0."""
    alpha = validation.number_in("celu", "alpha", alpha, 0.0, float("inf"))
    if alpha == 0.0:
        raise ValueError("celu: alpha must be > 0 (x is divided by it); got 0.0")
    return jax.nn.celu(jnp.asarray(x), alpha)


def softsign(x):
    """x / (|x| + 1)."""
    return jax.nn.soft_sign(jnp.asarray(x))


def hard_sigmoid(x):
    """relu6(x + 3) / 6 (Keras 3's keras.activations.hard_sigmoid is jax.nn.hard_sigmoid)."""
    return jax.nn.hard_sigmoid(jnp.asarray(x))


def hard_silu(x):
    """x hard_sigmoid(x)."""
    return jax.nn.hard_silu(jnp.asarray(x))


def hard_swish(x):
    """x hard_sigmoid(x)."""
    return jax.nn.hard_swish(jnp.asarray(x))


def mish(x):
    """x tanh(softplus(x))."""
    return jax.nn.mish(jnp.asarray(x))


def relu6(x):
    """min(max(x, 0), 6) with relu6'(0) = relu6'(6) = 0 (jax.nn.relu6's custom jvp)."""
    return jax.nn.relu6(jnp.asarray(x))


def log_sigmoid(x):
    """-softplus(-x)."""
    return jax.nn.log_sigmoid(jnp.asarray(x))


def prelu(x, alpha):
    """x for x >= 0, alpha x otherwise (flax's PReLU formula), alpha broadcast against x."""
    x = jnp.asarray(x)
    alpha = jnp.asarray(alpha, x.dtype)
    if jnp.broadcast_shapes(x.shape, alpha.shape) != x.shape:
        raise ValueError(f"prelu: alpha with shape {alpha.shape} must broadcast to x's shape {x.shape} (NumPy's "
                         f"rule, without growing x)")
    return jnp.where(x >= 0, x, alpha * x)


def logsumexp(x, axis: int = -1, keepdims: bool = False):
    """log sum_i e^{x_i} over ``axis`` (stable)."""
    return jax.nn.logsumexp(jnp.asarray(x), axis=axis, keepdims=keepdims)


def log_softmax(x, axis: int = -1):
    """x_i - logsumexp(x)."""
    return jax.nn.log_softmax(jnp.asarray(x), axis=axis)


def softmax(x, axis: int = -1):
    """e^{x_i} / sum_j e^{x_j}."""
    return jax.nn.softmax(jnp.asarray(x), axis=axis)


def dense(x, kernel, bias=None):
    """y = x @ kernel + bias, kernel of shape (in, out)."""
    x, kernel = jnp.asarray(x), jnp.asarray(kernel)
    if kernel.ndim != 2 or x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"dense: input has shape {x.shape} and kernel has shape {kernel.shape}; the kernel must "
                         f"be (in, out) with in = the input's last axis")
    y = jnp.matmul(x, kernel, precision=jax.lax.Precision.HIGHEST)
    return y if bias is None else y + jnp.asarray(bias)


def prng_key(seed):
    """A JAX PRNG key from an int seed, a NumPy Generator (one draw) or a key (returned as is); None draws one."""
    if seed is None:
        seed = int(np.random.default_rng().integers(2**31))
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**31))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return jax.random.key(int(seed))
    if isinstance(seed, jax.Array):
        return seed
    raise TypeError(f"dropout: seed must be an int, a numpy Generator, a JAX PRNG key or None; got {seed!r}")


def dropout(x, rate: float, training: bool, seed=None):
    """Inverted dropout: zero each element with probability ``rate``, scale the rest by 1/(1-rate).

    Identity when not training; ``rate = 1`` gives zeros (zero gradient). The
    mask comes from the JAX key derived from ``seed`` (so it is reproducible
    but is *not* the engine's NumPy mask for the same seed).
    """
    x = jnp.asarray(x)
    rate = validation.number_in("dropout", "rate", rate, 0.0, 1.0)
    if not training or rate == 0.0:
        return x
    if rate >= 1.0:
        return jnp.zeros_like(x)
    keep = jax.random.bernoulli(prng_key(seed), 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def resize(x, size, interpolation="bilinear", data_format="channels_last"):
    """``jax.image.resize`` of the spatial axes to ``size`` without antialiasing (what Keras' ``ops.image.resize``
    calls on JAX); ``"bilinear"`` is jax's ``"linear"`` method (half-pixel centres)."""
    x = jnp.asarray(x)
    fmt = validation.data_format("resize", data_format)
    validation.rank("resize", "x", x.shape, (3, 4, 5))
    size = validation.int_tuple("resize", "size", size, x.ndim - 2)
    method = {"nearest": "nearest", "bilinear": "linear"}[
        validation.choice("resize", "interpolation", interpolation, ("nearest", "bilinear"))]
    shape = (x.shape[0], *size, x.shape[-1]) if fmt == "channels_last" else x.shape[:2] + size
    return jax.image.resize(x, shape, method=method, antialias=False)


def _document():
    from tinygrad_cnn import functional

    for name in __all__:
        take_engine_args(globals()[name], getattr(functional, name))


_document()
