"""Attribution figures: heat maps over the image, occlusion, method comparison, SmoothGrad strips.

Maps arrive raw (shaped like the image, or ``(h, w)`` for Grad-CAM and
occlusion); channels are reduced here with ``reduce_channels``. Absolute maps
are clipped at the 99th percentile of |a| so a few extreme pixels do not wash
out the rest; signed maps use a diverging colormap with 0 at the centre.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.viz._base import extent_of, new_figure, reduce_channels, show_heat, show_image


def _prepare(amap, signed: bool, how: str | None, data_format: str) -> np.ndarray:
    how = how or ("sum" if signed else "max_abs")
    return reduce_channels(amap, how, data_format)


def attribution_heatmap(image, attribution, signed: bool = False, how: str | None = None,
                        data_format: str = "channels_last", title: str | None = None,
                        percentile: float = 99.0, alpha: float = 0.55):
    """Three panels: the image, the attribution map, and the map laid over the image.

    Absolute maps (``signed=False``): channels reduced with ``how`` (default
    ``max_abs``), clipped at the ``percentile``-th percentile. Signed maps:
    channels summed, diverging colormap centred on 0 with a symmetric bound.
    """
    amap = _prepare(attribution, signed, how, data_format)
    fig, axes = new_figure(1, 3, 2.4, extra_width=0.6)
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    im = show_heat(axes[0, 1], amap, signed, percentile, extent=extent_of(image, data_format))
    axes[0, 1].set_title("signed attribution" if signed else "|attribution|", fontsize=9)
    show_image(axes[0, 2], image, data_format=data_format, title="overlay")
    show_heat(axes[0, 2], amap, signed, percentile, alpha=alpha, extent=extent_of(image, data_format))
    for ax in axes[0, 1:]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0, 1:], shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def occlusion_map(image, occlusion, data_format: str = "channels_last", title: str | None = None):
    """The image and its occlusion map: score(x) - score(x with a window blanked), averaged per cell.

    Positive (red) where hiding the cell lowers the score, i.e. evidence for
    the class; negative (blue) where hiding it raises the score.
    """
    amap = reduce_channels(occlusion, "sum", data_format) if np.ndim(occlusion) > 2 else np.asarray(occlusion)
    fig, axes = new_figure(1, 2, 2.6, extra_width=0.6)
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    show_image(axes[0, 1], image, data_format=data_format, title="occlusion: score drop")
    im = show_heat(axes[0, 1], amap, True, alpha=0.7, extent=extent_of(image, data_format))
    fig.colorbar(im, ax=axes[0, 1], shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


_SIGNED_BY_DEFAULT = ("occlusion", "integrated gradients")


def method_comparison(image, maps: dict, signed=None, data_format: str = "channels_last",
                      title: str | None = None, overlay: bool = True):
    """One row: the image, then one panel per method (e.g. saliency, SmoothGrad, integrated gradients,
    occlusion, Grad-CAM). ``signed``: a set of method names to show signed (by default occlusion
    and integrated gradients), the others as absolute maps."""
    if not maps:
        raise ValueError("method_comparison: maps is empty; pass {method name: attribution array}")
    if signed is None:
        signed = {k for k in maps if k.lower() in _SIGNED_BY_DEFAULT}
    fig, axes = new_figure(1, len(maps) + 1, 2.2)
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    ext = extent_of(image, data_format)
    for ax, (name, amap) in zip(axes[0, 1:], maps.items(), strict=True):
        is_signed = name in signed
        a = _prepare(amap, is_signed, None, data_format) if np.ndim(amap) > 2 else np.asarray(amap)
        if overlay:
            show_image(ax, image, data_format=data_format)
        show_heat(ax, a, is_signed, alpha=0.6 if overlay else 1.0, extent=ext)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return fig


def _strip(image, maps: dict, label, title: str, data_format: str, how: str):
    fig, axes = new_figure(1, len(maps) + 1, 1.9)
    show_image(axes[0, 0], image, data_format=data_format, title="image")
    for ax, (key, amap) in zip(axes[0, 1:], maps.items(), strict=True):
        show_heat(ax, reduce_channels(amap, how, data_format), False)
        ax.set_title(label(key), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    return fig


def smoothgrad_convergence(image, maps: dict, data_format: str = "channels_last", how: str = "max_abs"):
    """SmoothGrad with more and more samples: ``maps`` is ``{n: map}`` (e.g. n = 1, 5, 25, 50);
    the noise in the gradient averages out as n grows."""
    if not maps:
        raise ValueError("smoothgrad_convergence: maps is empty; pass {n: smoothgrad map}")
    return _strip(image, dict(sorted(maps.items())), lambda n: f"n = {n}", "SmoothGrad as n grows",
                  data_format, how)


def noise_sweep(image, maps: dict, data_format: str = "channels_last", how: str = "max_abs"):
    """SmoothGrad at several noise levels: ``maps`` is ``{noise level (fraction of the value range): map}``
    (e.g. 0 to 0.3); level 0 is the plain gradient."""
    if not maps:
        raise ValueError("noise_sweep: maps is empty; pass {noise level: smoothgrad map}")
    return _strip(image, dict(sorted(maps.items())), lambda s: f"noise {100 * s:.0f}%",
                  "SmoothGrad noise level sweep", data_format, how)
