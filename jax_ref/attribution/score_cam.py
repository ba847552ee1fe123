"""Score-CAM (Wang et al. 2020): channel weights from the scores of the input masked by each feature map."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jax_ref.attribution import _net, _sharding
from jax_ref.attribution.layers import channel_axis, check_spatial_layer, resize_to_input
from tinygrad_cnn import validation

__all__ = ["score_cam"]


def _score_cam_fn(net, name, score, fmt, upsample):
    s = _net.score_fn(net, score)

    def prepare(params, xb, targets):
        targets = _net.resolve_targets(net, params, xb, targets)
        a = net.forward(params, xb)[1][name]
        c = channel_axis(fmt) % a.ndim
        maps = jnp.moveaxis(a, c, 1)  # (B, K, *spatial)
        b, k = maps.shape[:2]
        up = resize_to_input(maps.reshape((b * k,) + maps.shape[2:]), xb, fmt).reshape((b, k) + xb.shape[
            slice(1, -1) if fmt == "channels_last" else slice(2, None)])
        axes = tuple(range(2, up.ndim))
        lo, hi = up.min(axis=axes, keepdims=True), up.max(axis=axes, keepdims=True)
        masks = jnp.where(hi > lo, (up - lo) / jnp.where(hi > lo, hi - lo, 1), 0)
        masks = jnp.expand_dims(masks, -1 if fmt == "channels_last" else 2)  # broadcast over the input channels
        masked = (xb[:, None] * masks).reshape((b * k,) + xb.shape[1:])
        return masked, jnp.repeat(targets, k), (maps, xb)

    def finish(params, ctx, w):
        maps, xb = ctx
        cam = jax.nn.relu(jnp.einsum("bk,bk...->b...", w.reshape(maps.shape[:2]), maps))
        return resize_to_input(cam, xb, fmt) if upsample else cam

    return _sharding.Staged(prepare, s, finish)


def score_cam(model, x, layer, target=None, score: str = "probability", upsample: bool = True,
              batch_size: int | None = None):
    """Score-CAM at ``layer``: ``relu(sum_k w_k A_k)`` with ``w_k = S(x * M_k)``, the score of the input masked
    by ``M_k``: channel ``k`` of the layer's output ``A`` resized bilinearly to the input and scaled to [0, 1]
    per image (``(A_k - min) / (max - min)``, 0 for a constant map), broadcast over the input channels.

    The score is the softmax probability by default, as in the paper's code and tf-keras-vis' ``ScoreCAM``
    (which also take the weights as they are, no baseline score subtracted; the paper's equation subtracts
    ``S(baseline)``, a constant per image that shifts all weights alike). ``B * K`` masked images are scored as
    one batch, or ``batch_size`` at a time (``K`` the layer's channels). Shapes and ``upsample`` as
    ``grad_cam``.
    """
    fn = "score_cam"
    net, params = _net.as_net(model)
    score = _net.check_score(fn, score)
    xb, single = _net.prepare(fn, net, x, params)
    name = check_spatial_layer(fn, net, params, xb, layer)
    targets = _net.targets_for(fn, net, params, xb, target)
    batch_size = None if batch_size is None else validation.positive_int(fn, "batch_size", batch_size)
    run = net.jit((fn, name, score, bool(upsample)),
                  lambda: _score_cam_fn(net, name, score, net.data_format, bool(upsample)))
    return _net.finish(run(params, xb, targets, batch_size=batch_size), single)
