"""Metrics of an explanation: captum's infidelity and sensitivity_max, and deletion / insertion curves.

Each evaluates many perturbed copies of the images as one batched forward pass (or one call of the method) and
returns one number per image (``(B,)``, a scalar for one image). The score is the target logit by default
(``score="probability"`` for its softmax probability), the target the predicted class unless given.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution import _net
from jax_ref.attribution.gradients import check_seed
from jax_ref.attribution.layers import channel_axis
from tinygrad_cnn import validation

__all__ = ["deletion_curve", "infidelity", "insertion_curve", "sensitivity_max"]


def _setup(fn, model, x, target, score):
    net, params = _net.as_net(model)
    score = _net.check_score(fn, score)
    xb, single = _net.prepare(fn, net, x, params)
    targets = _net.targets_for(fn, net, params, xb, target)
    return net, params, xb, single, targets, score


def _attr_batch(fn, attributions, xb, single):
    a = np.asarray(attributions, xb.dtype)
    a = a[None] if single else a
    if a.shape != xb.shape:
        raise ValueError(f"{fn}: attributions must be shaped like x {tuple(xb.shape[1:] if single else xb.shape)}; got "
                         f"{np.shape(attributions)}")
    return a


def infidelity(model, x, attributions, target=None, n: int = 10, noise_scale: float = 0.003,
               normalize: bool = False, seed: int = 0, score: str = "logit"):
    """captum's ``infidelity``: ``E_I[(sum(I * a) - (S(x) - S(x - I)))^2]`` over ``n`` perturbations
    ``I ~ N(0, noise_scale^2)`` per cell (captum's documented Gaussian ``perturb_func``; all from
    ``normal(PRNGKey(seed), (n, B) + image shape)``), a Monte-Carlo mean. ``normalize=True`` first scales ``a``
    by captum's ``beta = E[sum(I a) dS] / E[sum(I a)^2]``, the best scale, so only the map's shape counts.
    0 for a model linear in ``x`` explained by its gradient."""
    fn = "infidelity"
    net, params, xb, single, targets, score = _setup(fn, model, x, target, score)
    n = validation.positive_int(fn, "n", n)
    validation.number_in(fn, "noise_scale", noise_scale, 0.0, float("inf"))
    a = _attr_batch(fn, attributions, xb, single)
    s = _net.score_fn(net, score)

    def build():
        def run(params, xb, a, targets, seed, scale):
            t = _net.resolve_targets(net, params, xb, targets)
            noise = scale * jax.random.normal(jax.random.PRNGKey(seed), (n,) + xb.shape, xb.dtype)
            b = xb.shape[0]
            drop = s(params, xb, t)[None] - s(params, (xb[None] - noise).reshape((n * b,) + xb.shape[1:]),
                                              jnp.tile(t, n)).reshape(n, b)
            dot = (noise * a[None]).reshape(n, b, -1).sum(-1)
            beta = (dot * drop).mean(0) / jnp.maximum((dot * dot).mean(0), 1e-30) if normalize else 1.0
            return ((beta * dot - drop) ** 2).mean(0)
        return jax.jit(run)

    out = net.jit((fn, n, bool(normalize), score), build)(params, xb, a, targets, np.uint32(check_seed(fn, seed)),
                                                          np.asarray(noise_scale, xb.dtype))
    return _net.finish(out, single)


def sensitivity_max(method, model, x, target=None, n: int = 10, radius: float = 0.02, seed: int = 0,
                    **method_args):
    """captum's ``sensitivity_max``: ``max_k ||m(x + d_k) - m(x)|| / ||m(x)||`` (Frobenius norms over each
    image's map; the plain difference norm where ``||m(x)|| = 0``, as captum) for ``n`` perturbations ``d_k``
    uniform in ``[-radius, radius]`` per cell (captum's default ``perturb_func``, radius 0.02; all from
    ``uniform(PRNGKey(seed), (n, B) + image shape)``). ``m`` is ``method(model, ., target=...)`` with
    ``method_args``; the target is fixed to the clean image's (predicted) class, and the ``n * B`` perturbed
    copies go to the method as one batch."""
    fn = "sensitivity_max"
    if not callable(method):
        raise ValueError(f"{fn}: method must be an attribution function, e.g. jax_ref.attribution.saliency; got "
                         f"{method!r}")
    n = validation.positive_int(fn, "n", n)
    validation.number_in(fn, "radius", radius, 0.0, float("inf"))
    net, params, xb, single, targets, _ = _setup(fn, model, x, target, "logit")
    t = np.asarray(net.jit(("predicted",), lambda: jax.jit(lambda p, xb, t: _net.resolve_targets(net, p, xb, t)))(
        params, xb, targets))
    d = jax.random.uniform(jax.random.PRNGKey(check_seed(fn, seed)), (n,) + xb.shape, xb.dtype, -radius, radius)
    base = np.asarray(method(model, xb, target=t, **method_args))
    moved = np.asarray(method(model, np.asarray((xb[None] + d).reshape((-1,) + xb.shape[1:])),
                              target=np.tile(t, n), **method_args)).reshape((n,) + base.shape)
    b = xb.shape[0]
    diff = np.sqrt(((moved - base[None]) ** 2).reshape(n, b, -1).sum(-1))
    norm = np.sqrt((base**2).reshape(b, -1).sum(-1))
    out = (diff / np.where(norm == 0, 1, norm)).max(0)  # captum divides by 1 where the map is 0
    return out[0] if single else out


def _curve(fn, model, x, attributions, target, steps, baseline, score, insert):
    net, params, xb, single, targets, score = _setup(fn, model, x, target, score)
    steps = validation.positive_int(fn, "steps", steps)
    a = _attr_batch(fn, attributions, xb, single)
    c = channel_axis(net.data_format) % xb.ndim
    s = _net.score_fn(net, score)

    def build():
        def run(params, xb, a, targets, baseline):
            t = _net.resolve_targets(net, params, xb, targets)
            rank_map = a.sum(axis=c)  # (B, *spatial)
            b, cells = rank_map.shape[0], rank_map[0].size
            order = jnp.argsort(-rank_map.reshape(b, -1), axis=1, stable=True)
            rank = jnp.argsort(order, axis=1).reshape(rank_map.shape)  # position of each cell in the order
            counts = jnp.round(jnp.arange(steps + 1) * cells / steps).astype(rank.dtype)
            first = rank[None] < counts.reshape((-1,) + (1,) * rank.ndim)  # (steps+1, B, *spatial)
            keep_x = ~first if not insert else first
            keep_x = jnp.expand_dims(keep_x, c + 1)
            imgs = jnp.where(keep_x, xb[None], jnp.asarray(baseline, xb.dtype))
            scores = s(params, imgs.reshape((-1,) + xb.shape[1:]), jnp.tile(t, steps + 1)).reshape(steps + 1, b).T
            auc = ((scores[:, 1:] + scores[:, :-1]) / 2).mean(axis=1)
            return scores, auc
        return jax.jit(run)

    scores, auc = net.jit((fn, steps, score), build)(params, xb, a, targets, np.asarray(baseline, xb.dtype))
    return _net.finish(scores, single), _net.finish(auc, single)


def deletion_curve(model, x, attributions, target=None, steps: int = 16, baseline: float = 0.0,
                   score: str = "probability"):
    """Deletion (Petsiuk et al. 2018, RISE): the score as the cells are set to ``baseline`` in attribution order.

    Cells (spatial positions, all channels together) are ranked by the attribution summed over channels, largest
    first (ties by index). Step ``k = 0..steps`` removes the first ``round(k * cells / steps)``. Returns
    ``(scores, auc)``: ``(B, steps + 1)`` scores and the area under the curve over the removed fraction in
    [0, 1] by the trapezoid rule (lower is better: the map found what the score needs). The score is the
    softmax probability by default, as in the paper."""
    return _curve("deletion_curve", model, x, attributions, target, steps, baseline, score, insert=False)


def insertion_curve(model, x, attributions, target=None, steps: int = 16, baseline: float = 0.0,
                    score: str = "probability"):
    """Insertion: from the ``baseline`` image, the cells of ``x`` put back in attribution order (as
    ``deletion_curve``; higher area is better)."""
    return _curve("insertion_curve", model, x, attributions, target, steps, baseline, score, insert=True)
