"""The sliding-filter picture: input, kernel and the activation map, one window highlighted."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.viz._base import new_figure


def correlate_valid(x: np.ndarray, kernel: np.ndarray, stride: int = 1) -> np.ndarray:
    """out[i, j] = sum_{u, v} x[i*s + u, j*s + v] * k[u, v] (what a conv layer computes, no flip).

    Args:
        x: 2-D array ``(H, W)``.
        kernel: 2-D array k of shape ``(kh, kw)``, at most x's size.
        stride: int s, default 1.
    """
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape)[::stride, ::stride]
    return np.einsum("ijuv,uv->ij", windows, kernel)


def annotate_cells(ax, im, a: np.ndarray, fmt: str = "{:.2g}", offset=(0.0, 0.0), fontsize: int = 7) -> None:
    """Write each value of ``a`` in its cell (cell (i, j) at ``(j, i) + offset``), in black or white depending
    on how dark the cell is drawn; nothing for maps over 144 cells, where the numbers would not fit."""
    if a.size > 144:
        return
    rgba = im.cmap(im.norm(a))
    dark = rgba[..., :3] @ np.array([0.299, 0.587, 0.114]) < 0.5
    for (i, j), v in np.ndenumerate(a):
        ax.text(j + offset[1], i + offset[0], fmt.format(v), ha="center", va="center", fontsize=fontsize,
                color="white" if dark[i, j] else "black")


def conv_sliding(x, kernel, position=(0, 0), stride: int = 1, output=None, title: str | None = None):
    """Three panels: the input with the filter's window at output cell ``position``, the kernel (its values
    written in), and the activation map with that cell outlined; the dot product for the cell is the title.

    The activation map is drawn on the input's grid: output cell (i, j) sits at the centre of the window it
    reads, i*s + (kh - 1)/2, j*s + (kw - 1)/2, one stride wide, so a response lines up with the input pattern
    that caused it (the border the valid windows never centre on stays blank). The kernel and the map have
    colour bars. ``x`` is 2-D ``(H, W)``, ``kernel`` 2-D ``(kh, kw)``; ``output`` defaults to the valid
    cross-correlation with ``stride``.

    Args:
        x: 2-D array ``(H, W)``, the input.
        kernel: 2-D array ``(kh, kw)``.
        position: ``(i, j)``, default (0, 0): the output cell shown.
        stride: int, default 1.
        output: 2-D array or None (default: ``correlate_valid(x, kernel, stride)``).
        title: str or None (default): the figure's title.
    """
    from matplotlib.patches import Rectangle

    x, k = np.asarray(x, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    if x.ndim != 2 or k.ndim != 2:
        raise ValueError(f"conv_sliding: x and kernel must be 2-D; got shapes {x.shape} and {k.shape}")
    if k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]:
        raise ValueError(f"conv_sliding: kernel {k.shape} is larger than the input {x.shape}")
    out = correlate_valid(x, k, stride) if output is None else np.asarray(output, dtype=np.float64)
    i, j = position
    if not (0 <= i < out.shape[0] and 0 <= j < out.shape[1]):
        raise ValueError(f"conv_sliding: position={position} is outside the output of shape {out.shape}")
    (h, w), (kh, kw), s = x.shape, k.shape, stride
    fig, axes = new_figure(1, 3, 2.8, extra_width=1.0)
    im = axes[0, 0].imshow(x, cmap="gray")
    annotate_cells(axes[0, 0], im, x)
    bound = np.abs(k).max() or 1.0
    im = axes[0, 1].imshow(k, cmap="RdBu_r", vmin=-bound, vmax=bound)
    annotate_cells(axes[0, 1], im, k)
    fig.colorbar(im, ax=axes[0, 1], shrink=0.7)
    top, left = (kh - 1) / 2 - s / 2, (kw - 1) / 2 - s / 2   # the map on the input's grid
    extent = (left, left + s * out.shape[1], top + s * out.shape[0], top)
    im = axes[0, 2].imshow(out, cmap="viridis", extent=extent)
    if s == 1:
        annotate_cells(axes[0, 2], im, out, offset=((kh - 1) / 2, (kw - 1) / 2))
    fig.colorbar(im, ax=axes[0, 2], shrink=0.7)
    axes[0, 2].set_xlim(-0.5, w - 0.5)
    axes[0, 2].set_ylim(h - 0.5, -0.5)
    axes[0, 2].set_facecolor("0.92")
    titles = (f"input {h}x{w}", f"kernel {kh}x{kw}", f"activation map {out.shape[0]}x{out.shape[1]}\n"
              f"at the window centres, stride {s}")
    for ax, name in zip(axes[0], titles, strict=True):
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    r0, c0 = i * s, j * s
    axes[0, 0].add_patch(Rectangle((c0 - 0.5, r0 - 0.5), kw, kh, fill=False, ec="red", lw=2))
    axes[0, 2].add_patch(Rectangle((left + s * j, top + s * i), s, s, fill=False, ec="red", lw=2))
    window = x[r0:r0 + kh, c0:c0 + kw]
    fig.suptitle(title or f"output[{i}, {j}] = sum(window * kernel) = {float((window * k).sum()):.3g}", fontsize=10)
    return fig
