"""The sliding-filter picture: input, kernel and the activation map, one window highlighted."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.viz._base import new_figure


def correlate_valid(x: np.ndarray, kernel: np.ndarray, stride: int = 1) -> np.ndarray:
    """out[i, j] = sum_{u, v} x[i*s + u, j*s + v] * k[u, v] (what a conv layer computes, no flip)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape)[::stride, ::stride]
    return np.einsum("ijuv,uv->ij", windows, kernel)


def _annotate(ax, im, a: np.ndarray, fmt: str = "{:.2g}") -> None:
    """Write each value in its cell, in black or white depending on how dark the cell is drawn."""
    if a.size > 144:
        return
    rgba = im.cmap(im.norm(a))
    dark = rgba[..., :3] @ np.array([0.299, 0.587, 0.114]) < 0.5
    for (i, j), v in np.ndenumerate(a):
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if dark[i, j] else "black")


def conv_sliding(x, kernel, position=(0, 0), stride: int = 1, output=None, title: str | None = None):
    """Three panels: the input with the filter's window at output cell ``position``, the kernel, and the
    activation map with that cell outlined; the dot product for the cell is written under the figure.

    ``x`` is 2-D ``(H, W)``, ``kernel`` 2-D ``(kh, kw)``; ``output`` defaults to
    the valid cross-correlation with ``stride``.
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
    fig, axes = new_figure(1, 3, 2.8)
    panels = [(x, "input", "gray"), (k, "kernel", "RdBu_r"), (out, "activation map", "viridis")]
    for ax, (a, name, cmap) in zip(axes[0], panels, strict=True):
        kw = {"vmin": -np.abs(a).max(), "vmax": np.abs(a).max()} if cmap == "RdBu_r" else {}
        _annotate(ax, ax.imshow(a, cmap=cmap, **kw), a)
        ax.set_title(f"{name} {a.shape[0]}x{a.shape[1]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    r0, c0 = i * stride, j * stride
    axes[0, 0].add_patch(Rectangle((c0 - 0.5, r0 - 0.5), k.shape[1], k.shape[0], fill=False, ec="red", lw=2))
    axes[0, 2].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
    window = x[r0:r0 + k.shape[0], c0:c0 + k.shape[1]]
    fig.suptitle(title or f"output[{i}, {j}] = sum(window * kernel) = {float((window * k).sum()):.3g}", fontsize=10)
    return fig
