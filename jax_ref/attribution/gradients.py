"""Gradient-based attribution: saliency, SmoothGrad (mean / squared / vargrad), integrated gradients.

All three differentiate the score ``S(x)`` (the target logit, or its softmax
probability with ``score="probability"``) with respect to the input. Many
inputs are evaluated as one batch: since images do not interact in inference
mode, ``d/dX sum_i S(X_i) = [dS(X_i)/dX_i]_i``, so one batched forward and
backward gives every per-image gradient (no per-sample Python loop, no vmap
of a batch-1 graph). ``batch_size`` bounds how many images are in flight at
once (a loop over chunks of a compiled batched gradient); with several devices
every batch is sharded across them (see ``_sharding``). Compiled functions are cached per model and
per static option, so repeated calls with the same shapes do not recompile.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution import _net, _noise, _sharding
from tinygrad_cnn import validation

__all__ = ["completeness", "input_x_gradient", "integrated_gradients", "saliency", "smoothgrad"]

KINDS = ("mean", "squared", "vargrad")


def _batch_size(fn: str, batch_size):
    return None if batch_size is None else validation.positive_int(fn, "batch_size", batch_size)


def _input_grads(net, score: str, relu=None):
    """``g(params, xs, targets) -> dS/dxs``, one batched forward + backward (``relu``: as ``Net.forward``, the
    rule of guided backprop / deconvnet)."""
    s = _net.score_fn(net, score, relu)
    return lambda params, xs, targets: jax.grad(lambda z: s(params, z, targets).sum())(xs)


def input_gradient(fn_name: str, model, x, target, score: str, relu=None, times_input: bool = False):
    """``dS/dx`` (``times_input``: ``x * dS/dx``) with ReLU's backward replaced by ``relu`` if given (a
    ``jax.custom_vjp`` function, one object per rule so the compiled function is cached per rule)."""
    net, params = _net.as_net(model)
    score = _net.check_score(fn_name, score)
    xb, single = _net.prepare(fn_name, net, x, params)
    targets = _net.targets_for(fn_name, net, params, xb, target)

    def build():
        grads = _input_grads(net, score, relu)
        return jax.jit(lambda p, xb, t: (xb if times_input else 1) * grads(p, xb, _net.resolve_targets(net, p, xb, t)))

    fn = net.jit(("input_gradient", score, relu, times_input), build)
    return _net.finish(fn(params, xb, targets), single)


def saliency(model, x, target=None, score: str = "logit"):
    """The gradient of the score with respect to the input: ``dS_target(x) / dx``, shaped like ``x``.

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        target: class id, one per image, or None (default: the predicted class).
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.

    Returns:
        A NumPy array shaped like ``x`` (signed, not normalised).
    """
    return input_gradient("saliency", model, x, target, score)


def input_x_gradient(model, x, target=None, score: str = "logit"):
    """Input times gradient, ``x * dS_target(x)/dx`` elementwise, shaped like ``x`` (captum's ``InputXGradient``,
    PAIR's and tf-keras-vis' "gradient x input"; for a model that is linear in ``x`` with no bias it sums to the
    score)."""
    return input_gradient("input_x_gradient", model, x, target, score, times_input=True)


def add_noise(xb, eps, level):
    """``(n * B, ...)``: ``x_b + sigma_b eps_k,b`` for the standard normal ``eps`` ``(n, B) + image shape``,
    ``sigma_b = level * (max(x_b) - min(x_b))``; sample-major. SmoothGrad's ``eps`` is
    ``normal(PRNGKey(seed), (n, B) + image shape)``, its costly part drawn once and kept (see ``_noise``)."""
    b, rest = xb.shape[0], xb.shape[1:]
    flat = xb.reshape(b, -1)
    sigma = (level * (flat.max(axis=1) - flat.min(axis=1))).reshape((1, b) + (1,) * len(rest))
    return (xb[None] + sigma.astype(xb.dtype) * eps).reshape((-1,) + rest)


def reduce_samples(g, kind: str):
    """The ``(n, ...)`` samples reduced over axis 0: their mean, the mean of their squares, or their population
    variance (``kind`` mean / squared / vargrad)."""
    return g.var(axis=0) if kind == "vargrad" else (g * g if kind == "squared" else g).mean(axis=0)


def check_seed(fn_name: str, seed) -> int:
    if not validation.is_int(seed) or not 0 <= seed < 2**32:
        raise ValueError(f"{fn_name}: seed must be an int in [0, 2**32); got {seed!r}")
    return int(seed)


def _smoothgrad_fn(net, score, n, kind):
    grads = _input_grads(net, score)

    def prepare(params, xb, targets, u, level):
        targets = _net.resolve_targets(net, params, xb, targets)
        return add_noise(xb, _noise.to_normal(u), level), jnp.tile(targets, n), None

    def finish(params, ctx, g):
        return reduce_samples(g.reshape((n, -1) + g.shape[1:]), kind)

    return _sharding.Staged(prepare, grads, finish)


def _smoothgrad_options(fn_name, net, score, n, noise_level, kind, seed, batch_size):
    """``(compiled, n, batch_size)`` for SmoothGrad's options, each checked (``noise_level`` and ``seed`` too)."""
    score = _net.check_score(fn_name, score)
    n = validation.positive_int(fn_name, "n", n)
    validation.number_in(fn_name, "noise_level", noise_level, 0.0, float("inf"))
    kind = validation.choice(fn_name, "kind", kind, KINDS)
    batch_size = _batch_size(fn_name, batch_size)
    check_seed(fn_name, seed)
    return net.jit(("smoothgrad", score, n, kind), lambda: _smoothgrad_fn(net, score, n, kind)), n, batch_size


def smoothgrad(model, x, target=None, n: int = 50, noise_level: float = 0.15, kind: str = "mean", seed: int = 0,
               batch_size: int | None = None, score: str = "logit"):
    """SmoothGrad: statistics of the gradient over ``n`` noisy copies of each image.

    ``g_k = dS(x + eps_k)/dx`` with ``eps_k ~ N(0, sigma^2 I)`` i.i.d., ``sigma =
    noise_level * (max(x) - min(x))`` computed per image (over all its cells).
    ``kind="mean"``: ``(1/n) sum_k g_k``; ``"squared"``: ``(1/n) sum_k g_k^2``;
    ``"vargrad"``: the population variance ``(1/n) sum_k (g_k - mean)^2`` (two-pass).
    All the noise comes from one key: ``eps = jax.random.normal(PRNGKey(seed),
    (n, B) + image shape)`` (same seed and batch shape, bit-identical result);
    the ``n * B`` noisy images are differentiated as batches of
    ``batch_size`` images (all at once when None). ``noise_level=0`` gives the
    saliency map (``kind="mean"``).

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        target: class id, one per image, or None (default: the predicted class).
        n: positive int, default 50: the number of noisy copies.
        noise_level: float >= 0, default 0.15: sigma as a fraction of the image's value range.
        kind: ``"mean"`` (default), ``"squared"`` or ``"vargrad"``.
        seed: int in [0, 2**32), default 0.
        batch_size: int or None (default, all at once): images per gradient evaluation.
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.

    Returns:
        A NumPy array shaped like ``x``.
    """
    fn_name = "smoothgrad"
    net, params = _net.as_net(model)
    # the common call looks its checked options and compiled function up (only options that passed every check
    # are kept; the types in the key keep True from passing as 1), then checks the per-call numbers alone
    simple = (type(n) is int and type(score) is str and type(kind) is str and type(batch_size) in (type(None), int))
    kept = net._jits.get(("smoothgrad call", score, n, kind, batch_size)) if simple else None
    if kept is None:
        kept = _smoothgrad_options(fn_name, net, score, n, noise_level, kind, seed, batch_size)
        if simple:
            net._jits["smoothgrad call", score, n, kind, batch_size] = kept
    else:
        if not (type(noise_level) is float and 0.0 <= noise_level < float("inf")):
            noise_level = validation.number_in(fn_name, "noise_level", noise_level, 0.0, float("inf"))
        if not (type(seed) is int and 0 <= seed < 2**32):
            check_seed(fn_name, seed)
    fn, n, batch_size = kept
    xb, single = _net.prepare(fn_name, net, x, params)
    targets = _net.targets_for(fn_name, net, params, xb, target)
    u = _noise.uniform_for_normal(seed, (n,) + xb.shape, xb.dtype)
    out = fn(params, xb, targets, u, np.asarray(noise_level, xb.dtype), batch_size=batch_size)
    return _net.finish(out, single)


def _baseline(fn: str, baseline, xb):
    if baseline is None:
        return np.zeros_like(xb)
    b = np.asarray(baseline, xb.dtype)
    try:
        return np.broadcast_to(b, xb.shape)
    except ValueError:
        raise ValueError(f"{fn}: baseline of shape {b.shape} does not broadcast to the input batch "
                         f"{tuple(xb.shape)}") from None


def _ig_fn(net, score, steps):
    grads = _input_grads(net, score)

    def prepare(params, xb, base, targets):
        targets = _net.resolve_targets(net, params, xb, targets)
        alphas = jnp.linspace(0.0, 1.0, steps + 1, dtype=xb.dtype).reshape((steps + 1,) + (1,) * xb.ndim)
        path = (base[None] + alphas * (xb - base)[None]).reshape((-1,) + xb.shape[1:])
        return path, jnp.tile(targets, steps + 1), (xb, base)

    def finish(params, ctx, g):
        xb, base = ctx
        weights = jnp.full((steps + 1,), 1.0 / steps, xb.dtype).at[jnp.array([0, steps])].multiply(0.5)
        return (xb - base) * jnp.tensordot(weights, g.reshape((steps + 1,) + xb.shape), axes=1)

    return _sharding.Staged(prepare, grads, finish)


def integrated_gradients(model, x, target=None, baseline=None, steps: int = 50, batch_size: int | None = None,
                         score: str = "logit"):
    """Integrated gradients ``(x - x') * int_0^1 dS(x' + a (x - x'))/dx da`` by the trapezoid rule.

    The integral is ``sum_{k=0..steps} w_k g(a_k)`` with ``a_k = k / steps``,
    ``w_k = 1/steps`` and half that at both ends (``steps + 1`` gradients, one
    batched evaluation). ``baseline`` ``x'`` defaults to zeros (a scalar or an
    array broadcasting to ``x``). Completeness: the attributions of an image
    sum to ``S(x) - S(x')`` up to the quadrature error, see ``completeness``. captum's
    ``IntegratedGradients(method="riemann_trapezoid", n_steps=steps + 1)`` is this times ``steps / (steps + 1)``
    (the same points, weights ``1 / (steps + 1)`` that sum to less than 1); its default Gauss-Legendre differs.

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        target: class id, one per image, or None (default: the predicted class).
        baseline: None (zeros), a scalar or an array broadcasting to ``x``.
        steps: positive int, default 50: trapezoid intervals.
        batch_size: int or None (default, all at once).
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.

    Returns:
        A NumPy array shaped like ``x``.
    """
    fn_name = "integrated_gradients"
    net, params = _net.as_net(model)
    score = _net.check_score(fn_name, score)
    steps = validation.positive_int(fn_name, "steps", steps)
    batch_size = _batch_size(fn_name, batch_size)
    xb, single = _net.prepare(fn_name, net, x, params)
    base = _baseline(fn_name, baseline, xb)
    targets = _net.targets_for(fn_name, net, params, xb, target)
    fn = net.jit(("ig", score, steps), lambda: _ig_fn(net, score, steps))
    return _net.finish(fn(params, xb, base, targets, batch_size=batch_size), single)


def completeness(model, x, attributions, target=None, baseline=None, score: str = "logit"):
    """Integrated gradients' completeness check, per image.

    Returns ``(total, delta, rel_gap)`` arrays (one entry per image, scalars for
    one image): ``total = sum(attributions)``, ``delta = S(x) - S(x')`` and
    ``rel_gap = |total - delta| / max(|delta|, 1e-6)``. The gap is the
    quadrature error of the trapezoid rule (ReLU kinks along the path make it
    first order). Measured on the trained shapes CNN (``quality.py``, 200
    held-out images, zero baseline): median / 95th percentile ``rel_gap``
    9.7e-3 / 8.7e-2 at ``steps=20``, 4.3e-3 / 2.5e-2 at 50, 9.5e-4 / 6.5e-3 at
    200; an image whose ``delta`` is near 0 can show a large relative gap with
    a small absolute one. Stated tolerance: ``rel_gap <= 0.05`` for
    ``steps >= 50`` on typical images (the tests check it on a small CNN).

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        attributions: the output of :func:`integrated_gradients` for ``x``.
        target: class id, one per image, or None (default: the predicted class).
        baseline: the baseline the attributions were computed with (None: zeros).
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.
    """
    fn_name = "completeness"
    net, params = _net.as_net(model)
    score = _net.check_score(fn_name, score)
    xb, single = _net.prepare(fn_name, net, x, params)
    attr = jnp.asarray(attributions).reshape(xb.shape)
    base = _baseline(fn_name, baseline, xb)
    targets = _net.targets_for(fn_name, net, params, xb, target)

    def build():
        s = _net.score_fn(net, score)

        def gaps(params, xb, base, attr, targets):
            t = _net.resolve_targets(net, params, xb, targets)
            delta = s(params, xb, t) - s(params, base, t)
            total = attr.reshape(attr.shape[0], -1).sum(axis=1)
            return total, delta, jnp.abs(total - delta) / jnp.maximum(jnp.abs(delta), 1e-6)

        return jax.jit(gaps)

    results = net.jit(("completeness", score), build)(params, xb, base, attr, targets)
    return tuple(_net.finish(a, single) for a in results)
