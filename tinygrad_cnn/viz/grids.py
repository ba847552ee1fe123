"""Grids of images, feature maps and filters."""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.viz._base import hide_unused, new_figure, show_image
from tinygrad_cnn.viz.conv import annotate_cells


def _grid_shape(count: int, ncols: int | None) -> tuple[int, int]:
    ncols = min(count, ncols or math.ceil(math.sqrt(count)))
    return math.ceil(count / ncols), ncols


def image_grid(images, titles=None, cmap: str = "gray", ncols: int | None = None,
               data_format: str = "channels_last", suptitle: str | None = None, panel: float = 1.8,
               shared_scale: bool = False, colorbar: bool = False):
    """A grid of images (a batch ``(N, H, W[, C])`` or a list of arrays), with optional titles.

    By default each single-channel panel is scaled to its own range (fine for pictures). Panels whose values are
    to be compared need ``shared_scale=True``: one colour scale, from the smallest to the largest value of all
    panels, so equal values get equal colours in every panel; ``colorbar=True`` adds that scale's colour bar
    (and implies ``shared_scale``).

    Args:
        images: a batch ``(N, H, W[, C])`` or a list of arrays.
        titles: one title per image, or None.
        cmap: colormap of single-channel images, default ``"gray"``.
        ncols: panels per row, default ceil(sqrt(N)).
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        suptitle: figure title or None.
        panel: inches per panel, default 1.8.
        shared_scale: bool, default False.
        colorbar: bool, default False.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    images = list(images)
    if not images:
        raise ValueError("image_grid: images is empty; need at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"image_grid: got {len(titles)} titles for {len(images)} images")
    nrows, ncols = _grid_shape(len(images), ncols)
    fig, axes = new_figure(nrows, ncols, panel, extra_width=0.8 if colorbar else 0.0)
    shared_scale = shared_scale or colorbar
    limits = {}
    if shared_scale:
        lo = min(float(np.min(img)) for img in images)
        hi = max(float(np.max(img)) for img in images)
        limits = {"vmin": lo, "vmax": hi if hi > lo else lo + 1.0}
    for i, (ax, img) in enumerate(zip(axes.flat, images, strict=False)):
        im = show_image(ax, img, cmap, data_format, None if titles is None else str(titles[i]), **limits)
    hide_unused(axes, len(images))
    if colorbar:
        fig.colorbar(im, ax=axes, shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def _one_image(name: str, fmap, data_format: str) -> np.ndarray:
    a = np.asarray(fmap, dtype=np.float64)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(f"feature_map_grid: layer {name!r} has a batch of {a.shape[0]}; pass one image")
        a = a[0]
    if a.ndim == 3 and data_format == "channels_first":
        a = np.moveaxis(a, 0, -1)
    return a


def feature_map_grid(feature_maps: dict, layer: str | None = None, max_channels: int = 64,
                     data_format: str = "channels_last", image=None, cmap: str = "viridis"):
    """What each layer outputs for one image.

    ``feature_maps``: ``{layer name: activation}`` with activations shaped
    ``(H, W, C)`` (or ``(1, H, W, C)``). With ``layer=None`` every spatial
    layer is shown averaged over its channels, (1/C) sum_c a[:, :, c], in
    network order (``image`` first if given); with ``layer`` set, the first
    ``max_channels`` channels of that layer are shown one per panel.

    Args:
        feature_maps: ``{layer name: activation}`` (``jax_ref.attribution.feature_maps``' output).
        layer: a layer name or None (default: every layer, channel-averaged).
        max_channels: int, default 64.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
        image: the input image, shown first, or None.
        cmap: default ``"viridis"``.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    data_format = validation.data_format("feature_map_grid", data_format)
    maps = {k: _one_image(k, v, data_format) for k, v in feature_maps.items()}
    if layer is not None:
        if layer not in maps:
            raise ValueError(f"feature_map_grid: layer={layer!r} is not one of {list(maps)}")
        a = maps[layer]
        if a.ndim != 3:
            raise ValueError(f"feature_map_grid: layer {layer!r} output has shape {a.shape}; not a spatial map")
        count = min(a.shape[-1], max_channels)
        nrows, ncols = _grid_shape(count, None)
        fig, axes = new_figure(nrows, ncols, 1.5)
        for c, ax in zip(range(count), axes.flat, strict=False):
            show_image(ax, a[..., c], cmap, title=f"ch {c}")
        hide_unused(axes, count)
        fig.suptitle(f"{layer}: {count} of {a.shape[-1]} channels")
        return fig
    panels = [(k, v.mean(-1)) for k, v in maps.items() if v.ndim == 3]
    if image is not None:
        panels.insert(0, ("input", image))
    if not panels:
        raise ValueError("feature_map_grid: no layer has a spatial (H, W, C) output")
    fig, axes = new_figure(1, len(panels), 2.0)
    for ax, (name, a) in zip(axes.flat, panels, strict=True):
        shape = maps[name].shape if name in maps else np.shape(a)
        show_image(ax, a, "gray" if name == "input" else cmap, data_format if name == "input" else "channels_last",
                   title=f"{name}\n{'x'.join(map(str, shape))}")
    fig.suptitle("feature maps, averaged over channels")
    return fig


def filter_grid(kernel, max_filters: int = 64, in_channel: int | None = None, title: str | None = None,
                names=None, values: bool = False):
    """Learned filters of a conv kernel shaped ``kernel_size + (in_channels, filters)`` (Keras order).

    A kernel with 3 input channels is shown in colour (rescaled to [0, 1]);
    otherwise input channel ``in_channel`` or, by default, the mean over
    input channels, on a diverging colormap with one symmetric scale for all
    filters (so 0 is white and strengths compare across panels), with its colour
    bar. ``names``: one title per filter (default its index); ``values=True``
    writes each weight in its cell (for small hand-made kernels).

    Args:
        kernel: a conv kernel ``(kh, kw, in, filters)`` (or 1-D ``(k, in, filters)``).
        max_filters: int, default 64.
        in_channel: int or None (default: the mean over input channels).
        title: figure title or None.
        names: one title per filter, or None.
        values: bool, default False.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """

    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim == 3:  # 1-D kernel (k, in, out): show each filter as a 1 x k strip
        k = k[None]
    if k.ndim != 4:
        raise ValueError(f"filter_grid: kernel must have shape (kh, kw, in, out) or (k, in, out); got {k.shape}")
    count = min(k.shape[-1], max_filters)
    if names is not None and len(names) < count:
        raise ValueError(f"filter_grid: got {len(names)} names for {count} filters")
    colour = k.shape[2] == 3 and in_channel is None
    if in_channel is not None:
        if not 0 <= in_channel < k.shape[2]:
            raise ValueError(f"filter_grid: in_channel={in_channel} out of range for {k.shape[2]} input channels")
        planes = k[:, :, in_channel, :count]
    else:
        planes = k[..., :count] if colour else k.mean(2)[..., :count]
    nrows, ncols = _grid_shape(count, None)
    fig, axes = new_figure(nrows, ncols, 1.6 if values or names is not None else 1.2,
                           extra_width=0.0 if colour else 0.8)
    bound = float(np.abs(planes).max()) or 1.0
    for f, ax in zip(range(count), axes.flat, strict=False):
        if colour:
            rgb = planes[..., f]
            ax.imshow((rgb - rgb.min()) / (np.ptp(rgb) or 1.0))
        else:
            im = ax.imshow(planes[..., f], cmap="RdBu_r", vmin=-bound, vmax=bound)
            if values:
                annotate_cells(ax, im, planes[..., f], fmt="{:.2g}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(f) if names is None else str(names[f]), fontsize=9)
    hide_unused(axes, count)
    if not colour:
        fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(title or f"{count} filters {k.shape[0]}x{k.shape[1]}")
    return fig
