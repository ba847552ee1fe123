"""Normalisation by the input's own statistics as one primitive (batch, layer and group normalization).

``y = gamma * x_hat + beta`` with ``x_hat = (x - mu) / sigma``, where ``mu`` and ``s2`` are the mean and the
biased variance of ``x`` over the reduction axes ``A`` (``n`` elements per group) and ``sigma = sqrt(s2 + eps)``.
``gamma`` and ``beta`` broadcast against ``x`` (either may be absent: 1 and 0). Batch normalization reduces
over every axis but the channel axis, layer normalization over the feature axes of each example, group
normalization over each group of channels (the input reshaped to split the channel axis).

Why one primitive: built from elementwise primitives this is about ten graph nodes and as many passes over
the activation forward and backward (mean, subtract, square, mean, power, multiply, add, then one vjp each);
here the forward is a few NumPy passes into reused buffers and the vjp is the closed form below.

The vjp, derived. Write ``h = g * gamma`` (the cotangent of ``x_hat``) and ``<v>`` for the mean over ``A``.
With ``d = x - mu``: ``dmu/dx_j = 1/n``, ``ds2/dx_j = 2 d_j / n``, ``dsigma/dx_j = d_j / (n sigma)``, so

    dx_hat_i/dx_j = [i = j] / sigma - 1 / (n sigma) - d_i d_j / (n sigma^3)
                  = ([i = j] - 1/n - x_hat_i x_hat_j / n) / sigma

and the cotangent of x, ``sum_i h_i dx_hat_i/dx_j``, is

    dx = (h - <h> - x_hat <h x_hat>) / sigma.

When ``gamma`` is constant over ``A`` (batch normalization) it factors out:
``dx = (gamma / sigma) (g - <g> - x_hat <g x_hat>)``. The parameters' cotangents are the sums over the axes
they were broadcast along: ``dgamma = sum(g x_hat)``, ``dbeta = sum(g)``. Both ``<g>`` and ``<g x_hat>`` are
these sums over ``A`` divided by ``n``, so one product ``g x_hat`` and two sums give all three. A group with
zero variance has ``x_hat = 0`` and ``dx = gamma (g - <g>) / sqrt(eps)``: finite.

Second order: under ``create_graph`` the vjp is also written with Tensor ops, ``x_hat`` and ``sigma`` recomputed
from the input Tensor, so it differentiates again (as the unfused composite would); its values are the closed
form's, so a recorded and an unrecorded backward pass agree to the bit (``gradcheck`` relies on that).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.function import Function
from tinygrad_cnn.modes import is_grad_enabled
from tinygrad_cnn.ops import buffers, reduce
from tinygrad_cnn.ops._util import normalize_axes
from tinygrad_cnn.ops.elementwise import pow_scalar
from tinygrad_cnn.ops.movement import constant, unbroadcast
from tinygrad_cnn.tensor import as_tensor

__all__ = ["Normalize", "normalize"]


def _sum_to(a: np.ndarray, shape) -> np.ndarray:
    """``a`` summed over the axes where ``shape`` (same rank) has size 1 and ``a`` does not (a new array)."""
    axes = tuple(i for i, (m, n) in enumerate(zip(a.shape, shape, strict=True)) if n == 1 and m != 1)
    return np.sum(a, axis=axes, keepdims=True) if axes else a.copy()


def _constant_over(w_shape, axes) -> bool:
    return all(w_shape[a] == 1 for a in axes)


class Normalize(Function):
    """``y = gamma * (x - mu) / sqrt(s2 + epsilon) + beta``, ``mu``/``s2`` the mean and biased variance of x over
    ``axes`` (see the module docstring for the vjp and its derivation).

    Inputs: ``x``, then ``gamma`` if ``scale``, then ``beta`` if ``center`` (each of x's rank, broadcasting
    against it). ``mean`` and ``variance`` (params) are x's statistics over ``axes`` with kept axes, computed by
    :func:`normalize` (which returns them for the moving averages) from the same array.
    """

    @staticmethod
    def forward(ctx, x, *affine, axes, epsilon, scale, center, mean, variance):
        inv_std = 1.0 / np.sqrt(variance + np.asarray(epsilon, variance.dtype))
        dtype = np.result_type(x, *affine)
        x_hat = np.subtract(x, mean, out=buffers.empty(x.shape, dtype))
        x_hat *= inv_std
        gamma = affine[0] if scale else None
        beta = affine[-1] if center else None
        y = x_hat if gamma is None and beta is None else np.multiply(
            x_hat, 1 if gamma is None else gamma, out=buffers.empty(x.shape, dtype))
        if beta is not None:
            y += beta
        ctx.save_for_backward(x_hat, inv_std)
        return y

    @staticmethod
    def vjp(ctx, g):
        closed = _closed_form(ctx, g.data)
        if not is_grad_enabled():
            return tuple(None if a is None else constant(a) for a in closed)
        # recorded (create_graph): the closed form's values, so that a recorded and an unrecorded backward give
        # the same bits, plus the Tensor-op formula minus its own value (exactly 0), which carries the
        # derivatives: c + (t - stop_gradient(t))
        recorded = _vjp_by_tensor_ops(ctx, g)
        return tuple(None if a is None else constant(a) + (t - constant(t.data))
                     for a, t in zip(closed, recorded, strict=True))


def _closed_form(ctx, g: np.ndarray) -> list:
    """The cotangents of x, gamma, beta (those present; None where not needed) as arrays, from the saved
    ``x_hat`` and ``1 / sigma``: ``dx = a h + b x_hat + c`` with per-group factors a, b, c."""
    axes, scale, center = ctx.params["axes"], ctx.params["scale"], ctx.params["center"]
    x_hat, inv_std = ctx.saved
    x = ctx.inputs[0]
    gamma = ctx.inputs[1] if scale else None
    beta = ctx.inputs[-1] if center else None
    n = math.prod(x.shape[a] for a in axes)
    g_x_hat = np.multiply(g, x_hat, out=buffers.empty(x.shape, x_hat.dtype))
    grads = [None]
    if ctx.needs_input_grad[0]:
        if gamma is None or _constant_over(gamma.shape, axes):  # h = g; a = gamma / sigma per group
            a = inv_std if gamma is None else gamma.data * inv_std
            s_h, s_hx = np.sum(g, axis=axes, keepdims=True), np.sum(g_x_hat, axis=axes, keepdims=True)
            h = g
        else:  # h = g gamma varies inside a group (layer normalization's per-feature gamma); a = 1 / sigma
            a = inv_std
            h = np.multiply(g, gamma.data, out=buffers.empty(x.shape, g.dtype))
            s_h = np.sum(h, axis=axes, keepdims=True)
            s_hx = np.sum(np.multiply(h, x_hat, out=buffers.empty(x.shape, h.dtype)), axis=axes, keepdims=True)
        dx = np.multiply(h, a, out=buffers.empty(x.shape, h.dtype))
        dx -= a * (s_h / n)
        dx -= np.multiply(x_hat, a * (s_hx / n), out=buffers.empty(x.shape, h.dtype))
        grads[0] = dx
    if gamma is not None:
        grads.append(_sum_to(g_x_hat, gamma.shape) if ctx.needs_input_grad[1] else None)
    if beta is not None:
        grads.append(_sum_to(g, beta.shape) if ctx.needs_input_grad[-1] else None)
    return grads


def _vjp_by_tensor_ops(ctx, g):
    """The same vjp recorded with differentiable Tensor ops (for ``create_graph``): ``x_hat`` and ``sigma`` are
    recomputed from the input Tensor so that their own dependence on x is differentiated too."""
    axes, eps = ctx.params["axes"], ctx.params["epsilon"]
    scale, center = ctx.params["scale"], ctx.params["center"]
    x = ctx.inputs[0]
    gamma = ctx.inputs[1] if scale else None
    d = x - reduce.mean(x, axes, keepdims=True)
    inv_std = pow_scalar(reduce.mean(d * d, axes, keepdims=True) + eps, -0.5)
    x_hat = d * inv_std
    h = g if gamma is None else g * gamma
    dx = inv_std * (h - reduce.mean(h, axes, keepdims=True) - x_hat * reduce.mean(h * x_hat, axes, keepdims=True))
    grads = [dx if ctx.needs_input_grad[0] else None]
    if scale:
        grads.append(unbroadcast(g * x_hat, gamma.shape) if ctx.needs_input_grad[1] else None)
    if center:
        grads.append(unbroadcast(g, ctx.inputs[-1].shape) if ctx.needs_input_grad[-1] else None)
    return tuple(grads)


def normalize(x, axis, gamma=None, beta=None, epsilon: float = 1e-3):
    """``(y, mean, variance)``: ``y = gamma * (x - mean) / sqrt(variance + epsilon) + beta`` as one primitive
    (:class:`Normalize`), with ``mean`` and ``variance`` (biased) the statistics of ``x`` over ``axis`` (an int
    or a tuple of ints), returned as constants with the reduced axes kept (size 1).

    Args:
        x: float Tensor.
        axis: the reduction axes (batch normalization: every axis but the channels).
        gamma, beta: Tensors of x's rank that broadcast against x, or None (scale 1, shift 0).
        epsilon: float >= 0 added to the variance.

    Raises:
        ValueError: an axis out of range or repeated, an empty reduction, a negative epsilon, or a
            ``gamma``/``beta`` that is not of x's rank or does not broadcast against it.
    """
    x = as_tensor(x)
    validation.float_array("normalize", "x", x.data)
    axes = normalize_axes(axis, x.ndim, "normalize")
    if not axes or math.prod(x.shape[a] for a in axes) == 0:
        raise ValueError(f"normalize: axis={axis!r} of an input of shape {x.shape} reduces over no elements; "
                         f"the statistics need at least one")
    epsilon = validation.number_in("normalize", "epsilon", epsilon, 0.0, float("inf"), high_open=True)
    affine = []
    for name, w in (("gamma", gamma), ("beta", beta)):
        if w is None:
            continue
        w = as_tensor(w, like=x)
        if w.ndim != x.ndim or any(m not in (1, n) for m, n in zip(w.shape, x.shape, strict=True)):
            raise ValueError(f"normalize: {name} of shape {w.shape} must have x's rank {x.ndim} and broadcast "
                             f"against x of shape {x.shape}")
        affine.append(w)
    mean = np.mean(x.data, axis=axes, keepdims=True)
    d = np.subtract(x.data, mean, out=buffers.empty(x.shape, x.dtype))
    variance = np.mean(np.multiply(d, d, out=d), axis=axes, keepdims=True)
    y = Normalize.apply(x, *affine, axes=axes, epsilon=float(epsilon), scale=gamma is not None,
                        center=beta is not None, mean=mean, variance=variance)
    return y, constant(mean), constant(variance)
