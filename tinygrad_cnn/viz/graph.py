"""Draw the engine's computation graph with matplotlib alone (no graphviz)."""

from __future__ import annotations

import numpy as np

from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.trace import graph_nodes, name_table, node_names


def _label(node: Tensor, name: str) -> str:
    ctx = node._ctx
    value = f"{node.data.item():.4g}" if node.size == 1 else f"shape {node.shape}"
    if ctx is None:
        return f"{name}\n{value}"
    return f"{name} = {ctx.function.__name__.lower()}\n{value}"


def draw_graph(output: Tensor, names=None, max_nodes: int = 200, title: str | None = None):
    """The graph that produced ``output``: one box per leaf (green: needs a gradient, grey: constant) and
    per op (blue; the output orange), an arrow from each input to the op that uses it.

    Layered layout: a node's column is its depth, 1 + the largest depth of its
    inputs (leaves at 0), so the data flows left to right and backward runs
    right to left. Scalars show their value, arrays their shape.
    """
    from matplotlib.figure import Figure

    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: output must be a Tensor; got {type(output).__name__}")
    nodes = graph_nodes(output)
    if len(nodes) > max_nodes:
        raise ValueError(f"draw_graph: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes}; "
                         f"draw a smaller expression or raise max_nodes")
    label = node_names(nodes, name_table(names, "draw_graph"))
    depth: dict[int, int] = {}
    for node in nodes:  # inputs come first
        ins = node._ctx.inputs if node._ctx is not None else ()
        depth[id(node)] = 1 + max((depth[id(p)] for p in ins), default=-1)
    layers: dict[int, list[Tensor]] = {}
    for node in nodes:
        layers.setdefault(depth[id(node)], []).append(node)
    tallest = max(len(v) for v in layers.values())
    consumers: dict[int, list[int]] = {}
    for node in nodes:
        for p in node._ctx.inputs if node._ctx is not None else ():
            consumers.setdefault(id(p), []).append(id(node))
    pos = {}
    for d in sorted(layers, reverse=True):  # from the output back: order each layer by its consumers' heights
        members = sorted(layers[d], key=lambda n: -np.mean([pos[c][1] for c in consumers.get(id(n), [])] or [0]))
        for k, node in enumerate(members):
            pos[id(node)] = (d, (len(members) - 1) / 2 - k)

    fig = Figure(figsize=(2.0 + 1.9 * len(layers), 1.2 + 1.0 * tallest), layout="constrained")
    ax = fig.subplots()
    for node in nodes:
        if node._ctx is None:
            continue
        for p in node._ctx.inputs:
            span = pos[id(node)][0] - pos[id(p)][0]
            bend = 0.0 if span == 1 else 0.25  # arcs for edges that skip layers, so they miss the boxes between
            ax.annotate("", xy=pos[id(node)], xytext=pos[id(p)],
                        arrowprops={"arrowstyle": "-|>", "color": "0.4", "shrinkA": 22, "shrinkB": 22, "lw": 1,
                                    "connectionstyle": f"arc3,rad={bend}"})
    for node in nodes:
        if node is output:
            colour = "#f6c177"
        elif node._ctx is not None:
            colour = "#9ccfd8"
        else:
            colour = "#a6da95" if node.requires_grad else "#d0d0d0"
        ax.text(*pos[id(node)], _label(node, label[id(node)]), ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.4", "fc": colour, "ec": "0.3"})
    ax.set_xlim(-0.6, len(layers) - 0.4)
    half = (tallest - 1) / 2 + 0.6
    ax.set_ylim(-half, half)
    ax.set_axis_off()
    ax.set_title(title or f"graph of {label[id(output)]}: {len(nodes)} nodes, depth {max(layers)}")
    return fig
