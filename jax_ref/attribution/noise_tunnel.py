"""``noise_tunnel``: any attribution method averaged over noisy copies of the input (SmoothGrad for all)."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution import _net, _noise
from jax_ref.attribution.gradients import KINDS, add_noise, check_seed, reduce_samples
from tinygrad_cnn import validation

__all__ = ["noise_tunnel"]


def noise_tunnel(method, model, x, target=None, n: int = 50, noise_level: float = 0.15, kind: str = "mean",
                 seed: int = 0, **method_args):
    """``method`` (any attribution function of this package taking ``(model, x, target=..., ...)``) on ``n``
    noisy copies of each image, reduced over the copies.

    The copies are SmoothGrad's, bit for bit: ``x + eps_k``, ``eps_k ~ N(0, sigma^2)`` with ``sigma =
    noise_level * (max(x) - min(x))`` per image, all from ``normal(PRNGKey(seed), (n, B) + image shape)``, so
    ``noise_tunnel(saliency, ...)`` is ``smoothgrad(...)`` and ``noise_tunnel(integrated_gradients, ...)`` is
    SmoothGrad-IG. ``kind``: ``"mean"`` ``(1/n) sum_k m_k``, ``"squared"`` ``(1/n) sum_k m_k^2``, ``"vargrad"``
    their population variance, ``m_k`` the method's result on copy ``k``. ``target=None`` is the predicted class
    of the clean image, used for every copy. The ``n * B`` copies go to ``method`` as one batch; ``method_args``
    are passed on (an array argument must fit that batch, e.g. a baseline of one image's shape).

    captum's ``NoiseTunnel`` takes an absolute ``stdevs``: ours is ``stdevs = noise_level * (max(x) - min(x))``
    (PAIR saliency's ``stdev_spread``); its ``smoothgrad`` / ``smoothgrad_sq`` / ``vargrad`` are our kinds.
    """
    fn = "noise_tunnel"
    if not callable(method) or "target" not in inspect.signature(method).parameters:
        raise ValueError(f"{fn}: method must be an attribution function taking (model, x, target=...), e.g. "
                         f"jax_ref.attribution.saliency; got {method!r}")
    n = validation.positive_int(fn, "n", n)
    noise_level = validation.number_in(fn, "noise_level", noise_level, 0.0, float("inf"))
    kind = validation.choice(fn, "kind", kind, KINDS)
    check_seed(fn, seed)
    net, params = _net.as_net(model)
    xb, single = _net.prepare(fn, net, x, params)
    targets = _net.targets_for(fn, net, params, xb, target)

    def build():
        def copies(params, xb, targets, u, level):
            t = _net.resolve_targets(net, params, xb, targets)
            return add_noise(xb, _noise.to_normal(u), level), jnp.tile(t, n)
        return jax.jit(copies)

    u = _noise.uniform_for_normal(seed, (n,) + xb.shape, xb.dtype)
    noisy, tiled = net.jit(("noise_tunnel", n), build)(params, xb, targets, u, np.asarray(noise_level, xb.dtype))
    maps = np.asarray(method(model, np.asarray(noisy), target=np.asarray(tiled), **method_args))
    out = np.asarray(reduce_samples(maps.reshape((n, xb.shape[0]) + maps.shape[1:]), kind))
    return out[0] if single else out
