"""Occlusion: how much the score drops when a window of the image is replaced by a baseline.

Definition (captum's ``Occlusion``): along each spatial axis of size ``N``
windows of length ``w`` start at ``0, s, 2s, ..., ceil((N - w) / s) * s``; the
last one is cut off at the border, so every cell is covered. For window
position ``p`` (a product of one start per axis) ``x_p`` is ``x`` with every
cell of the window, in all channels, set to ``baseline``, and
``d_p = S(x) - S(x_p)``. The attribution of a cell is the mean of ``d_p`` over
the windows that cover it: ``A = (sum_p d_p M_p) / (sum_p M_p)`` with ``M_p``
the window's 0/1 mask, the same value in every channel.

All ``P`` occluded copies (and the image itself) go through one batched
forward pass (in chunks of ``batch_size`` if given, sharded over devices
when there are several); the averaging is one ``(B, P) @ (P, cells)`` product.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_ref.attribution import _net, _sharding
from tinygrad_cnn import validation

__all__ = ["occlusion", "window_masks"]


def window_masks(spatial, window, stride) -> np.ndarray:
    """0/1 masks ``(P, *spatial)`` of every window position (see the module docstring), row-major order.

    Args:
        spatial: the image's spatial sizes, e.g. ``(H, W)``.
        window: one window size per spatial axis.
        stride: one stride per spatial axis (the last window is cut off at the border).
    """
    per_axis = []
    for size, w, s in zip(spatial, window, stride, strict=True):
        starts = np.arange(-(-(size - w) // s) + 1) * s
        cells = np.arange(size)
        per_axis.append((cells >= starts[:, None]) & (cells < starts[:, None] + w))
    mask = per_axis[0]
    for am in per_axis[1:]:  # outer product, one axis at a time: (P, ...) x (n, s) -> (P * n, ..., s)
        mask = mask[:, None, ..., None] & am.reshape((1, am.shape[0]) + (1,) * (mask.ndim - 1) + (am.shape[1],))
        mask = mask.reshape((-1,) + mask.shape[2:])
    return mask


def _spatial_axes(ndim: int, data_format: str) -> tuple[int, ...]:
    """Spatial axes of a batch of rank ``ndim``."""
    return tuple(range(1, ndim - 1)) if data_format == "channels_last" else tuple(range(2, ndim))


def _occlusion_fn(net, score, fmt, window, stride):
    def outputs(params, z, _):
        out = net.apply(params, z)
        return jax.nn.softmax(out, axis=-1) if score == "probability" else out

    def prepare(params, xb, base, targets):
        b, axes = xb.shape[0], _spatial_axes(xb.ndim, fmt)
        spatial = tuple(xb.shape[a] for a in axes)
        masks = window_masks(spatial, window, stride)  # static: built at trace time
        p = masks.shape[0]
        m = masks.reshape((p,) + (spatial + (1,) if fmt == "channels_last" else (1,) + spatial))
        base = jnp.broadcast_to(base, xb.shape)
        copies = jnp.where(m[None], base[:, None], xb[:, None]).reshape((b * p,) + xb.shape[1:])
        # the images themselves ride along in the same forward pass (their outputs give the predicted class)
        batch = jnp.concatenate([xb, copies])
        return batch, jnp.zeros(batch.shape[0], jnp.int32), (xb, targets)

    def finish(params, ctx, out):
        xb, targets = ctx
        b, axes = xb.shape[0], _spatial_axes(xb.ndim, fmt)
        spatial = tuple(xb.shape[a] for a in axes)
        flat = window_masks(spatial, window, stride).reshape(-1, int(np.prod(spatial))).astype(np.float64)
        if targets is None:  # the predicted class, from the images' own outputs
            targets = jnp.argmax(out[:b], axis=-1).astype(jnp.int32)
        full = jnp.take_along_axis(out[:b], targets[:, None], axis=1)  # (b, 1)
        occluded = jnp.take_along_axis(out[b:].reshape(b, flat.shape[0], -1), targets[:, None, None], axis=2)[..., 0]
        drop = full - occluded
        attr = ((drop @ jnp.asarray(flat, xb.dtype)) / jnp.asarray(flat.sum(axis=0), xb.dtype)).reshape(
            (b,) + spatial)
        attr = jnp.expand_dims(attr, -1 if fmt == "channels_last" else 1)
        return jnp.broadcast_to(attr, xb.shape)

    return _sharding.Staged(prepare, outputs, finish)


def occlusion(model, x, target=None, window=4, stride=2, baseline=0.0, batch_size: int | None = None,
              score: str = "logit", data_format: str | None = None):
    """Occlusion map shaped like ``x`` (see the module docstring for the exact definition).

    ``window`` and ``stride``: an int for every spatial axis or one int per
    axis; ``baseline``: the value occluded cells take (a scalar, or an array
    broadcasting to ``x``); ``data_format`` is the model's (the images go to the model as they are); giving
    another one is refused.

    Args:
        model: a ``JaxModel`` or an engine model (one input, one output).
        x: one image ``(H, W, C)`` or a batch ``(B, H, W, C)`` (the model's data format).
        target: class id, one per image, or None (default: the predicted class).
        window: int or one per spatial axis, default 4.
        stride: int or one per spatial axis, default 2 (at most ``window``).
        baseline: float or array, default 0.0.
        batch_size: int or None (default, all windows at once): occluded images per evaluation.
        score: ``"logit"`` (default, the pre-softmax score) or ``"probability"``.
        data_format: None (default, the model's).

    Returns:
        A NumPy array shaped like ``x``: the score drop, averaged over the windows covering each cell.

    Raises:
        ValueError: a window larger than the image, a stride larger than the window, or another data_format.
    """
    fn = "occlusion"
    net, params = _net.as_net(model)
    # the common call (int window / stride / batch_size, a number as baseline) looks its checked options up;
    # only options that passed every check are kept, and the types in the key keep True from passing as 1
    simple = (type(window) is int and type(stride) is int and type(baseline) in (int, float)
              and type(score) is str and type(batch_size) in (type(None), int)
              and type(data_format) in (type(None), str))
    if simple:
        xb, single = _net.prepare(fn, net, x, params)
        key = ("occlusion call", score, data_format, window, stride, repr(baseline), batch_size, xb.shape, xb.dtype)
        kept = net._jits.get(key)
        if kept is None:
            kept = net._jits[key] = _checked(fn, net, params, xb, score, data_format, window, stride, baseline,
                                             batch_size)[:3]
    else:
        kept = _checked(fn, net, params, None, score, data_format, window, stride, baseline, batch_size, x)
        xb, single = kept[-2:]
    run, base, batch_size = kept[:3]
    targets = _net.targets_for(fn, net, params, xb, target)
    return _net.finish(run(params, xb, base, targets, batch_size=batch_size), single)


def _checked(fn, net, params, xb, score, data_format, window, stride, baseline, batch_size, x=None):
    """``(run, base, batch_size, xb, single)``: occlusion's options checked, in the order of the checks (``xb``
    None: ``x`` prepared after the format and ``batch_size`` checks, as they come first)."""
    score = _net.check_score(fn, score)
    fmt = validation.data_format(fn, data_format or net.data_format)
    if fmt != net.data_format:
        raise ValueError(f"{fn}: data_format={data_format!r} but the model is {net.data_format} (its layers say "
                         f"so, and x goes to the model as it is); leave data_format unset, or transpose the images "
                         f"and use a {fmt} model")
    batch_size = None if batch_size is None else validation.positive_int(fn, "batch_size", batch_size)
    single = None
    if xb is None:
        xb, single = _net.prepare(fn, net, x, params)
    spatial = tuple(xb.shape[a] for a in _spatial_axes(xb.ndim, fmt))
    window = validation.int_tuple(fn, "window", window, len(spatial))
    stride = validation.int_tuple(fn, "stride", stride, len(spatial))
    if any(w > n for w, n in zip(window, spatial, strict=True)):
        raise ValueError(f"{fn}: window {window} is larger than the image's spatial size {spatial}")
    if any(s > w for s, w in zip(stride, window, strict=True)):
        raise ValueError(f"{fn}: stride {stride} is larger than window {window}; some cells would be covered by "
                         f"no window")
    base = np.asarray(baseline, xb.dtype)  # broadcast inside the compiled function (no full-size transfer)
    try:
        fits = np.broadcast_shapes(base.shape, xb.shape) == xb.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{fn}: baseline of shape {np.shape(baseline)} does not broadcast to the input batch "
                         f"{tuple(xb.shape)}")
    base.flags.writeable = False
    run = net.jit(("occlusion", score, fmt, window, stride), lambda: _occlusion_fn(net, score, fmt, window, stride))
    return run, base, batch_size, xb, single
