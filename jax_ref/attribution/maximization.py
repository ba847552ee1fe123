"""Activation maximisation: the input a channel (or a class) responds to most, by regularised gradient ascent."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax_ref.attribution import _net
from jax_ref.attribution.gradients import check_seed
from jax_ref.attribution.layers import _layer_index, spatial_axes
from tinygrad_cnn import validation

__all__ = ["activation_maximization"]


def _blur(x, sigma: float, axes: tuple):
    """Gaussian blur of ``x`` along ``axes`` (taps ``exp(-d^2 / 2 sigma^2)`` normalised, ``|d| <= ceil(2 sigma)``,
    edges repeated), one separable pass per axis."""
    r = max(1, math.ceil(2 * sigma))
    taps = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma**2))
    taps = taps / taps.sum()
    for a in axes:
        pad = [(0, 0)] * x.ndim
        pad[a] = (r, r)
        xp = jnp.pad(x, pad, mode="edge")
        x = sum(float(w) * jax.lax.slice_in_dim(xp, i, i + x.shape[a], axis=a) for i, w in enumerate(taps))
    return x


def _ascent_fn(net, name, fmt, steps, jitter, blur_every, blur_sigma, flat, unit):
    def objective(params, x, channels, shift, l2=0.0, tv=0.0):
        axes = spatial_axes(x.ndim, fmt)
        seen = jnp.roll(x, shift, axis=axes) if jitter else x
        a = net.forward(params, seen)[1][name]
        if flat:
            act = jnp.take_along_axis(a, channels[:, None], axis=1)[:, 0]
        else:
            a = jnp.moveaxis(a, -1 if fmt == "channels_last" else 1, 1)
            act = jnp.take_along_axis(a, channels.reshape((-1, 1) + (1,) * (a.ndim - 2)), axis=1)[:, 0]
            if unit == "center":
                act = act[(slice(None),) + tuple(n // 2 for n in act.shape[1:])]
            else:
                act = act.reshape(act.shape[0], -1).mean(axis=1)
        penalty = l2 * jnp.mean(x * x, axis=tuple(range(1, x.ndim))) + tv * _total_variation_per_image(x, axes)
        return (penalty - act).sum(), act

    def run(params, x0, channels, key, learning_rate, l2, tv):
        axes = spatial_axes(x0.ndim, fmt)
        opt = optax.adam(learning_rate)

        def step(carry, i):
            x, state = carry
            shift = tuple(jax.random.randint(jax.random.fold_in(key, i), (len(axes),), -jitter, jitter + 1))
            g, _ = jax.grad(objective, argnums=1, has_aux=True)(params, x, channels, shift, l2, tv)
            updates, state = opt.update(g, state, x)
            x = optax.apply_updates(x, updates)
            if blur_every:
                x = jnp.where((i + 1) % blur_every == 0, _blur(x, blur_sigma, axes), x)
            return (x, state), None

        (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), jnp.arange(steps))
        _, act = objective(params, x, channels, (0,) * len(axes))
        return x, act

    return jax.jit(run)


def _total_variation_per_image(x, axes):
    return sum(jnp.mean(jnp.diff(x, axis=a) ** 2, axis=tuple(range(1, x.ndim))) for a in axes)


def activation_maximization(model, layer, channels=None, steps: int = 200, learning_rate: float = 0.05,
                            l2: float = 1e-3, tv: float = 1e-2, jitter: int = 1, blur_every: int = 4,
                            blur_sigma: float = 0.5, init_scale: float = 0.1, unit: str = "mean", seed: int = 0):
    """The inputs that maximise channel ``c`` of node ``layer``, one image per channel, ascended together.

    For each channel ``c`` (``channels``: ids, default every channel of the layer) the image ``x_c`` minimises
    ``-u(A_c(roll(x_c, s_t))) + l2 * mean(x_c^2) + tv * sum_axes mean((x_c[i+1] - x_c[i])^2)`` (for a
    layer without spatial axes, e.g. the logits, ``A_c`` is the unit itself: a class's preferred input). ``u`` is
    the spatial mean of the channel's map (``unit="mean"``, Lucid's "channel" objective and tf-keras-vis') or its
    value at the spatial centre, index ``size // 2`` per axis (``"center"``, Lucid's "neuron": the pattern in one
    unit's receptive field, which a layer with a small receptive field needs, since a uniform image maximises
    the mean of a filter whose weights sum to a positive number). It is minimised by ``steps`` of Adam
    (``learning_rate``) from ``x_c ~ init_scale * N(0, 1)`` (drawn from a key of its own per channel id).
    Regularisers: the L2 and squared total-variation penalties above; jitter, a random roll ``s_t`` of each
    spatial axis by an integer in ``[-jitter, jitter]`` per step (one for the whole batch); blur, a Gaussian blur
    of width ``blur_sigma`` pixels applied to the images after every ``blur_every``-th step (0 turns it off).
    All randomness comes from ``PRNGKey(seed)`` (same seed, same images). Channels do not interact, so the batch
    of images is one gradient per step.

    Returns ``(images, activations)``: ``(K, *image shape)`` in the model's data format and the final
    objective term ``u(A_c(x_c))`` per channel (no roll). tf-keras-vis' ``ActivationMaximization``
    is the same ascent with its own defaults (TV and L2 norm regularisers, jitter/rotation input modifiers).
    """
    fn = "activation_maximization"
    net, params = _net.as_net(model)
    name = net.names[_layer_index(fn, net, layer)]
    if net.image_shape is None or None in net.image_shape:
        raise ValueError(f"{fn}: the model must be built for a fixed image shape; it takes {net.image_shape}")
    steps = validation.positive_int(fn, "steps", steps)
    for arg, value in (("learning_rate", learning_rate), ("l2", l2), ("tv", tv), ("blur_sigma", blur_sigma),
                       ("init_scale", init_scale)):
        validation.number_in(fn, arg, value, 0.0, float("inf"))
    if not validation.is_int(jitter) or jitter < 0 or not validation.is_int(blur_every) or blur_every < 0:
        raise ValueError(f"{fn}: jitter and blur_every must be ints >= 0; got jitter={jitter!r}, "
                         f"blur_every={blur_every!r}")
    if blur_every and blur_sigma <= 0:
        raise ValueError(f"{fn}: blur_sigma must be > 0 when blur_every > 0; got {blur_sigma!r}")
    key = jax.random.PRNGKey(check_seed(fn, seed))
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    probe = np.zeros((1,) + net.image_shape, dtype)
    shape = _net.stage_shapes(fn, net, params, probe)[net.names.index(name)]
    flat = len(shape) == 1
    n_channels = shape[0] if flat else shape[-1 if net.data_format == "channels_last" else 0]
    ids = np.arange(n_channels) if channels is None else np.atleast_1d(np.asarray(channels))
    if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1 or ids.size == 0 or ids.min() < 0 \
            or ids.max() >= n_channels:
        raise ValueError(f"{fn}: channels must be None or channel ids in 0..{n_channels - 1} of layer {name!r}; "
                         f"got {channels!r}")
    start = jax.random.fold_in(key, 2**31 - 1)  # channel c starts from its own key: a channel's image does not
    x0 = init_scale * jax.vmap(lambda c: jax.random.normal(jax.random.fold_in(start, c), net.image_shape, dtype))(
        jnp.asarray(ids, jnp.int32))  # depend on which other channels are ascended with it
    unit = validation.choice(fn, "unit", unit, ("mean", "center"))
    config = (name, steps, int(jitter), int(blur_every), float(blur_sigma), flat, unit)
    run = net.jit((fn,) + config, lambda: _ascent_fn(net, name, net.data_format, *config[1:]))
    rates = (np.asarray(v, dtype) for v in (learning_rate, l2, tv))
    x, act = run(params, x0, jnp.asarray(ids, jnp.int32), key, *rates)
    return np.asarray(x), np.asarray(act)
