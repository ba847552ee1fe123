"""Watch backprop happen: the recorded graph and its backward pass as one self-contained HTML page.

``explore(output)`` runs ``trace(output)`` (the backward pass ``backward()``
runs, observed, without touching any ``.grad``) and writes what it saw into a
page that needs nothing but a browser: no network, no CDN, the data, styles
and script all inline. The page lays the graph out left to right
(``layered_layout``, as ``draw_graph``: an edge that skips columns runs
between the boxes) and steps through the backward pass in the engine's own
order, from the output back to the leaves; at each step the
current node is highlighted, the cotangent sent by each consumer is written on
its edge, their sum is the node's gradient (the multivariate chain rule), and
the primitive's vjp rule is shown (with the numbers substituted when the node
and its inputs are scalars). Nodes that feed more than one consumer (fan-out)
are marked. Large graphs collapse to layers: every unnamed node joins the
first named node it feeds, and a click expands a layer.
"""

from __future__ import annotations

import html
import inspect
import json
import re
from pathlib import Path

import numpy as np

from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.trace import format_array, graph_nodes, name_table, node_names, trace
from tinygrad_cnn.viz.graph import layered_layout

__all__ = ["Explorer", "explore", "layer_names"]

PAGE = Path(__file__).with_name("explore_page.html")
DATA_MARK = "/*EXPLORER_DATA*/"
COLLAPSE_ABOVE = 20  # nodes; larger graphs start collapsed to layers (when names mark the layers)
FULL_VALUES = 4096  # elements; larger non-leaf gradients are embedded as summaries (sum, norm, max |.|)
SHOWN = 8  # elements written out in labels; larger tensors are summarised
# where a docstring's vjp formula ends and its prose begins: "(= ...", "(as ...", ", so ...", a sentence end
PROSE = re.compile(r"\s\((?:=|as\b)|,\s(?:so|each|with|computed|the|factored|as)\b|\.\s|\.$")


class Explorer:
    """The page ``explore`` made: ``html`` (the whole page), ``path`` (where it was written, or None) and
    ``data`` (what the page embeds: nodes, views and steps). In Jupyter it displays inline (an iframe whose
    ``srcdoc`` is the page, so its script runs); ``save(path)`` writes it.

    Args:
        page: str, the HTML page.
        data: dict, what the page embeds.
        path: ``Path`` or None (default): where it was written.
    """

    def __init__(self, page: str, data: dict, path: Path | None = None):
        self.html, self.data, self.path = page, data, path

    def save(self, path) -> Path:
        """Write the page to ``path`` (creating folders) and return the path.

        Args:
            path: str or ``Path`` of the HTML file.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html, encoding="utf-8")
        self.path = path
        return path

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" sandbox="allow-scripts" '
                f'style="width: 100%; height: 660px; border: 1px solid #ccc"></iframe>')

    def __repr__(self) -> str:
        where = f", written to {self.path}" if self.path else ""
        return f"Explorer({len(self.data['nodes'])} nodes, {len(self.data['steps'])} backward steps{where})"


def _kind(node: Tensor, output: Tensor) -> str:
    if node is output:
        return "output"
    if node._ctx is not None:
        return "op"
    return "leaf" if node.requires_grad else "const"


def vjp_rule(function) -> str:
    """The math and vjp of a primitive from its docstring: the first paragraph, and the paragraph that
    states the vjp when the first does not (lines joined)."""
    doc = inspect.getdoc(function) or ""
    paragraphs = [" ".join(p.replace("``", "").split()) for p in doc.split("\n\n") if p.strip()]  # no reST marks
    if not paragraphs:
        return function.__name__
    rule = paragraphs[0]
    if "vjp:" not in rule:
        rule += "  " + next((p for p in paragraphs[1:] if "vjp:" in p), "")
    return rule.strip()


def _number(v) -> str:
    text = format_array(v, 1)
    return f"({text})" if text.startswith("-") else text


def substituted_vjp(rule: str, node: Tensor, grad: np.ndarray) -> str | None:
    """The vjp part of ``rule`` with numbers for its symbols, when ``node`` and its inputs are scalars:
    ``g`` (the node's total cotangent), ``y`` (its value), the forward's argument names for its input
    values and its scalar parameters; the prose after the formula is left out. None for larger tensors or a
    rule that states no vjp."""
    ctx = node._ctx
    if ctx is None or "vjp:" not in rule or node.size != 1 or any(t.size != 1 for t in ctx.inputs):
        return None
    formula = PROSE.split(rule.split("vjp:", 1)[1].strip(), 1)[0].strip()
    params = list(inspect.signature(ctx.function.forward).parameters.values())[1:]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    symbols = {k: v for k, v in ctx.params.items() if isinstance(v, (int, float, np.number)) and k != "g"}
    symbols.update(zip(positional, (t.data for t in ctx.inputs), strict=False))  # *arrays: no names
    symbols.update(g=grad, y=node.data)
    return re.sub(r"\b[A-Za-z_]\w*\b", lambda m: _number(symbols[m[0]]) if m[0] in symbols else m[0], formula)


def _short(a) -> str:
    """A cotangent short enough for an edge: the number, or the largest magnitude of an array."""
    a = np.asarray(a)
    return f"{a.item():.4g}" if a.size == 1 else f"max|.| {np.abs(a).max():.3g}"


def _embedded(a: np.ndarray, full: bool) -> dict:
    """An array as JSON-ready numbers: shape and flat values (``full``), always sum, L2 norm and max |.|;
    non-finite numbers as the strings "nan", "inf", "-inf" (JSON has no NaN)."""
    a = np.asarray(a, dtype=np.float64)

    def num(v):
        return float(v) if np.isfinite(v) else str(float(v))

    out = {"shape": list(a.shape), "sum": num(a.sum()), "norm": num(np.sqrt((a * a).sum())),
           "absmax": num(np.abs(a).max()) if a.size else 0.0}
    if full:
        out["values"] = [num(v) for v in a.ravel()]
    return out


def _groups(order: list[Tensor], table: dict[int, str], output: Tensor, consumers: list[list[int]]) -> list[int]:
    """Each node's layer, as the index of the named node that closes it: a named op (or the output) closes
    its own layer; a named leaf stands alone unless its name has a slash (``conv2d/kernel``); every other
    node joins the first (in graph order) layer among those of its consumers."""
    group = [0] * len(order)
    for i in range(len(order) - 1, -1, -1):
        node = order[i]
        name = table.get(id(node))
        if node is output or (name is not None and node._ctx is not None):
            group[i] = i
        elif name is not None and "/" not in name:
            group[i] = i
        else:
            group[i] = min(group[c] for c in consumers[i])
    return group


def _view(keys: list[str], inputs: dict[str, list[str]]) -> dict:
    """One view's layout (``layered_layout``, as ``draw_graph``): ``{"boxes": {key: [column, row]}, "edges":
    {"a>b": waypoints}}``, one edge per pair of boxes and, for an edge that skips columns, the ``[column, row]``
    of its waypoint in each column between (where the page draws it, clear of every box)."""
    pos, routes = layered_layout(keys, {k: list(dict.fromkeys(inputs[k])) for k in keys})
    return {"boxes": {k: [c, r] for k, (c, r) in pos.items()},
            "edges": {f"{a}>{b}": [[c, r] for c, r in points[1:-1]] for a, b, points in routes}}


def _views(nodes: list[dict], group: list[int], collapse: bool) -> dict:
    """Layouts of the page's views: ``"all"`` (every node) or, collapsed, ``"layers"`` (one box per layer)
    and one per layer with that layer expanded. A box's key is ``n<i>`` (node i) or ``g<i>`` (layer i)."""
    size = {g: group.count(g) for g in set(group)}

    def key(i: int, expanded) -> tuple[str, tuple[int, int]]:
        """The box showing node i, and its rank: (layer, index) sorts boxes inputs first, since along every
        edge the layer index never decreases and a layer's closing node is its last member."""
        g = group[i]
        if expanded is None or size[g] == 1 or g == expanded:
            return f"n{i}", (g if expanded is not None else 0, i)
        return f"g{g}", (g, g)

    def layout(expanded) -> dict:
        rank, inputs = {}, {}
        for i in range(len(nodes)):
            k, rank[k] = key(i, expanded)
            inputs.setdefault(k, []).extend(key(p, expanded)[0] for p in nodes[i]["inputs"])
            inputs[k] = [p for p in inputs[k] if p != k]
        return _view(sorted(inputs, key=rank.get), inputs)

    if not collapse:
        return {"all": layout(None)}
    views = {"layers": layout(-1)}
    for g in sorted(g for g in size if size[g] > 1):
        views[f"g{g}"] = layout(g)
    return views


def explore(output: Tensor, names=None, path=None, collapse: bool | None = None, grad_output=None) -> Explorer:
    """An interactive page of ``output``'s graph and its backward pass; returns an ``Explorer``.

    ``names`` (``{name: Tensor}``) labels nodes (others are ``v1, v2, ...``) and
    marks the layers a large graph collapses to (a slash, ``conv2d/kernel``,
    keeps a named leaf inside the layer that uses it). ``path``: write the page
    there (``.html``); None keeps it in memory (``Explorer.save``, or display
    it in Jupyter). ``collapse``: start with layers collapsed (default: when
    the graph has more than 20 nodes and names mark at least one layer).
    ``grad_output`` seeds dL/d output as in ``trace``. The graph is kept and
    no ``.grad`` changes; each step's gradient is ``trace``'s, so a leaf's
    equals what ``backward()`` accumulates.

    Args:
        output: the Tensor whose graph to show (usually a scalar loss).
        names: ``{name: Tensor}`` or None.
        path: an ``.html`` path or None.
        collapse: bool or None (default: automatic, see above).
        grad_output: the seed cotangent, or None (1 for a scalar).

    Returns:
        An ``Explorer`` (``.save(path)``; shows itself in Jupyter).
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"explore: output must be a Tensor; got {type(output).__name__}")
    if collapse not in (None, True, False):
        raise TypeError(f"explore: collapse must be None, True or False; got {collapse!r}")
    table = name_table(names, "explore")
    if not output.requires_grad:
        raise ValueError("explore: output does not require a gradient (no input has requires_grad=True)")
    order = graph_nodes(output)
    label = node_names(order, table)
    index = {id(n): i for i, n in enumerate(order)}
    by_name = {}
    for node in order:
        if node.requires_grad:
            if label[id(node)] in by_name:
                raise ValueError(f"explore: two nodes of the graph are named {label[id(node)]!r}; "
                                 f"names must tell the nodes apart")
            by_name[label[id(node)]] = index[id(node)]
    steps = trace(output, names=names, file=False, grad_output=grad_output)

    consumers: list[list[int]] = [[] for _ in order]
    for i, node in enumerate(order):
        for p in node._ctx.inputs if node._ctx is not None else ():
            consumers[index[id(p)]].append(i)
    group = _groups(order, table, output, consumers)
    nodes = [{"name": label[id(n)], "op": n._ctx.function.__name__ if n._ctx is not None else _kind(n, output),
              "kind": _kind(n, output), "shape": list(n.shape), "value": format_array(n.data, SHOWN),
              "inputs": [index[id(p)] for p in (n._ctx.inputs if n._ctx is not None else ())],
              "consumers": len(consumers[i]), "group": group[i]} for i, n in enumerate(order)]
    layered = sum(1 for g in set(group) if group.count(g) > 1) > 0 and len(set(group)) < len(order)
    if collapse is None:
        collapse = layered and len(order) > COLLAPSE_ABOVE
    collapse = collapse and layered

    page_steps = []
    for step in steps:
        i = by_name[step.name]
        node = order[i]
        rule = vjp_rule(node._ctx.function) if node._ctx is not None else step.rule
        page_steps.append({
            "node": i,
            "contributions": [{"from": by_name.get(who, -1), "label": who, "value": format_array(c, SHOWN),
                               "short": _short(c)} for who, c in step.contributions],
            "grad": format_array(step.grad, SHOWN),
            "gradient": _embedded(step.grad, node._ctx is None or node.size <= FULL_VALUES),
            "rule": rule,
            "numbers": substituted_vjp(rule, node, step.grad),
            "sends": [{"to": by_name[name], "value": format_array(g, SHOWN),
                       "local": format_array(step.local[name], SHOWN) if name in step.local else None}
                      for name, g in step.sent.items()],
        })
    data = {"title": f"backward pass of {label[id(output)]}", "nodes": nodes, "steps": page_steps,
            "views": _views(nodes, group, collapse), "collapsed": collapse}
    text = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")  # no "</script>" inside the script
    page = PAGE.read_text(encoding="utf-8").replace(DATA_MARK, text)
    explorer = Explorer(page, data)
    if path is not None:
        explorer.save(path)
    return explorer


def layer_names(model, x, training: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
    """Run a ``Sequential`` model's layers one by one on ``x`` (unfused) and name what they recorded, for
    ``explore``'s layers: returns ``(output, names)`` with ``names[layer.name]`` = the layer's output and
    ``names["layer/weight"]`` = each of its weights (Keras' weight names), ``names["input"]`` = ``x``.

    Args:
        model: a built ``Sequential``.
        x: its input batch (a Tensor or an array).
        training: bool, default False: run the layers in training mode (dropout, batch statistics).
    """
    from tinygrad_cnn.nn import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"layer_names: model must be a Sequential (a chain of layers); got {type(model).__name__}")
    h = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    names = {"input": h}
    for layer in model.layers:
        h = layer(h, training=training)
        names[layer.name] = h
        names.update({f"{layer.name}/{w}": t for w, t in zip(layer.weight_names, layer.weights, strict=True)})
    return h, names
