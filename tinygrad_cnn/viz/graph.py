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


def graph_layout(nodes: list[Tensor]) -> tuple[dict[int, tuple[float, float]], list[list[tuple[float, float]]]]:
    """Where ``draw_graph`` puts each node and how it routes each edge (inputs before users in ``nodes``).

    Returns ``(pos, routes)``: ``pos[id(node)] = (column, row)`` and one polyline per edge (input -> op, once per
    use), from the input's box to the op's box. A node's column is its depth: 1 + the largest depth of its
    inputs for an op; a leaf sits one column before its first user. An edge that skips columns gets a waypoint
    of its own in every column it crosses, placed in that column's ordering like a node (a Sugiyama-style
    layered layout), so it runs between the boxes, never behind one.
    """
    depth: dict[int, int] = {}
    for node in nodes:  # inputs come first
        if node._ctx is not None:
            depth[id(node)] = 1 + max(depth.get(id(p), 0) for p in node._ctx.inputs)
    for node in nodes:  # ops were placed with leaves at 0; now pull each leaf up to just before its first user
        if node._ctx is not None:
            for p in node._ctx.inputs:
                if p._ctx is None:
                    depth[id(p)] = min(depth.get(id(p), depth[id(node)] - 1), depth[id(node)] - 1)
    for node in nodes:
        depth.setdefault(id(node), 0)
    edges = [(id(p), id(node)) for node in nodes if node._ctx is not None for p in node._ctx.inputs]
    members: dict[int, list] = {}    # column -> the nodes and waypoints in it
    successor: dict = {}            # item -> the items it points to in the next column
    for node in nodes:
        members.setdefault(depth[id(node)], []).append(id(node))
    chains = []
    for e, (src, dst) in enumerate(edges):
        chain = [src] + [("via", e, col) for col in range(depth[src] + 1, depth[dst])] + [dst]
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            successor.setdefault(a, []).append(b)
        for item in chain[1:-1]:
            members.setdefault(item[2], []).append(item)
        chains.append(chain)
    pos: dict = {}
    for col in sorted(members, reverse=True):  # from the output back: order each column by its successors' rows
        ordered = sorted(members[col], key=lambda m: -np.mean([pos[s][1] for s in successor.get(m, [])] or [0]))
        for k, item in enumerate(ordered):
            pos[item] = (float(col), (len(ordered) - 1) / 2 - k)
    routes = [[pos[item] for item in chain] for chain in chains]
    return {id(node): pos[id(node)] for node in nodes}, routes


def draw_graph(output: Tensor, names=None, max_nodes: int = 200, title: str | None = None):
    """The graph that produced ``output``: one box per leaf (green: needs a gradient, grey: constant) and
    per op (blue; the output orange), an arrow from each input to the op that uses it.

    Layered layout (``graph_layout``): a node's column is its depth, so the data flows left to right and
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
    pos, routes = graph_layout(nodes)
    columns = int(max(x for x, _ in pos.values())) + 1
    half = max([abs(y) for route in routes for _, y in route] + [abs(y) for _, y in pos.values()]) + 0.6

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
        boxes[pos[id(node)]] = ax.text(*pos[id(node)], _label(node, label[id(node)]), ha="center", va="center",
                                       fontsize=9, zorder=3, bbox={"boxstyle": "round,pad=0.4", "fc": colour,
                                                                   "ec": "0.3"})
    line = {"color": "0.4", "lw": 1, "shrinkA": 4, "shrinkB": 4}
    for route in routes:  # out of the right side of the input's box, into the left side of the op's box
        src, dst, via = boxes[route[0]], boxes[route[-1]], route[1:-1]
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
