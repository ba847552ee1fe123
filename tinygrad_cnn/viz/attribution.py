"""Attribution figures: heat maps beside the image, occlusion, method comparison, SmoothGrad strips.

Maps arrive raw (shaped like the image, or ``(h, w)`` for Grad-CAM and
occlusion); channels are reduced here with ``reduce_channels``. Absolute maps
are clipped at the 99th percentile of |a| so a few extreme pixels do not wash
out the rest; signed maps use a diverging colormap with 0 at the centre (white).
A map is never alpha-blended over the image (that turns colours muddy and makes
a signed map's 0 look grey): it is shown on its own, with the image's outline
drawn over it as a thin contour, and every figure says whether a map is signed
or absolute and how it was scaled, with a colour bar where the value matters.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.viz._base import extent_of, heat_label, new_figure, outline, reduce_channels, show_heat, show_image


def _prepare(amap, signed: bool, how: str | None, data_format: str) -> np.ndarray:
    how = how or ("sum" if signed else "max_abs")
    return reduce_channels(amap, how, data_format)


def attribution_heatmap(image, attribution, signed: bool = False, how: str | None = None,
                        data_format: str = "channels_last", title: str | None = None,
                        percentile: float = 99.0):
    """Two panels side by side: the image, and the attribution map with the image's outline over it and a
    colour bar.

    Absolute maps (``signed=False``): channels reduced with ``how`` (default
    ``max_abs``), clipped at the ``percentile``-th percentile, sequential colormap
    from 0. Signed maps: channels summed, diverging colormap centred on 0 (white)
    with a symmetric bound. The map's panel title says which.

    Args:
        image: the input image ``(H, W, C)`` (or ``(H, W)``).
        attribution: a map shaped like ``image`` (e.g. from ``jax_ref.attribution``).
        signed: bool, default False.
        how: channel reduction for absolute maps (``viz.reduce_channels``), default ``"max_abs"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        title: figure title or None.
        percentile: float, default 99: the clipping percentile of absolute maps.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    amap = _prepare(attribution, signed, how, data_format)
    fig, axes = new_figure(1, 2, 2.8, extra_width=0.8)
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    im = show_heat(axes[0, 1], amap, signed, percentile, extent=extent_of(image, data_format))
    outline(axes[0, 1], image, data_format)
    axes[0, 1].set_title(heat_label(signed, percentile) + "\noutline: the image", fontsize=9)
    axes[0, 1].set_xticks([])
    axes[0, 1].set_yticks([])
    fig.colorbar(im, ax=axes[0, 1], shrink=0.85)
    if title:
        fig.suptitle(title)
    return fig


def occlusion_map(image, occlusion, data_format: str = "channels_last", title: str | None = None):
    """The image and, beside it, its occlusion map: score(x) - score(x with a window blanked), averaged per cell,
    on a diverging colormap centred on 0 (white), with the image's outline and a colour bar in score units.

    Positive (red) where hiding the cell lowers the score, i.e. evidence for
    the class; negative (blue) where hiding it raises the score.

    Args:
        image: the input image ``(H, W, C)``.
        occlusion: the map from ``jax_ref.attribution.occlusion``, shaped like ``image``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        title: figure title or None.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    amap = reduce_channels(occlusion, "sum", data_format) if np.ndim(occlusion) > 2 else np.asarray(occlusion)
    fig, axes = new_figure(1, 2, 2.8, extra_width=0.8)
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    im = show_heat(axes[0, 1], amap, True, percentile=100.0, extent=extent_of(image, data_format))
    outline(axes[0, 1], image, data_format)
    axes[0, 1].set_title("score drop when hidden\n(red: evidence for, blue: against)", fontsize=9)
    axes[0, 1].set_xticks([])
    axes[0, 1].set_yticks([])
    fig.colorbar(im, ax=axes[0, 1], shrink=0.85, label="score(x) - score(occluded)")
    if title:
        fig.suptitle(title)
    return fig


_SIGNED_BY_DEFAULT = ("occlusion", "integrated gradients")


def method_comparison(image, maps: dict, signed=None, data_format: str = "channels_last",
                      title: str | None = None):
    """One row: the image, then one panel per method (e.g. saliency, SmoothGrad, integrated gradients,
    occlusion, Grad-CAM), each map on its own with the image's outline and its own colour bar (the methods have
    different units). ``signed``: a set of method names to show signed (by default occlusion and integrated
    gradients), on a diverging colormap centred on 0; the others as absolute maps. Each panel says which.

    Args:
        image: the input image ``(H, W, C)``.
        maps: ``{method name: map shaped like image}`` (Grad-CAM's ``(H, W)`` too), non-empty.
        signed: a set of names to draw signed, or None (default, see above).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        title: figure title or None.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    if not maps:
        raise ValueError("method_comparison: maps is empty; pass {method name: attribution array}")
    if signed is None:
        signed = {k for k in maps if k.lower() in _SIGNED_BY_DEFAULT}
    fig, axes = new_figure(1, len(maps) + 1, 2.2, extra_width=0.5 * len(maps))
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    ext = extent_of(image, data_format)
    for ax, (name, amap) in zip(axes[0, 1:], maps.items(), strict=True):
        is_signed = name in signed
        a = _prepare(amap, is_signed, None, data_format) if np.ndim(amap) > 2 else np.asarray(amap)
        im = show_heat(ax, a, is_signed, extent=ext)
        outline(ax, image, data_format)
        ax.set_title(f"{name}\n{'signed' if is_signed else '|a|'}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.7)
    fig.suptitle((title + "\n" if title else "") + "absolute maps clipped at the 99th percentile of |a|; "
                 "signed maps: 0 = white", fontsize=10)
    return fig


def _strip(image, maps: dict, label, title: str, data_format: str, how: str):
    keys = list(maps)
    fig, axes = new_figure(1, len(maps) + 1, 1.9)
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    for k, (ax, key) in enumerate(zip(axes[0, 1:], keys, strict=True)):
        show_heat(ax, reduce_channels(maps[key], how, data_format), False)
        ax.set_title(label(key, keys[k - 1] if k else None, maps), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title}\n|a| ({how}), each panel scaled to its own 99th percentile", fontsize=10)
    return fig


def relative_change(new, old) -> float:
    """||new - old|| / ||new||: how much a map moved from the previous one (0 once it has settled).

    Args:
        new, old: arrays of one shape.
    """
    new, old = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    return float(np.linalg.norm(new - old) / (np.linalg.norm(new) or 1.0))


def smoothgrad_convergence(image, maps: dict, data_format: str = "channels_last", how: str = "max_abs"):
    """SmoothGrad with more and more samples: ``maps`` is ``{n: map}`` (e.g. n = 1, 5, 25, 50); the noise in
    the gradient averages out as n grows. Each panel's title gives ``relative_change`` from the previous panel's
    map, so the figure shows it settling as numbers, not only by eye.

    Args:
        image: the input image.
        maps: ``{n: SmoothGrad map}``, in increasing n.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        how: channel reduction (``viz.reduce_channels``), default ``"max_abs"``.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    if not maps:
        raise ValueError("smoothgrad_convergence: maps is empty; pass {n: smoothgrad map}")

    def label(n, prev, m):
        return f"n = {n}" if prev is None else f"n = {n}\n{100 * relative_change(m[n], m[prev]):.0f}% change"

    return _strip(image, dict(sorted(maps.items())), label, "SmoothGrad as n grows", data_format, how)


def noise_sweep(image, maps: dict, data_format: str = "channels_last", how: str = "max_abs"):
    """SmoothGrad at several noise levels: ``maps`` is ``{noise level (fraction of the value range): map}``
    (e.g. 0 to 0.3); level 0 is the plain gradient.

    Args:
        image: the input image.
        maps: ``{noise level: map}``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        how: channel reduction (``viz.reduce_channels``), default ``"max_abs"``.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    if not maps:
        raise ValueError("noise_sweep: maps is empty; pass {noise level: smoothgrad map}")
    return _strip(image, dict(sorted(maps.items())), lambda s, prev, m: f"noise {100 * s:.0f}%",
                  "SmoothGrad noise level sweep", data_format, how)


def sequence_saliency(signals, maps, titles=None, title: str = "saliency over the sequence"):
    """One row per sequence: the signal (line) and, on the same position axis, its signed attribution as bars
    (red positive, blue negative, one symmetric scale for all rows, with 0 at the axis), so a bar sits under the
    value it explains. ``signals`` and ``maps``: ``(n, length)`` arrays.

    Args:
        signals: ``(n, length)`` (or one ``(length,)`` sequence).
        maps: the attributions, the same shape.
        titles: one title per row, or None.
        title: the figure title, default ``"saliency over the sequence"``.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    x, a = np.atleast_2d(np.asarray(signals, np.float64)), np.atleast_2d(np.asarray(maps, np.float64))
    if x.shape != a.shape:
        raise ValueError(f"sequence_saliency: signals {x.shape} and maps {a.shape} must have the same shape")
    if titles is not None and len(titles) != len(x):
        raise ValueError(f"sequence_saliency: got {len(titles)} titles for {len(x)} sequences")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 1.9 * len(x)), layout="constrained")
    axes = fig.subplots(len(x), 1, squeeze=False, sharex=True)[:, 0]
    bound = float(np.abs(a).max()) or 1.0
    positions = np.arange(x.shape[1])
    for k, ax in enumerate(axes):
        ax.bar(positions, a[k], color=np.where(a[k] >= 0, "#c0392b", "#2e6fb7"), width=0.8, alpha=0.8)
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.set_ylim(-1.05 * bound, 1.05 * bound)
        ax.set_ylabel("dS/dx", fontsize=8)
        twin = ax.twinx()
        twin.plot(positions, x[k], color="k", lw=1.4)
        twin.set_ylabel("signal", fontsize=8)
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=9)
    axes[-1].set_xlabel("position")
    fig.suptitle(f"{title}\nbars: signed saliency (one scale for all rows); line: the input")
    return fig
