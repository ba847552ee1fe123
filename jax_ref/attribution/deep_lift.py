"""DeepLIFT with the rescale rule (Shrikumar et al. 2017), as captum's ``DeepLift`` computes it.

The model is not rebuilt: the same walk of the twin runs on the images and their baselines as one batch
``[x; x']`` (``2B`` rows; images do not interact in inference mode), with each nonlinearity's backward
replaced by a ``jax.custom_vjp`` rule that reads both halves. With ``h`` a nonlinearity's input, ``y`` its
output, ``dh = h - h'`` and ``dy = y - y'`` (the image half minus the baseline half, used for both halves) and
``g`` the gradient arriving at its output (each half its own):

- elementwise activations (captum's table: ReLU, LeakyReLU, ELU, sigmoid, tanh, softplus; here every layer's
  ``activation=`` among those, ``Activation``, ``ReLU`` without ``max_value`` / ``threshold``, ``LeakyReLU``,
  ``ELU``): ``g -> g * dy / dh``, the rescale multiplier, or the plain gradient ``g * f'(h)`` where
  ``|dh| < eps`` (captum's ``nonlinear``);
- max pooling (captum's ``maxpool``): with ``m = max(y, y')`` per window, ``u = unpool_x(g_x (m - y')) +
  unpool_x'(g_x' (y - m))`` (``unpool_x`` sends a window's value to the maximum of ``x`` in it, the pool's own
  gradient), ``g -> u / dh`` for both halves, the plain gradient where ``|dh| < eps``.

Every other layer (linear ones: convolutions, Dense, BatchNormalization in inference, pooling by averages,
Add; and the activations captum has no rule for: gelu, swish, PReLU, relu6, global max pooling...) keeps its
own gradient. The score is summed over both halves, as captum does (``[S(x); S(x')]`` for the target), and
the attribution is ``(x - x') * dS/dx`` from the image half (captum's default ``multiply_by_inputs=True``).

Where captum differs: when a max pool reads the output of a hooked nonlinearity module (``ReLU -> MaxPool2d``,
the usual order), captum's ReLU backward hook records the gradient at its output before the pool's hook
rewrites it, so the pool's rule is lost there (captum then equals this function with the pool's plain
gradient) and its attributions no longer sum to ``S(x) - S(x')``. Ours apply the rule wherever the pool is.
The tests compare with captum on models without that pattern, and show the lost completeness on one with it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_ref.attribution import _net
from jax_ref.attribution.gradients import _baseline
from tinygrad_cnn import validation

__all__ = ["deep_lift"]

RESCALED = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus")  # captum's elementwise table


def _halves(a):
    return jnp.split(a, 2, axis=0)


def _twice(a):
    return jnp.concatenate([a, a], axis=0)


def _safe_ratio(num, den, small):
    return num / jnp.where(small, jnp.ones_like(den), den)


def _rescale_rule(f, eps):
    """``f`` (elementwise) with the rescale multiplier ``dy / dh`` as its backward on a ``[x; x']`` batch."""
    @jax.custom_vjp
    def rule(h):
        return f(h)

    def bwd(h, g):
        x, x0 = _halves(h)
        dh, dy = _twice(x - x0), _twice(f(x) - f(x0))
        small = jnp.abs(dh) < eps
        plain = jax.vjp(f, h)[1](g)[0]
        return (jnp.where(small, plain, g * _safe_ratio(dy, dh, small)),)

    rule.defvjp(lambda h: (f(h), h), bwd)
    return rule


def _maxpool_rule(pool, eps):
    """``pool`` (a max pooling) with captum's DeepLIFT max-pooling backward on a ``[x; x']`` batch."""
    @jax.custom_vjp
    def rule(h):
        return pool(h)

    def bwd(h, g):
        x, x0 = _halves(h)
        gx, g0 = _halves(g)
        y, unpool_x = jax.vjp(pool, x)
        y0, unpool_0 = jax.vjp(pool, x0)
        m = jnp.maximum(y, y0)
        u = _twice(unpool_x(gx * (m - y0))[0] + unpool_0(g0 * (y - m))[0])
        dh = _twice(x - x0)
        small = jnp.abs(dh) < eps
        plain = jax.vjp(pool, h)[1](g)[0]
        return (jnp.where(small, plain, _safe_ratio(u, dh, small)),)

    rule.defvjp(lambda h: (pool(h), h), bwd)
    return rule


def rule_calls(net, eps: float) -> dict:
    """``{layer: f(p, s, x, training, key) -> (y, s)}``: the DeepLIFT rules for ``Net.forward(calls=...)``."""
    calls = {}
    for name, (pre, act_name, act) in net.activations.items():
        if act_name in RESCALED:
            rule = _rescale_rule(act, eps)
            calls[name] = lambda p, s, x, training, key, pre=pre, rule=rule: (rule(pre(p, x, training, key)), s)
    for name, call in net.max_pools.items():
        def layer(p, s, x, training, key, call=call):
            return _maxpool_rule(lambda h: call(p, s, h, training, key)[0], eps)(x), s
        calls[name] = layer
    return calls


def _deep_lift_fn(net, eps):
    def run(params, xb, base, targets):
        t = _net.resolve_targets(net, params, xb, targets)
        calls = rule_calls(net, eps)

        def total(z):
            out = net.forward(params, z, calls=calls)[0]
            return jnp.take_along_axis(out, jnp.tile(t, 2)[:, None], axis=1).sum()

        g = jax.grad(total)(jnp.concatenate([xb, base], axis=0))
        return (xb - base) * g[: xb.shape[0]]

    return jax.jit(run)


def deep_lift(model, x, target=None, baseline=None, eps: float = 1e-10, score: str = "logit"):
    """DeepLIFT, rescale rule: ``(x - x') * m(x, x')`` with ``m`` the input multipliers of the rules in the
    module docstring, shaped like ``x`` (captum's ``DeepLift(model)`` with ``multiply_by_inputs=True``,
    ``eps=1e-10``; its ``Softmax`` module rule is not reproduced: ``score`` is the logit only).

    Completeness (summation-to-delta): for a model whose nonlinearities are all rescaled elementwise
    activations, ``sum(attributions) = S(x) - S(x')`` exactly (to rounding; see ``completeness``); captum's
    max-pooling rule keeps it when no window's maximum cell has ``|dh| < eps``.

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        target: class id, one per image, or None (default: the predicted class of ``x``).
        baseline: None (zeros), a scalar or an array broadcasting to ``x``.
        eps: float >= 0, default 1e-10: ``|dh|`` below which the plain gradient is used.
        score: ``"logit"`` (the only choice: the rescale rule is elementwise, a softmax is not).

    Returns:
        A NumPy array shaped like ``x``.
    """
    fn = "deep_lift"
    net, params = _net.as_net(model)
    validation.choice(fn, "score", score, ("logit",))
    eps = validation.number_in(fn, "eps", eps, 0.0, float("inf"))
    xb, single = _net.prepare(fn, net, x, params)
    base = _baseline(fn, baseline, xb)
    targets = _net.targets_for(fn, net, params, xb, target)
    run = net.jit((fn, eps), lambda: _deep_lift_fn(net, eps))
    return _net.finish(run(params, xb, base, targets), single)
