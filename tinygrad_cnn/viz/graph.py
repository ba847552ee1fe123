"""Draw the engine's computation graph with matplotlib alone (no graphviz)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.trace import graph_nodes, name_table, node_names


def _label(node: Tensor, name: str) -> str:
    ctx = node._ctx
    value = f"{node.data.item():.4g}" if node.size == 1 else f"shape {node.shape}"
    if ctx is None:
        return f"{name}\n{value}"
    return f"{name} = {ctx.function.__name__.lower()}\n{value}"


def _inputs(node: Tensor) -> tuple:
    return node._ctx.inputs if node._ctx is not None else ()


def layered_layout(order: list, inputs: dict, leaves_at_use: bool = False) -> dict:
    """A left-to-right layered layout of a DAG: ``{key: (column, row)}`` for the keys of ``order`` (inputs
    before the nodes that use them; ``inputs[key]`` lists a key's inputs, repeats allowed).

    A node's column is its depth, 1 + the largest column of its inputs, so data flows left to right and
    backward runs right to left. Nodes without inputs sit at column 0, or with ``leaves_at_use`` one column
    before their first consumer (a layer's weights beside it; for drawings whose edges route around boxes:
    ``draw_graph``'s arcs do not, so it keeps leaves at 0). Within a column, rows are centred on 0 and
    ordered from the output back by the mean row of each node's consumers (fewer crossings).
    """
    column: dict = {}
    for key in order:
        column[key] = 1 + max((column[p] for p in inputs[key]), default=-1)
    consumers: dict = {}
    for key in order:
        for p in inputs[key]:
            consumers.setdefault(p, []).append(key)
    for key in order:
        if leaves_at_use and not inputs[key] and key in consumers:
            column[key] = min(column[c] for c in consumers[key]) - 1
    layers: dict[int, list] = {}
    for key in order:
        layers.setdefault(column[key], []).append(key)
    pos = {}
    for col in sorted(layers, reverse=True):
        members = sorted(layers[col], key=lambda k: -np.mean([pos[c][1] for c in consumers.get(k, [])] or [0]))
        for i, key in enumerate(members):
            pos[key] = (col, (len(members) - 1) / 2 - i)
    return pos


def draw_graph(output: Tensor, names=None, max_nodes: int = 200, title: str | None = None):
    """The graph that produced ``output``: one box per leaf (green: needs a gradient, grey: constant) and
    per op (blue; the output orange), an arrow from each input to the op that uses it.

    Layout: ``layered_layout`` (a node's column is its depth, leaves at 0; data
    flows left to right, backward runs right to left). Scalars show their
    value, arrays their shape.
    """
    from matplotlib.figure import Figure

    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: output must be a Tensor; got {type(output).__name__}")
    nodes = graph_nodes(output)
    if len(nodes) > max_nodes:
        raise ValueError(f"draw_graph: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes}; "
                         f"draw a smaller expression or raise max_nodes")
    label = node_names(nodes, name_table(names, "draw_graph"))
    pos = layered_layout([id(n) for n in nodes], {id(n): [id(p) for p in _inputs(n)] for n in nodes})
    columns = 1 + max(c for c, _ in pos.values())
    tallest = max(Counter(c for c, _ in pos.values()).values())

    fig = Figure(figsize=(2.0 + 1.9 * columns, 1.2 + 1.0 * tallest), layout="constrained")
    ax = fig.subplots()
    for node in nodes:
        for p in _inputs(node):
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
    ax.set_xlim(-0.6, columns - 0.4)
    half = (tallest - 1) / 2 + 0.6
    ax.set_ylim(-half, half)
    ax.set_axis_off()
    ax.set_title(title or f"graph of {label[id(output)]}: {len(nodes)} nodes, depth {columns - 1}")
    return fig
