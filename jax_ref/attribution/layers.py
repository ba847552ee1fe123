"""Looking inside: Grad-CAM, every layer's output (feature maps) and the learned filters.

Layers are named as in the engine model (``model.layers[i].name``; the calls of a shared layer as
``"<layer>:<k>"``, see ``JaxModel.node_names``), any node of a graph model; an unknown name raises a ValueError
suggesting the nearest one. Images that do not fit the
model are reported as by every attribution tool (``_net.prepare``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution import _net
from tinygrad_cnn import validation

__all__ = ["feature_maps", "filters", "grad_cam", "grad_cam_plus_plus", "layer_activation", "layer_gradient"]


def _layer_index(fn: str, net, layer) -> int:
    names = net.names
    return names.index(validation.choice(fn, "layer", layer, names)) if layer not in names else names.index(layer)


def layer_grad_fn(net, name, score):
    """``f(params, xb, targets) -> (dS/dA, A)`` for the output ``A`` of node ``name`` (one batched forward +
    backward; ``targets`` None means the predicted classes)."""
    def run(params, xb, targets):
        targets = _net.resolve_targets(net, params, xb, targets)
        shape = jax.eval_shape(lambda p, x: net.forward(p, x)[1][name], params, xb)

        def s(tap):  # the score with ``tap`` added to the layer's output A: dS/dtap at 0 is dS/dA
            out, outputs = net.forward(params, xb, taps={name: tap})
            if score == "probability":
                out = jax.nn.softmax(out, axis=-1)
            return jnp.take_along_axis(out, targets[:, None], axis=1)[:, 0].sum(), outputs[name]

        return jax.grad(s, has_aux=True)(jnp.zeros(shape.shape, shape.dtype))

    return run


def spatial_axes(ndim: int, fmt: str) -> tuple:
    return tuple(range(1, ndim - 1)) if fmt == "channels_last" else tuple(range(2, ndim))


def channel_axis(fmt: str) -> int:
    return -1 if fmt == "channels_last" else 1


def resize_to_input(cam, xb, fmt):
    """Maps ``(B, *spatial)`` bilinearly resized to the spatial size of the input batch ``xb``."""
    size = tuple(xb.shape[i] for i in spatial_axes(xb.ndim, fmt))
    return jax.image.resize(cam, (cam.shape[0],) + size, method="bilinear")


def _grad_cam_weights(g, a, fmt):
    """Grad-CAM's channel weights: the spatial mean of ``dS/dA``."""
    return g.mean(axis=spatial_axes(a.ndim, fmt), keepdims=True)


def cam_fn(net, name, score, fmt, upsample, weights=_grad_cam_weights):
    """The jitted ``f(params, xb, targets) -> relu(sum_c w_c A_c)`` with ``w = weights(dS/dA, A, fmt)``."""
    grads = layer_grad_fn(net, name, score)

    def run(params, xb, targets):
        g, a = grads(params, xb, targets)
        cam = jax.nn.relu((weights(g, a, fmt) * a).sum(axis=channel_axis(fmt)))
        return resize_to_input(cam, xb, fmt) if upsample else cam

    return jax.jit(run)


def check_spatial_layer(fn: str, net, params, xb, layer) -> str:
    """The node name ``layer``, checked to exist and to have spatial output (a conv-like layer)."""
    idx = _layer_index(fn, net, layer)
    shapes = _net.stage_shapes(fn, net, params, xb)
    if len(shapes[idx]) != xb.ndim - 1:
        spatial = [name for name, shape in zip(net.names, shapes, strict=True) if len(shape) == xb.ndim - 1]
        raise ValueError(f"{fn}: layer={net.names[idx]!r} outputs shape {shapes[idx]} per image, with no spatial "
                         f"axes; choose a layer with spatial output: "
                         f"{', '.join(map(repr, spatial)) or 'none in this model'}")
    return net.names[idx]


def cam(fn: str, model, x, layer, target, score, upsample, weights=_grad_cam_weights):
    """A CAM method's maps (see ``cam_fn``), with the shared argument checks."""
    net, params = _net.as_net(model)
    score = _net.check_score(fn, score)
    xb, single = _net.prepare(fn, net, x, params)
    name = check_spatial_layer(fn, net, params, xb, layer)
    targets = _net.targets_for(fn, net, params, xb, target)
    run = net.jit((fn, name, score, bool(upsample)),
                  lambda: cam_fn(net, name, score, net.data_format, bool(upsample), weights))
    return _net.finish(run(params, xb, targets), single)


def grad_cam(model, x, layer, target=None, score: str = "logit", upsample: bool = True):
    """Grad-CAM at ``layer``: ``relu(sum_c alpha_c A_c)`` with ``A`` the layer's output and
    ``alpha_c`` the spatial mean of ``dS/dA_c``.

    Returns one spatial map per image (the channel axis has no meaning here):
    ``(H, W)`` for one image or ``(B, H, W)``, bilinearly resized to the input's
    spatial size (``upsample=False`` keeps the layer's own resolution).

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        layer: the name of a node with spatial output (usually the last conv).
        target: class id, one per image, or None (default: the predicted class).
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.
        upsample: bool, default True.

    Raises:
        ValueError: ``layer`` unknown or without spatial axes (the message lists the layers that have them).
    """
    return cam("grad_cam", model, x, layer, target, score, upsample)


def _plus_plus_weights(g, a, fmt):
    axes = spatial_axes(a.ndim, fmt)
    g2 = g * g
    denom = 2 * g2 + (a.sum(axis=axes, keepdims=True) * g2 * g)
    alpha = jnp.where(denom != 0, g2 / jnp.where(denom != 0, denom, 1), 0)
    return (alpha * jax.nn.relu(g)).sum(axis=axes, keepdims=True)


def grad_cam_plus_plus(model, x, layer, target=None, score: str = "logit", upsample: bool = True):
    """Grad-CAM++ at ``layer`` (Chattopadhyay et al. 2018, eq. 19 with the exponential score's closed form):
    ``relu(sum_c w_c A_c)`` with ``w_c = sum_ij alpha_c^ij relu(g_c^ij)``, ``g = dS/dA`` and
    ``alpha_c^ij = g^2 / (2 g^2 + (sum_ab A_c^ab) g^3)`` at ``(c, i, j)`` (0 where the denominator is 0).

    The second and third derivatives of ``exp(S)`` are written as powers of ``g``, as in the paper and in
    tf-keras-vis' ``GradcamPlusPlus``; tf-keras-vis also divides ``alpha`` by its spatial sum, which rescales
    each channel's weight by a positive number and so changes the map; ours is the paper's. Shapes and
    ``upsample`` as ``grad_cam``.
    """
    return cam("grad_cam_plus_plus", model, x, layer, target, score, upsample, _plus_plus_weights)


def feature_maps(model, x) -> dict:
    """Every layer's output for ``x``, ``{node name: array}`` in graph order (inference mode).

    For one image each array has no batch axis (e.g. ``(H, W, C)``).

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
    """
    fn = "feature_maps"
    net, params = _net.as_net(model)
    xb, single = _net.prepare(fn, net, x, params)
    outs = net.jit("feature_maps", lambda: jax.jit(lambda p, xb: net.forward(p, xb)[1]))(params, xb)
    return {name: _net.finish(outs[name], single) for name in net.names}


def filters(model, layer) -> np.ndarray:
    """The kernel of ``layer`` as a NumPy array in Keras layout (``kernel_size + (in, filters)`` for a conv).

    Args:
        model: a ``JaxModel`` or an engine model.
        layer: the name of a layer with a kernel.

    Raises:
        ValueError: ``layer`` has no kernel (the message lists those that have one).
    """
    fn = "filters"
    net, params = _net.as_net(model)
    name = validation.choice(fn, "layer", layer, net.layer_names) if layer not in net.layer_names else layer
    with_kernel = [n for n in net.layer_names if "kernel" in params.get(n, {})]
    if name not in with_kernel:
        raise ValueError(f"{fn}: layer={name!r} has no kernel; choose one of "
                         f"{', '.join(map(repr, with_kernel)) or 'none in this model'}")
    return np.asarray(params[name]["kernel"])


def layer_activation(model, x, layer) -> np.ndarray:
    """The output ``A`` of node ``layer`` for ``x`` (inference mode), e.g. ``(H, W, C)`` for one image (captum's
    ``LayerActivation``; one entry of ``feature_maps``)."""
    fn = "layer_activation"
    net, params = _net.as_net(model)
    name = net.names[_layer_index(fn, net, layer)]
    xb, single = _net.prepare(fn, net, x, params)
    run = net.jit(("layer_activation", name), lambda: jax.jit(lambda p, xb: net.forward(p, xb)[1][name]))
    return _net.finish(run(params, xb), single)


def layer_gradient(model, x, layer, target=None, score: str = "logit") -> np.ndarray:
    """``dS_target/dA``: the gradient of the score with respect to the output ``A`` of node ``layer``, shaped
    like ``A`` (the gradient captum's layer methods start from, ``compute_layer_gradients_and_eval``)."""
    fn = "layer_gradient"
    net, params = _net.as_net(model)
    score = _net.check_score(fn, score)
    name = net.names[_layer_index(fn, net, layer)]
    xb, single = _net.prepare(fn, net, x, params)
    targets = _net.targets_for(fn, net, params, xb, target)
    run = net.jit(("layer_gradient", name, score), lambda: jax.jit(lambda *a: layer_grad_fn(net, name, score)(*a)[0]))
    return _net.finish(run(params, xb, targets), single)
