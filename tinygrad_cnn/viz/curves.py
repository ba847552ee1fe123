"""Line plots: training curves and the comparison of two loss curves."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.viz._base import new_figure, text_width


def integer_ticks(axis, values) -> None:
    """Integer tick labels on ``axis`` (``ax.xaxis``) when every value plotted along it is a whole number
    (layers, epochs, pixels): no "2.5 layers"."""
    from matplotlib.ticker import MaxNLocator

    v = np.asarray(values, dtype=float)
    if v.size and np.all(np.isfinite(v)) and np.all(v == np.round(v)):
        axis.set_major_locator(MaxNLocator(integer=True))


def _history_dict(history) -> dict:
    h = getattr(history, "history", history)
    if not isinstance(h, dict) or not h:
        raise TypeError(f"training_curves: history must be a non-empty dict of metric lists or have a .history "
                        f"dict; got {type(history).__name__}")
    return h


def training_curves(history, title: str | None = None):
    """One panel per metric (``loss``, ``accuracy``, ...) with its ``val_`` twin on the same axes,
    against the epoch number.

    Args:
        history: what ``fit`` returns (a ``History``) or its ``.history`` dict ``{name: [one value per epoch]}``.
        title: figure title or None.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
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
        integer_ticks(ax.xaxis, epochs)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def _log_visible(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``values`` with the entries a log axis cannot show (``v <= 0`` or not finite) set to NaN, so they leave a
    gap instead of vanishing silently, and the counts ``(non-positive, non-finite)`` of those entries."""
    finite = np.isfinite(values)
    nonpositive = finite & (values <= 0)
    return np.where(finite & ~nonpositive, values, np.nan), int(nonpositive.sum()), int((~finite).sum())


def loss_comparison(curve_a, curve_b, labels=("engine", "JAX"), xlabel: str = "step",
                    title: str = "loss curves"):
    """Two loss curves a, b against the step 0, 1, ... (top) and ``|a - b|`` per step on a log scale (bottom).

    Steps where ``a == b`` exactly, or where the difference is not finite, cannot
    appear on a log scale: they are left as gaps and counted in a note on the
    bottom panel (which says so when the curves are equal at every step).

    Args:
        curve_a, curve_b: 1-D sequences of losses of equal length.
        labels: the two legend labels, default ``("engine", "JAX")``.
        xlabel: default ``"step"``.
        title: default ``"loss curves"``.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    fn = "loss_comparison"
    if not isinstance(labels, (tuple, list)) or len(labels) != 2 or not all(isinstance(s, str) for s in labels):
        raise ValueError(f"{fn}: labels must be two strings, one per curve; got {labels!r}")
    label_a, label_b = labels
    a, b = np.asarray(curve_a, dtype=float), np.asarray(curve_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"{fn}: curve_a and curve_b must be non-empty 1-D curves of equal length; got shapes "
                         f"{a.shape} and {b.shape}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    steps = np.arange(len(a))
    top.plot(steps, a, label=label_a)
    top.plot(steps, b, "--", label=label_b)
    top.set_ylabel("loss")
    top.legend()
    top.grid(alpha=0.3)
    with np.errstate(invalid="ignore"):  # inf - inf: a non-finite difference, counted below
        diff, equal, nonfinite = _log_visible(np.abs(a - b))
    bottom.set_yscale("log")
    notes = [f"equal at {equal} of {len(a)} steps"] * bool(equal) + \
        [f"difference not finite at {nonfinite} of {len(a)} steps"] * bool(nonfinite)
    if np.isfinite(diff).any():
        bottom.plot(steps, diff, color="k", lw=1)
    else:  # nothing to draw: no made-up log ticks
        bottom.set_yticks([])
    if notes:
        bottom.text(0.01, 0.95, "; ".join(notes) + " (gaps on the log scale)", transform=bottom.transAxes,
                    ha="left", va="top", fontsize=8)
    bottom.set_ylabel(f"|{label_a} - {label_b}|")
    bottom.set_xlabel(xlabel)
    bottom.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def line_plot(curves: dict, xlabel: str = "", ylabel: str = "", title: str = "", logy: bool = False, x=None,
              logx: bool = False):
    """Several named curves ``{label: values}`` on one axes, against ``x`` (default 0, 1, ...).

    ``logy`` / ``logx`` put that axis on a log scale (base 10: equal steps are equal ratios); on a log axis a
    value ``<= 0`` or not finite cannot be drawn: it is left as a gap and the curve's legend entry says how many
    values are not shown (for ``logx``, an ``x <= 0`` hides that point of every curve). An x axis of whole
    numbers gets integer ticks. The figure is wide enough for a long title.

    Args:
        curves: ``{label: 1-D values}``.
        xlabel, ylabel, title: axis labels and title, default empty.
        logy: bool, default False.
        x: the shared x values, or None (default 0, 1, ...).
        logx: bool, default False.

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    # the title is centred over the axes, which sit right of the y label: 1.2 inches of margin
    fig, axes = new_figure(1, 1, 4.0, extra_width=max(0.0, text_width(title) + 1.2 - 4.0))
    ax = axes[0, 0]
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    all_x = []
    for label, ys in curves.items():
        ys, label = np.asarray(ys, dtype=float), str(label)
        xs = np.arange(len(ys)) if x is None else np.asarray(x, dtype=float)
        hidden = []
        if logy:
            ys, nonpositive, nonfinite = _log_visible(ys)
            hidden += [f"{nonpositive} values <= 0"] * bool(nonpositive) + [f"{nonfinite} not finite"] * bool(nonfinite)
        if logx:
            shown, nonpositive, nonfinite = _log_visible(xs)
            ys = np.where(np.isnan(shown), np.nan, ys)
            hidden += [f"{nonpositive} x <= 0"] * bool(nonpositive) + [f"{nonfinite} x not finite"] * bool(nonfinite)
        if hidden:
            label += f" ({', '.join(hidden)}: not shown)"
        ax.plot(xs, ys, "o-" if len(ys) < 30 else "-", ms=3, label=label)
        all_x.append(xs)
    if not logx and all_x:
        integer_ticks(ax.xaxis, np.concatenate(all_x))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both" if (logx or logy) else "major")
    ax.legend(fontsize=8)
    return fig
