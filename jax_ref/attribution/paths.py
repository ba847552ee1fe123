"""Gradient integrals over other paths and baselines: GradientSHAP (expected gradients) and blur IG.

Both evaluate their gradients as ``Staged`` batches like integrated gradients (``batch_size`` images at a time,
all at once when None), from the same batched input gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution import _net, _sharding
from jax_ref.attribution.gradients import _batch_size, _input_grads, check_seed
from jax_ref.attribution.layers import spatial_axes
from tinygrad_cnn import validation

__all__ = ["blur_ig", "gradient_shap"]


def _baseline_distribution(fn: str, baselines, xb) -> np.ndarray:
    """``(K,) + image shape``: None -> one zero image, a scalar -> one constant image, one image -> K = 1."""
    image = xb.shape[1:]
    if baselines is None:
        return np.zeros((1,) + image, xb.dtype)
    b = np.asarray(baselines, xb.dtype)
    if b.ndim == 0:
        return np.full((1,) + image, b, xb.dtype)
    if b.shape == image:
        return b[None]
    if b.ndim == len(image) + 1 and b.shape[1:] == image and b.shape[0] > 0:
        return b
    raise ValueError(f"{fn}: baselines must be None, a scalar, one image of shape {image} or a distribution of K "
                     f"images (K,) + {image}; got shape {b.shape}")


def shap_draws(seed, stdevs, n: int, b: int, k: int, image: tuple, dtype):
    """GradientSHAP's random draws for ``b`` images, ``n`` samples each (sample-major ``(n, b, ...)``), from
    ``k1, k2, k3 = split(PRNGKey(seed), 3)``: the noise ``stdevs * normal(k1, (n, b) + image)``, the baseline
    indices ``randint(k2, (n, b), 0, k)`` and the interpolation ``alpha = uniform(k3, (n, b))``."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    eps = stdevs * jax.random.normal(k1, (n, b) + image, dtype)
    return eps, jax.random.randint(k2, (n, b), 0, k), jax.random.uniform(k3, (n, b), dtype)


def _shap_fn(net, score, n):
    grads = _input_grads(net, score)

    def prepare(params, xb, bases, targets, seed, stdevs):
        targets = _net.resolve_targets(net, params, xb, targets)
        b, image = xb.shape[0], xb.shape[1:]
        eps, idx, alpha = shap_draws(seed, stdevs, n, b, bases.shape[0], image, xb.dtype)
        noisy, base = xb[None] + eps, bases[idx]
        alpha = alpha.reshape((n, b) + (1,) * len(image))
        points = alpha * noisy + (1 - alpha) * base  # captum's _scale_input
        return points.reshape((n * b,) + image), jnp.tile(targets, n), noisy - base

    def finish(params, diff, g):
        return (diff * g.reshape(diff.shape)).mean(axis=0)

    return _sharding.Staged(prepare, grads, finish)


def gradient_shap(model, x, target=None, baselines=None, n_samples: int = 5, stdevs: float = 0.0, seed: int = 0,
                  batch_size: int | None = None, score: str = "logit"):
    """GradientSHAP (expected gradients; captum's ``GradientShap``): ``(1/n) sum_k (x_k - b_k) * dS(b_k + a_k
    (x_k - b_k))/dx`` over ``n = n_samples`` samples per image, with ``x_k = x + eps_k``, ``eps_k ~ N(0, stdevs^2)``
    per cell (an absolute standard deviation, as captum's), ``b_k`` drawn uniformly from the ``K`` baselines
    and ``a_k ~ U(0, 1)``; the draws are ``shap_draws`` (seeded: same seed and shapes, same result). The
    interpolated point is computed as captum's, ``a x_k + (1 - a) b_k``. With ``stdevs = 0`` the expectation
    over ``a`` is integrated gradients from ``b``, so in expectation the attributions sum to ``S(x) - E_b[S(b)]``
    (a Monte-Carlo estimate of it: the error falls as ``1 / sqrt(n)``).

    captum draws from NumPy's and torch's global generators, one sample layout ``(B, n)``; fed the same draws
    it gives the same numbers (the tests check it).

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        target: class id, one per image, or None (default: the predicted class).
        baselines: None (one zero image), a scalar, one image or ``K`` images ``(K, H, W, C)``.
        n_samples: positive int, default 5 (captum's).
        stdevs: float >= 0, default 0.0 (captum's): the input noise's standard deviation.
        seed: int in [0, 2**32), default 0.
        batch_size: int or None (default, all at once): images per gradient evaluation.
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.

    Returns:
        A NumPy array shaped like ``x``.
    """
    fn = "gradient_shap"
    net, params = _net.as_net(model)
    score = _net.check_score(fn, score)
    n = validation.positive_int(fn, "n_samples", n_samples)
    stdevs = validation.number_in(fn, "stdevs", stdevs, 0.0, float("inf"))
    check_seed(fn, seed)
    batch_size = _batch_size(fn, batch_size)
    xb, single = _net.prepare(fn, net, x, params)
    bases = _baseline_distribution(fn, baselines, xb)
    targets = _net.targets_for(fn, net, params, xb, target)
    run = net.jit((fn, score, n), lambda: _shap_fn(net, score, n))
    out = run(params, xb, bases, targets, np.uint32(seed), np.asarray(stdevs, xb.dtype), batch_size=batch_size)
    return _net.finish(out, single)


def blur_sigmas(max_sigma: float, steps: int, sqrt: bool) -> np.ndarray:
    """PAIR's ``steps + 1`` blur levels: ``sigma_i = i * max_sigma / steps`` (``sqrt``: its square root)."""
    sigmas = np.arange(steps + 1) * float(max_sigma) / steps
    return np.sqrt(sigmas) if sqrt else sigmas


def blur_matrices(n: int, sigmas) -> np.ndarray:
    """``(S, n, n)``: ``M_s @ v`` is ``scipy.ndimage.gaussian_filter1d(v, sigma_s, mode="constant")`` (zeros
    outside, scipy's kernel ``exp(-d^2 / (2 sigma^2))`` normalised over ``|d| <= r = int(4 sigma + 0.5)``), the
    identity for ``sigma = 0`` (PAIR's ``gaussian_blur``)."""
    sig = np.asarray(sigmas, np.float64).reshape(-1, 1, 1)
    radius = np.floor(4.0 * sig + 0.5)
    safe = np.where(sig > 0, sig, 1.0)
    d = np.arange(n)[None, :] - np.arange(n)[:, None]
    reach = np.arange(-radius.max(), radius.max() + 1)  # the whole kernel, also beyond the image
    norm = (np.exp(-0.5 * (reach / safe) ** 2) * (np.abs(reach) <= radius)).sum(axis=-1, keepdims=True)
    kernel = np.exp(-0.5 * (d / safe) ** 2) * (np.abs(d) <= radius) / norm
    return np.where(sig > 0, kernel, np.eye(n))


@functools.lru_cache(maxsize=16)
def _path_matrices(sizes: tuple, max_sigma: float, steps: int, grad_step: float, sqrt: bool, dtype: str):
    """The blur matrices of the path's steps and of the steps ``grad_step`` ahead, per spatial axis, and the
    weights ``(sigma_{i+1} - sigma_i) / grad_step`` (cached: the same for every call with these options)."""
    sigmas = blur_sigmas(max_sigma, steps, sqrt)
    mats, ahead = (tuple(jnp.asarray(blur_matrices(n, sigmas[:-1] + shift), dtype) for n in sizes)
                   for shift in (0.0, grad_step))
    return mats, ahead, jnp.asarray(np.diff(sigmas) / grad_step, dtype)


def _blur(xb, mats, axes):
    """``(S, B, ...)``: ``xb`` blurred along each spatial axis ``a`` by the ``(S, n_a, n_a)`` matrices."""
    out = jnp.broadcast_to(xb[None], (mats[0].shape[0],) + xb.shape)
    for m, a in zip(mats, axes, strict=True):
        moved = jnp.moveaxis(out, a + 1, -1)
        out = jnp.moveaxis(jnp.einsum("sij,s...j->s...i", m, moved), -1, a + 1)
    return out


def _blur_ig_fn(net, score, axes):
    grads = _input_grads(net, score)

    def prepare(params, xb, targets, mats, mats_ahead, weights):
        targets = _net.resolve_targets(net, params, xb, targets)
        path = _blur(xb, mats, axes)
        velocity = (_blur(xb, mats_ahead, axes) - path) * weights.reshape((-1,) + (1,) * xb.ndim)
        return path.reshape((-1,) + xb.shape[1:]), jnp.tile(targets, path.shape[0]), velocity

    def finish(params, velocity, g):
        return -(velocity * g.reshape(velocity.shape)).sum(axis=0)

    return _sharding.Staged(prepare, grads, finish)


def blur_ig(model, x, target=None, max_sigma: float = 50.0, steps: int = 100, grad_step: float = 0.01,
            sqrt: bool = False, batch_size: int | None = None, score: str = "logit"):
    """Blur integrated gradients (Xu et al. 2020; PAIR saliency's ``BlurIG.GetMask``), integrating from the
    image blurred at ``max_sigma`` back to the image itself.

    With ``L(s)`` the image Gaussian-blurred with standard deviation ``s`` along its spatial axes (each image
    and channel separately, zeros outside the image, kernel truncated at 4 sigma: ``scipy.ndimage``'s
    ``gaussian_filter(mode="constant")`` as PAIR's), ``sigma_i`` as ``blur_sigmas`` (``i = 0..steps``)::

        attr = -sum_{i < steps} (sigma_{i+1} - sigma_i) * (L(sigma_i + grad_step) - L(sigma_i)) / grad_step
               * dS(L(sigma_i))/dx

    a left Riemann sum of ``int_{max_sigma}^0 dS/dx * dL/ds ds`` with PAIR's finite-difference ``dL/ds``. The
    ``steps`` gradients are one batched evaluation. Approximate completeness: the sum is near ``S(x) -
    S(L(max_sigma))``, up to the quadrature and the finite difference. PAIR multiplies every gradient of a
    batch by the last step's ``sigma`` spacing (the same unless ``sqrt=True`` with ``batch_size > 1``); ours
    uses each step's own.

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        target: class id, one per image, or None (default: the predicted class).
        max_sigma: float > 0, default 50 (PAIR's): the blur at the path's start, in pixels.
        steps: positive int, default 100 (PAIR's).
        grad_step: float > 0, default 0.01 (PAIR's): the finite-difference step in sigma.
        sqrt: bool, default False (PAIR's ``sqrt``: ``sigma_i = sqrt(i * max_sigma / steps)``).
        batch_size: int or None (default, all at once): images per gradient evaluation.
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.

    Returns:
        A NumPy array shaped like ``x``.
    """
    fn = "blur_ig"
    net, params = _net.as_net(model)
    score = _net.check_score(fn, score)
    max_sigma = validation.number_in(fn, "max_sigma", max_sigma, 0.0, float("inf"))
    if max_sigma == 0:
        raise ValueError(f"{fn}: max_sigma must be > 0; got {max_sigma!r}")
    steps = validation.positive_int(fn, "steps", steps)
    grad_step = validation.number_in(fn, "grad_step", grad_step, 0.0, float("inf"))
    if grad_step == 0:
        raise ValueError(f"{fn}: grad_step must be > 0; got {grad_step!r}")
    sqrt = validation.boolean(fn, "sqrt", sqrt)
    batch_size = _batch_size(fn, batch_size)
    xb, single = _net.prepare(fn, net, x, params)
    targets = _net.targets_for(fn, net, params, xb, target)
    axes = spatial_axes(xb.ndim, net.data_format)
    mats, ahead, weights = _path_matrices(tuple(xb.shape[a] for a in axes), max_sigma, steps, grad_step, sqrt,
                                          np.dtype(xb.dtype).str)
    run = net.jit((fn, score, axes), lambda: _blur_ig_fn(net, score, axes))
    return _net.finish(run(params, xb, targets, mats, ahead, weights, batch_size=batch_size), single)

