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


def _full_rank(w_shape, ndim: int) -> tuple:
    """``w_shape`` with leading 1s up to ``ndim`` axes (how NumPy broadcasting aligns it)."""
    return (1,) * (ndim - len(w_shape)) + tuple(w_shape)


def _constant_over(w_shape, axes) -> bool:
    return all(w_shape[a] == 1 for a in axes)


_WIDE_ROW = 1024  # elements per row of the wide view (see _Groups)


class _Groups:
    """The reduction over ``axes`` of arrays of ``shape``: sums per group and per-group affine maps.

    Channels-last (every axis but the last reduced, batch normalization's usual layout) has a fast layout: an
    array is ``R`` rows of ``C`` channels, a sum over the groups is the BLAS product ``ones(R) @ a`` (NumPy's
    strided reduction over the rows is many times slower), and ``a * s + t`` with per-channel ``s``, ``t``
    runs on a wide view ``(R / k, k C)`` against ``s``, ``t`` tiled k times (NumPy's broadcasting over short
    rows of C is several times slower). Any other layout uses NumPy's reductions and broadcasting as they are.
    """

    def __init__(self, shape, axes):
        self.axes = axes
        self.n = math.prod(shape[a] for a in axes)
        self.rows = self.n if axes == tuple(range(len(shape) - 1)) else 0  # channels-last: R rows
        self.channels = shape[-1]
        self.k = next(k for k in range(max(1, _WIDE_ROW // self.channels), 0, -1) if self.rows % k == 0) \
            if self.rows else 1

    def sum(self, a: np.ndarray) -> np.ndarray:
        """``a`` summed over the groups, reduced axes kept (size 1)."""
        if not self.rows:
            return np.sum(a, axis=self.axes, keepdims=True)
        return (np.ones(self.rows, a.dtype) @ a.reshape(self.rows, self.channels)).reshape(
            (1,) * (a.ndim - 1) + (self.channels,))

    def _tiled(self, v: np.ndarray) -> np.ndarray:
        """A per-channel vector repeated ``k`` times, one row of the wide view (one broadcast copy: ``np.tile``
        costs about 3x more in Python overhead at these sizes)."""
        row = np.empty((self.k, self.channels), v.dtype)
        row[...] = v.reshape(-1)
        return row.reshape(-1)

    def affine(self, a: np.ndarray, scale, shift, out: np.ndarray) -> np.ndarray:
        """``out = a * scale + shift`` (``scale``/``shift``: arrays broadcasting against ``a``, or None)."""
        if self.rows and all(v is None or (v.size == self.channels and v.shape[-1] == self.channels)
                             for v in (scale, shift)):  # per-channel vectors (1, ..., 1, C)
            wide = (self.rows // self.k, self.k * self.channels)
            a, out_w = a.reshape(wide), out.reshape(wide)
            scale, shift = (None if v is None else self._tiled(v) for v in (scale, shift))
        else:
            out_w = out
        if scale is None:
            np.copyto(out_w, a)
        else:
            np.multiply(a, scale, out=out_w)
        if shift is not None:
            out_w += shift
        return out


def _statistics(x: np.ndarray, groups: _Groups) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the biased variance ``mean((x - mean)^2)`` of ``x`` per group (two passes, no cancellation)."""
    mean = groups.sum(x) / groups.n
    d = groups.affine(x, None, -mean, buffers.empty(x.shape, x.dtype))
    return mean, groups.sum(np.multiply(d, d, out=d)) / groups.n


class Normalize(Function):
    """``y = gamma * (x - mu) / sqrt(s2 + epsilon) + beta``, ``mu``/``s2`` the mean and biased variance of x over
    ``axes`` (see the module docstring for the vjp and its derivation).

    Inputs: ``x``, then ``gamma`` if ``scale``, then ``beta`` if ``center`` (each of x's rank, broadcasting
    against it). ``mean`` and ``variance`` (params) are x's statistics over ``axes`` with kept axes, computed by
    :func:`normalize` (which returns them for the moving averages) from the same array. ``relu``: the output
    is ``max(y, 0)`` and the vjp first masks g by ``y > 0`` (relu'(0) = 0).
    """

    @staticmethod
    def forward(ctx, x, *affine, axes, epsilon, scale, center, mean, variance, relu=False):
        groups = _Groups(x.shape, axes)
        inv_std = 1.0 / np.sqrt(variance + np.asarray(epsilon, variance.dtype))
        dtype = np.result_type(x, *affine)
        x_hat = groups.affine(x, None, -mean, buffers.empty(x.shape, dtype))  # centred first: exact cancellation
        groups.affine(x_hat, inv_std, None, out=x_hat)
        gamma = affine[0] if scale else None
        beta = affine[-1] if center else None
        y = x_hat if gamma is None and beta is None and not relu else groups.affine(
            x_hat, gamma, beta, buffers.empty(x.shape, dtype))
        if relu:
            np.maximum(y, 0, out=y)
        ctx.save_for_backward(x_hat, inv_std, groups, y if relu else None)
        return y

    @staticmethod
    def vjp(ctx, g):
        y = ctx.saved[3]
        positive = None if y is None else np.greater(y, 0)  # relu: g passes where y > 0 (relu'(0) = 0)
        closed = _closed_form(ctx, g.data if positive is None else np.multiply(
            g.data, positive, out=buffers.empty(g.shape, g.dtype)))
        if not is_grad_enabled():
            return tuple(None if a is None else constant(a) for a in closed)
        if positive is not None:
            g = g * constant(positive.astype(g.dtype))
        # recorded (create_graph): the closed form's values, so that a recorded and an unrecorded backward give
        # the same bits, plus the Tensor-op formula minus its own value (exactly 0), which carries the
        # derivatives: c + (t - stop_gradient(t))
        recorded = _vjp_by_tensor_ops(ctx, g)
        return tuple(None if a is None else constant(a) + (t - constant(t.data))
                     for a, t in zip(closed, recorded, strict=True))

    @staticmethod
    def kink_state(x, *affine, axes, epsilon, scale, center, mean, variance, relu=False):
        """With ``relu``: the sign pattern of the normalized output before the relu."""
        if not relu:
            return np.zeros(0, np.int64)
        z = (x - mean) / np.sqrt(variance + epsilon) * (affine[0] if scale else 1) + (affine[-1] if center else 0)
        return z > 0


def _closed_form(ctx, g: np.ndarray) -> list:
    """The cotangents of x, gamma, beta (those present; None where not needed) as arrays, from the saved
    ``x_hat`` and ``1 / sigma``: ``dx = a h + b x_hat + c`` with per-group factors ``a``, ``b``, ``c``."""
    axes, scale, center = ctx.params["axes"], ctx.params["scale"], ctx.params["center"]
    x_hat, inv_std, groups = ctx.saved[:3]
    shape = ctx.inputs[0].shape
    gamma = ctx.inputs[1].data if scale else None
    gamma_shape = _full_rank(gamma.shape, len(shape)) if scale else None
    beta_shape = _full_rank(ctx.inputs[-1].shape, len(shape)) if center else None
    g_x_hat = np.multiply(g, x_hat, out=buffers.empty(shape, x_hat.dtype))
    s_g, s_gx = groups.sum(g), groups.sum(g_x_hat)  # per group: sum(g), sum(g x_hat)
    grads = [None]
    if ctx.needs_input_grad[0]:
        if gamma is None or _constant_over(gamma_shape, axes):  # h = g; a = gamma / sigma per group
            h, a, s_h, s_hx = g, inv_std if gamma is None else gamma * inv_std, s_g, s_gx
        else:  # h = g gamma varies inside a group (layer normalization's per-feature gamma); a = 1 / sigma
            h, a = np.multiply(g, gamma, out=buffers.empty(shape, g.dtype)), inv_std
            s_h = groups.sum(h)
            s_hx = groups.sum(np.multiply(h, x_hat, out=buffers.empty(shape, h.dtype)))
        dx = groups.affine(x_hat, a * (-s_hx / groups.n), a * (-s_h / groups.n), buffers.empty(shape, h.dtype))
        dx += groups.affine(h, a, None, buffers.empty(shape, h.dtype))
        grads[0] = dx
    if scale:  # the sums over the axes gamma was broadcast along, from the group sums where they contain A
        grads.append((_sum_to(s_gx, gamma_shape) if _constant_over(gamma_shape, axes)
                      else _sum_to(g_x_hat, gamma_shape)).reshape(gamma.shape) if ctx.needs_input_grad[1] else None)
    if center:
        grads.append((_sum_to(s_g, beta_shape) if _constant_over(beta_shape, axes)
                      else _sum_to(g, beta_shape)).reshape(ctx.inputs[-1].shape) if ctx.needs_input_grad[-1]
                     else None)
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


def normalize(x, axis, gamma=None, beta=None, epsilon: float = 1e-3, relu: bool = False):
    """``(y, mean, variance)``: ``y = gamma * (x - mean) / sqrt(variance + epsilon) + beta`` (``relu=True``:
    ``max(y, 0)``, batch normalization then ReLU as one pass) as one primitive
    (:class:`Normalize`), with ``mean`` and ``variance`` (biased) the statistics of ``x`` over ``axis`` (an int
    or a tuple of ints), returned as constants with the reduced axes kept (size 1).

    Args:
        x: float Tensor.
        axis: the reduction axes (batch normalization: every axis but the channels).
        gamma, beta: Tensors of x's rank that broadcast against x, or of shape ``(C,)`` with ``C`` x's last axis
            (one value per channel, channels-last: no reshape node), or None (scale 1, shift 0).
        epsilon: float >= 0 added to the variance.
        relu: bool: apply ``max(., 0)`` to the result inside the primitive (its vjp masks the cotangent by
            ``y > 0`` first, relu'(0) = 0).

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
        per_channel = w.shape == x.shape[-1:]
        if not per_channel and (w.ndim != x.ndim or any(m not in (1, n) for m, n in zip(w.shape, x.shape,
                                                                                          strict=True))):
            raise ValueError(f"normalize: {name} of shape {w.shape} must have x's rank {x.ndim} and broadcast "
                             f"against x of shape {x.shape}, or be of shape {x.shape[-1:]} (one per channel)")
        affine.append(w)
    relu = validation.boolean("normalize", "relu", relu)
    mean, variance = _statistics(x.data, _Groups(x.shape, axes))
    y = Normalize.apply(x, *affine, axes=axes, epsilon=float(epsilon), scale=gamma is not None,
                        center=beta is not None, mean=mean, variance=variance, relu=relu)
    return y, constant(mean), constant(variance)
