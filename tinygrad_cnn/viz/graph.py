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


class _Via:
    """Marks a waypoint's key in ``layered_layout`` (``(_Via, edge, column)``), which no caller's key can equal."""


def layered_layout(order: list, inputs: dict) -> tuple[dict, list]:
    """A left-to-right layered layout of a DAG whose edges run between the boxes, never behind one.

    ``order`` lists the keys, inputs before the nodes that use them; ``inputs[key]`` lists a key's inputs
    (repeats allowed: one edge per use). Returns ``(pos, routes)``: ``pos[key] = (column, row)`` and, per edge
    in the order of ``order`` and then of each ``inputs[key]``, ``(src, dst, points)``, the polyline from
    ``pos[src]`` to ``pos[dst]``. A node's column is its depth, 1 + the largest column of its inputs, so data
    flows left to right and backward runs right to left; a node without inputs sits one column before its
    first consumer (a layer's weights beside it). An edge that skips columns gets a waypoint of its own in every
    column it crosses, placed in that column's ordering like a node (a Sugiyama-style layout), so consecutive
    points are one column apart and no segment meets a box. Within a column, rows are centred on 0 and ordered
    from the output back by the mean row of what each item points to (fewer crossings).

    Args:
        order: list of hashable keys, inputs before their users.
        inputs: dict ``{key: list of input keys}``.
    """
    column: dict = {}
    for key in order:
        column[key] = 1 + max((column[p] for p in inputs[key]), default=-1)
    first_use: dict = {}
    for key in order:
        for p in inputs[key]:
            first_use[p] = min(first_use.get(p, column[key]), column[key])
    for key in order:
        if not inputs[key] and key in first_use:
            column[key] = first_use[key] - 1
    members: dict[int, list] = {}   # column -> the keys and waypoints in it
    successors: dict = {}           # item -> the items it points to in the next column
    for key in order:
        members.setdefault(column[key], []).append(key)
    chains = []
    for key in order:
        for p in inputs[key]:
            e = len(chains)
            chain = [p] + [(_Via, e, c) for c in range(column[p] + 1, column[key])] + [key]
            for a, b in zip(chain[:-1], chain[1:], strict=True):
                successors.setdefault(a, []).append(b)
            for via in chain[1:-1]:
                members[via[2]].append(via)
            chains.append(chain)
    pos: dict = {}
    for col in sorted(members, reverse=True):
        ranked = sorted(members[col], key=lambda m: -np.mean([pos[s][1] for s in successors.get(m, [])] or [0]))
        for k, item in enumerate(ranked):
            pos[item] = (col, (len(ranked) - 1) / 2 - k)
    routes = [(chain[0], chain[-1], [pos[item] for item in chain]) for chain in chains]
    return {key: pos[key] for key in order}, routes


def draw_graph(output: Tensor, names=None, max_nodes: int = 200, title: str | None = None):
    """The graph that produced ``output``: one box per leaf (green: needs a gradient, grey: constant) and
    per op (blue; the output orange), an arrow from each input to the op that uses it.

    Layered layout (``layered_layout``): a node's column is its depth, so the data flows left to right and
    backward runs right to left; an edge that skips columns is routed between the boxes of the columns it
    crosses, never behind one. Scalars show their value, arrays their shape. The title counts the nodes drawn
    and how many of them are constants (which get no gradient).

    Args:
        output: the Tensor whose graph to draw.
        names: ``{name: Tensor}`` labelling nodes, or None.
        max_nodes: int, default 200: a larger graph is refused (ValueError; ``viz.explore`` collapses layers).
        title: figure title or None (default: the node counts).

    Returns:
        A ``matplotlib.figure.Figure`` (save it with ``viz.save_figure(fig, path)``).
    """
    from matplotlib.figure import Figure

    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: output must be a Tensor; got {type(output).__name__}")
    nodes = graph_nodes(output)
    if len(nodes) > max_nodes:
        raise ValueError(f"draw_graph: the graph has {len(nodes)} nodes, more than max_nodes={max_nodes}; "
                         f"draw a smaller expression or raise max_nodes")
    label = node_names(nodes, name_table(names, "draw_graph"))
    pos, routes = layered_layout([id(n) for n in nodes],
                                 {id(n): [id(p) for p in n._ctx.inputs] if n._ctx is not None else [] for n in nodes})
    columns = max(x for x, _ in pos.values()) + 1
    rows = [y for _, y in pos.values()] + [y for _, _, points in routes for _, y in points]  # waypoints too
    half = max(abs(y) for y in rows) + 0.6

    fig = Figure(figsize=(2.0 + 1.9 * columns, 1.2 + 2.0 * half), layout="constrained")
    ax = fig.subplots()
    boxes, constants = {}, 0
    for node in nodes:
        if node is output:
            colour = "#f6c177"
        elif node._ctx is not None:
            colour = "#9ccfd8"
        else:
            colour = "#a6da95" if node.requires_grad else "#d0d0d0"
            constants += not node.requires_grad
        boxes[id(node)] = ax.text(*pos[id(node)], _label(node, label[id(node)]), ha="center", va="center",
                                  fontsize=9, zorder=3, bbox={"boxstyle": "round,pad=0.4", "fc": colour, "ec": "0.3"})
    line = {"color": "0.4", "lw": 1, "shrinkA": 4, "shrinkB": 4}
    for src, dst, points in routes:  # out of the right side of the input's box, into the left side of the op's box
        src, dst, via = boxes[src], boxes[dst], points[1:-1]
        start = {"xytext": (1.0, 0.5), "textcoords": src}
        if via:  # the waypoints: a plain line from the input to the last one, then the arrow into the op
            ax.annotate("", xy=via[0], **start, arrowprops={**line, "arrowstyle": "-", "shrinkB": 0})
            ax.plot(*zip(*via, strict=True), color="0.4", lw=1, zorder=1)
            start = {"xytext": via[-1], "textcoords": "data"}
        ax.annotate("", xy=(0.0, 0.5), xycoords=dst, **start,
                    arrowprops={**line, "arrowstyle": "-|>", "shrinkA": 0 if via else 4})
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-half, half)
    ax.set_axis_off()
    consts = f" ({constants} constant{'s' * (constants != 1)}, no gradient)" if constants else ""
    ax.set_title(title or f"graph of {label[id(output)]}: {len(nodes)} nodes{consts}, depth {columns - 1}")
    return fig
