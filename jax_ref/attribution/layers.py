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

__all__ = ["feature_maps", "filters", "grad_cam"]


def _layer_index(fn: str, net, layer) -> int:
    names = net.names
    return names.index(validation.choice(fn, "layer", layer, names)) if layer not in names else names.index(layer)


def _grad_cam_fn(net, name, score, fmt, upsample):
    def run(params, xb, targets):
        targets = _net.resolve_targets(net, params, xb, targets)
        shape = jax.eval_shape(lambda p, x: net.forward(p, x)[1][name], params, xb)

        def s(tap):  # the score with ``tap`` added to the layer's output A: dS/dtap at 0 is dS/dA
            out, outputs = net.forward(params, xb, taps={name: tap})
            if score == "probability":
                out = jax.nn.softmax(out, axis=-1)
            return jnp.take_along_axis(out, targets[:, None], axis=1)[:, 0].sum(), outputs[name]

        g, a = jax.grad(s, has_aux=True)(jnp.zeros(shape.shape, shape.dtype))
        c = -1 if fmt == "channels_last" else 1
        spatial = tuple(range(1, a.ndim - 1)) if fmt == "channels_last" else tuple(range(2, a.ndim))
        alpha = g.mean(axis=spatial, keepdims=True)  # (B, 1.., C) or (B, C, 1..)
        cam = jax.nn.relu((alpha * a).sum(axis=c))
        if upsample:
            size = tuple(xb.shape[i] for i in (range(1, xb.ndim - 1) if fmt == "channels_last"
                                               else range(2, xb.ndim)))
            cam = jax.image.resize(cam, (cam.shape[0],) + size, method="bilinear")
        return cam

    return jax.jit(run)


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
    fn = "grad_cam"
    net, params = _net.as_net(model)
    score = _net.check_score(fn, score)
    idx = _layer_index(fn, net, layer)
    xb, single = _net.prepare(fn, net, x, params)
    shapes = _net.stage_shapes(fn, net, params, xb)
    if len(shapes[idx]) != xb.ndim - 1:
        spatial = [name for name, shape in zip(net.names, shapes, strict=True) if len(shape) == xb.ndim - 1]
        raise ValueError(f"{fn}: layer={net.names[idx]!r} outputs shape {shapes[idx]} per image, with no spatial "
                         f"axes; choose a layer with spatial output: "
                         f"{', '.join(map(repr, spatial)) or 'none in this model'}")
    targets = _net.targets_for(fn, net, params, xb, target)
    run = net.jit(("grad_cam", idx, score, bool(upsample)),
                  lambda: _grad_cam_fn(net, net.names[idx], score, net.data_format, bool(upsample)))
    return _net.finish(run(params, xb, targets), single)


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
