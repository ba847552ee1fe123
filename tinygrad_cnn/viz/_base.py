"""Shared pieces of the figure module: figures without pyplot, saving, image and channel handling.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot global
state, any backend, nothing to close); matplotlib is imported only when a
figure is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinygrad_cnn import validation

REDUCTIONS = ("max_abs", "sum_abs", "sum")


def new_figure(nrows: int, ncols: int, panel: float = 2.2, extra_width: float = 0.0, squeeze: bool = False):
    """A constrained-layout Figure with a ``(nrows, ncols)`` array of Axes, ``panel`` inches per panel."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel * ncols + extra_width, panel * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze)
    return fig, axes


DPI = 150  # readable on a projector: a 2.2-inch panel is 330 pixels wide, 9-point text about 19 pixels tall


def text_width(text: str, fontsize: float | None = None) -> float:
    """The width in inches of ``text`` at ``fontsize`` points (default: matplotlib's title size), so a figure can
    be made wide enough for its title instead of clipping it."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    size = fontsize or FontProperties(size=rcParams["axes.titlesize"]).get_size_in_points()
    width, _, _ = TextToPath().get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return width / 72.0


def save_figure(fig, path, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``path`` (PNG unless the suffix says otherwise) at ``dpi`` dots per inch, creating
    folders; return the path.

    Args:
        fig: a ``matplotlib.figure.Figure`` (what every ``viz`` function returns).
        path: file path; ``.png``, ``.pdf``, ``.svg``, ... choose the format.
        dpi: int, default 150 (readable on a projector).

    Returns:
        The path as a ``pathlib.Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def to_display(image, data_format: str = "channels_last") -> np.ndarray:
    """One image as ``(H, W)`` or ``(H, W, 3)`` for ``imshow``: a single channel is squeezed,
    ``channels_first`` moved last; other channel counts are averaged to gray. A ``channels_last`` image whose
    first axis looks like channels (1, 3 or 4) and whose last does not (more than 4) is refused: it is almost
    surely ``(C, H, W)``, which would be averaged into a meaningless gray picture."""
    img = np.asarray(image, dtype=np.float64)
    data_format = validation.data_format("viz", data_format)
    if img.ndim == 2:
        return img
    if img.ndim != 3:
        raise ValueError(f"viz: an image must have shape (H, W) or (H, W, C); got shape {img.shape}")
    if data_format == "channels_last" and img.shape[0] in (1, 3, 4) and img.shape[-1] > 4:
        raise ValueError(f"viz: the image has shape {img.shape}, which looks channels_first ({img.shape[0]} "
                         f"channels, then {img.shape[1]}x{img.shape[2]} pixels) but data_format='channels_last'; "
                         f"pass data_format='channels_first' or move the channel axis last")
    if data_format == "channels_first":
        img = np.moveaxis(img, 0, -1)
    if img.shape[-1] == 1:
        return img[..., 0]
    if img.shape[-1] == 3:
        lo, hi = img.min(), img.max()
        return (img - lo) / (hi - lo) if hi > lo and (lo < 0 or hi > 1) else img
    return img.mean(-1)


def reduce_channels(attribution, how: str = "max_abs", data_format: str = "channels_last") -> np.ndarray:
    """Collapse the channel axis of an attribution: ``(H, W, C) -> (H, W)``, ``(N, H, W, C) -> (N, H, W)``.

    ``max_abs``: max_c |a_c| (how strongly any channel matters); ``sum_abs``:
    sum_c |a_c|; ``sum``: sum_c a_c (keeps the sign, for diverging maps).
    A 2-D map is returned unchanged. ``channels_first`` reads ``(C, H, W)``.

    Args:
        attribution: ``(H, W, C)``, ``(N, H, W, C)`` or a 2-D map.
        how: ``"max_abs"`` (default), ``"sum_abs"`` or ``"sum"``.
        data_format: ``"channels_last"`` (default) or ``"channels_first"``.
    """
    how = validation.choice("reduce_channels", "how", how, REDUCTIONS)
    data_format = validation.data_format("reduce_channels", data_format)
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim == 2:
        return a
    if a.ndim not in (3, 4):
        raise ValueError(f"reduce_channels: attribution must have shape (H, W), (H, W, C) or (N, H, W, C); "
                         f"got shape {a.shape}")
    axis = -1 if data_format == "channels_last" else a.ndim - 3
    if how == "max_abs":
        return np.abs(a).max(axis=axis)
    if how == "sum_abs":
        return np.abs(a).sum(axis=axis)
    return a.sum(axis=axis)


def clip_abs(amap: np.ndarray, percentile: float = 99.0) -> tuple[np.ndarray, float]:
    """|amap| clipped at its ``percentile``-th percentile, and that bound (at least a tiny positive)."""
    a = np.abs(amap)
    vmax = float(np.percentile(a, percentile)) if a.size else 0.0
    vmax = vmax if vmax > 0 else (float(a.max()) or 1e-12)
    return np.minimum(a, vmax), vmax


def heat_label(signed: bool, percentile: float = 99.0) -> str:
    """What ``show_heat`` drew, said on the figure: signed or absolute, and where the scale was clipped."""
    clip = f"clipped at the {percentile:g}th percentile of |a|" if percentile < 100 else "not clipped"
    return f"signed, 0 = white, {clip}" if signed else f"|a|, {clip}"


def outline(ax, image, data_format: str = "channels_last") -> None:
    """Thin contour lines of ``image`` at its mid grey level, in the image's pixel coordinates: where the object
    is, drawn over a map shown on its own (no alpha blending, so the map's colours stay true)."""
    img = to_display(image, data_format)
    img = img.mean(-1) if img.ndim == 3 else img
    lo, hi = float(img.min()), float(img.max())
    if hi > lo:
        ax.contour(img, levels=[(lo + hi) / 2], colors="k", linewidths=0.8, alpha=0.7)
    ax.set_xlim(-0.5, img.shape[1] - 0.5)
    ax.set_ylim(img.shape[0] - 0.5, -0.5)


def show_heat(ax, amap, signed: bool, percentile: float = 99.0, alpha: float = 1.0, extent=None):
    """Draw an attribution map on ``ax``: absolute (clipped at the percentile, sequential colormap) or
    signed (diverging colormap, 0 at the centre and white, symmetric bound at the percentile of |a|)."""
    from matplotlib.colors import TwoSlopeNorm

    amap = np.asarray(amap, dtype=np.float64)
    if signed:
        _, bound = clip_abs(amap, percentile)
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)
        return ax.imshow(np.clip(amap, -bound, bound), cmap="RdBu_r", norm=norm, alpha=alpha, extent=extent)
    clipped, vmax = clip_abs(amap, percentile)
    return ax.imshow(clipped, cmap="inferno", vmin=0.0, vmax=vmax, alpha=alpha, extent=extent)


def show_image(ax, image, cmap="gray", data_format: str = "channels_last", title: str | None = None,
               vmin: float | None = None, vmax: float | None = None):
    """``imshow`` one image without ticks (a single channel scaled to ``[vmin, vmax]``, by default its own
    range); returns the AxesImage."""
    img = to_display(image, data_format)
    limits = {"vmin": vmin, "vmax": vmax} if img.ndim == 2 else {}
    im = ax.imshow(img, cmap=cmap if img.ndim == 2 else None, **limits)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return im


def extent_of(image, data_format: str = "channels_last") -> tuple[float, float, float, float]:
    """imshow extent that makes a map of any resolution cover ``image`` exactly (for overlays)."""
    h, w = to_display(image, data_format).shape[:2]
    return (-0.5, w - 0.5, h - 0.5, -0.5)


def hide_unused(axes, used: int) -> None:
    """Switch off the panels after the first ``used`` ones."""
    for ax in np.ravel(axes)[used:]:
        ax.set_axis_off()
