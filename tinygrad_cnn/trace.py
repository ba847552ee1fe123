"""Watch reverse mode run: the backward pass printed node by node.

``trace(output)`` runs the backward pass that ``output.backward()`` runs (the
same code, watched through ``tinygrad_cnn.observe``), without releasing the
graph or touching any ``.grad``: from the output back to the leaves (reverse
topological order), at each node the backward pass

* collects the cotangents sent by every consumer of the node and adds them:
  the multivariate chain rule, dL/dv = sum over consumers c of dL/dc . dc/dv;
* applies the node's vjp to that total, sending one cotangent to each input.

For nodes with one element the local derivatives dv/du are printed as
numbers (the vjp applied to a cotangent of 1); for larger tensors the vjp
rule from the primitive's docstring is shown with array summaries.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from tinygrad_cnn.autograd import backprop, graph_order, seed_cotangent
from tinygrad_cnn.observe import LeafEvent, Observer, VjpEvent, observing
from tinygrad_cnn.tensor import Tensor

__all__ = ["TraceStep", "format_array", "graph_nodes", "name_table", "node_names", "trace"]


@dataclass
class TraceStep:
    """One node of the backward pass.

    ``name``: the node's name; ``op``: the primitive's name (``"leaf"`` for
    inputs); ``inputs``: names of the op's inputs; ``value``: the forward
    value; ``rule``: the primitive's math and vjp; ``contributions``: list of
    ``(consumer name, cotangent)`` received from each consumer (the seed for
    the output); ``grad``: their sum, dL/d node; ``local``: ``{input name:
    d node / d input}`` when the node has one element; ``sent``: ``{input
    name: cotangent}`` passed on to each input that needs a gradient.
    """

    name: str
    op: str
    inputs: list[str]
    value: np.ndarray
    rule: str
    contributions: list[tuple[str, np.ndarray]]
    grad: np.ndarray
    local: dict[str, np.ndarray] = field(default_factory=dict)
    sent: dict[str, np.ndarray] = field(default_factory=dict)


def name_table(names, fn: str = "trace") -> dict[int, str]:
    """``names`` as ``{id(tensor): name}``; accepts ``{name: tensor}`` or ``{tensor: name}`` (``fn`` names the
    caller in errors)."""
    if names is None:
        return {}
    if not isinstance(names, dict):
        raise TypeError(f"{fn}: names must be a dict {{name: Tensor}}; got {type(names).__name__}")
    table = {}
    for key, value in names.items():
        tensor, name = (value, key) if isinstance(key, str) else (key, value)
        if not isinstance(tensor, Tensor) or not isinstance(name, str):
            raise TypeError(f"{fn}: names must map str to Tensor; got {key!r}: {type(value).__name__}")
        table[id(tensor)] = name
    return table


def graph_nodes(output: Tensor, include_constants: bool = True) -> list[Tensor]:
    """Every Tensor of ``output``'s graph, inputs before the ops that use them (constants too by default)."""
    return graph_order(output, include_constants=include_constants, caller="trace")


def _rule(function) -> str:
    doc = (function.__doc__ or "").strip().splitlines()
    return doc[0].strip() if doc else function.__name__


def format_array(a: np.ndarray, max_elements: int) -> str:
    """``a`` in one line: the number for one element, the values up to ``max_elements``, else a summary."""
    a = np.asarray(a)
    if a.size == 1:
        return f"{a.item():.6g}"
    if a.size <= max_elements:
        return np.array2string(a, precision=4, suppress_small=True, separator=", ").replace("\n", "")
    return f"<{a.dtype} {a.shape}: mean {a.mean():.4g}, |.|max {np.abs(a).max():.4g}>"


def node_names(order: list[Tensor], table: dict[int, str]) -> dict[int, str]:
    """A label per node of ``order``: its name in ``table``, ``const(value)`` for constants, else v1, v2, ..."""
    names, counter = {}, 0
    for node in order:
        if id(node) in table:
            names[id(node)] = table[id(node)]
        elif node._ctx is None and not node.requires_grad:
            names[id(node)] = f"const({format_array(node.data, 4)})"
        else:
            counter += 1
            names[id(node)] = f"v{counter}"
    return names


class _Tracer(Observer):
    """Turns the backward pass' vjp and leaf events into ``TraceStep``s, printing each one as it happens."""

    def __init__(self, label: dict[int, str], out, max_elements: int):
        self.label, self.out, self.max_elements = label, out, max_elements
        self.received: dict[int, list[tuple[str, np.ndarray]]] = {}
        self.steps: list[TraceStep] = []

    def _fmt(self, a) -> str:
        return format_array(a, self.max_elements)

    def _begin(self, node, g, ctx) -> TraceStep:
        """The step of ``node``, which received the total cotangent ``g`` (printing what it received)."""
        name = self.label[id(node)]
        parts = self.received.pop(id(node))
        in_names = [self.label[id(p)] for p in ctx.inputs] if ctx is not None else []
        op = ctx.function.__name__ if ctx is not None else "leaf"
        step = TraceStep(name, op, in_names, node.data, _rule(ctx.function) if ctx else "input", parts, g.data)
        header = f"{name} = {op.lower()}({', '.join(in_names)})" if ctx else f"{name} (input)"
        self.out(f"\n[{len(self.steps) + 1}] {header}   value {self._fmt(node.data)}")
        if len(parts) > 1:
            terms = " + ".join(f"{self._fmt(c)} (via {who})" for who, c in parts)
            self.out(f"    {name} feeds {len(parts)} consumers; chain rule adds the paths:")
            self.out(f"    dL/d{name} = {terms} = {self._fmt(g.data)}")
        else:
            self.out(f"    incoming dL/d{name} = {self._fmt(g.data)}   (from {parts[0][0]})")
        self.steps.append(step)
        return step

    def vjp(self, event: VjpEvent) -> None:
        node, ctx = event.node, event.node._ctx
        step = self._begin(node, event.g, ctx)
        self.out(f"    rule: {step.rule}")
        local = ctx.function.vjp(ctx, Tensor(np.ones_like(node.data))) if node.size == 1 else None
        for i, (parent, g) in enumerate(zip(event.inputs, event.grads, strict=True)):
            if g is None or not parent.requires_grad:
                continue
            pname = self.label[id(parent)]
            step.sent[pname] = g.data if pname not in step.sent else step.sent[pname] + g.data
            self.received.setdefault(id(parent), []).append((step.name, g.data))
            if local is not None and local[i] is not None:
                step.local[pname] = local[i].data
                self.out(f"    local d{step.name}/d{pname} = {self._fmt(local[i].data)}"
                         f"  ->  sends dL/d{step.name} * d{step.name}/d{pname} = {self._fmt(g.data)} to {pname}")
            else:
                self.out(f"    sends {self._fmt(g.data)} to {pname}")

    def leaf(self, event: LeafEvent) -> None:
        step = self._begin(event.node, event.g, None)
        self.out(f"    gradient of input {step.name}: {self._fmt(event.g.data)}")


def trace(output: Tensor, names=None, file=None, grad_output=None, max_elements: int = 8) -> list[TraceStep]:
    """Print the backward pass of ``output`` node by node and return the steps.

    ``names`` (``{name: Tensor}``) labels nodes (others are ``v1, v2, ...``);
    ``file`` is where to print (default stdout; ``False`` prints nothing);
    ``grad_output`` seeds dL/d output (default 1 for one element). The graph
    is kept and no ``.grad`` is changed. Each leaf's ``step.grad`` equals
    what ``backward`` would accumulate into its ``.grad``.

    Args:
        output: Tensor whose backward pass is traced.
        names: dict ``{name: Tensor}`` or None (default).
        file: a text stream, None (default: stdout) or False (print nothing).
        grad_output: the seed dL/d output, default None (1 for a one-element output).
        max_elements: int, default 8: arrays with more elements are printed abbreviated.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"trace: output must be a Tensor; got {type(output).__name__}")
    if not output.requires_grad:
        raise ValueError("trace: output does not require a gradient (no input has requires_grad=True)")
    out = (lambda *a, **k: None) if file is False else (lambda *a: print(*a, file=file or sys.stdout))
    order = graph_nodes(output)
    label = node_names(order, name_table(names))
    seed = seed_cotangent("trace", output, grad_output)
    tracer = _Tracer(label, out, max_elements)
    tracer.received[id(output)] = [("seed dL/dL", seed.data)]
    leaves = [node for node in order if node._ctx is None and node.requires_grad]
    visited = sum(1 for node in order if node.requires_grad)  # constants get no gradient: no step of their own
    skipped = f"; {len(order) - visited} constant(s) get no gradient" if len(order) > visited else ""
    out(f"backward pass of {label[id(output)]}: {visited} nodes{skipped}; from the output back to the inputs")
    with observing(tracer):
        backprop(output, seed, targets=leaves, retain_graph=True)  # targets: nothing accumulates into .grad
    return tracer.steps
