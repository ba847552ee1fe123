"""Line plots: training curves and the comparison of two loss curves."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.viz._base import new_figure


def _history_dict(history) -> dict:
    h = getattr(history, "history", history)
    if not isinstance(h, dict) or not h:
        raise TypeError(f"training_curves: history must be a non-empty dict of metric lists or have a .history "
                        f"dict; got {type(history).__name__}")
    return h


def training_curves(history, title: str | None = None):
    """One panel per metric (``loss``, ``accuracy``, ...) with its ``val_`` twin on the same axes,
    against the epoch number. ``history``: a Keras-style ``History`` or its ``.history`` dict."""
    h = _history_dict(history)
    metrics = [k for k in h if not k.startswith("val_")] or list(h)
    fig, axes = new_figure(1, len(metrics), 3.2)
    for ax, name in zip(axes[0], metrics, strict=True):
        values = np.asarray(h[name], dtype=float)
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, "o-", ms=3, label=f"train {name}")
        if f"val_{name}" in h:
            ax.plot(epochs[: len(h[f"val_{name}"])], h[f"val_{name}"], "s--", ms=3, label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def loss_comparison(curve_a, curve_b, labels=("engine", "JAX"), xlabel: str = "step",
                    title: str = "loss curves"):
    """Two loss curves on one plot (top) and their absolute difference on a log scale (bottom)."""
    a, b = np.asarray(curve_a, dtype=float), np.asarray(curve_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"loss_comparison: curves must be 1-D of equal length; got {a.shape} and {b.shape}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    steps = np.arange(len(a))
    top.plot(steps, a, label=labels[0])
    top.plot(steps, b, "--", label=labels[1])
    top.set_ylabel("loss")
    top.legend()
    top.grid(alpha=0.3)
    diff = np.abs(a - b)
    bottom.semilogy(steps, np.where(diff > 0, diff, np.nan), color="k", lw=1)
    bottom.set_ylabel(f"|{labels[0]} - {labels[1]}|")
    bottom.set_xlabel(xlabel)
    bottom.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def line_plot(curves: dict, xlabel: str = "", ylabel: str = "", title: str = "", logy: bool = False, x=None):
    """Several named curves ``{label: values}`` on one axes (optionally log-scaled y)."""
    fig, axes = new_figure(1, 1, 4.0)
    ax = axes[0, 0]
    for label, ys in curves.items():
        ys = np.asarray(ys, dtype=float)
        xs = np.arange(len(ys)) if x is None else np.asarray(x)
        (ax.semilogy if logy else ax.plot)(xs, ys, "o-" if len(ys) < 30 else "-", ms=3, label=str(label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
