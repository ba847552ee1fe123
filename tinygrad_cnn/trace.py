"""Watch reverse mode run: the backward pass printed node by node.

``trace(output)`` repeats what ``output.backward()`` does, without touching
the graph or any ``.grad``: it visits the nodes from the output back to the
leaves (reverse topological order) and, at each one,

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

from tinygrad_cnn.tensor import Tensor, _seed_cotangent, _SetGradMode, graph_order

__all__ = ["TraceStep", "graph_nodes", "trace"]


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


def _name_table(names) -> dict[int, str]:
    """``names`` as ``{id(tensor): name}``; accepts ``{name: tensor}`` or ``{tensor: name}``."""
    if names is None:
        return {}
    if not isinstance(names, dict):
        raise TypeError(f"trace: names must be a dict {{name: Tensor}}; got {type(names).__name__}")
    table = {}
    for key, value in names.items():
        tensor, name = (value, key) if isinstance(key, str) else (key, value)
        if not isinstance(tensor, Tensor) or not isinstance(name, str):
            raise TypeError(f"trace: names must map str to Tensor; got {key!r}: {type(value).__name__}")
        table[id(tensor)] = name
    return table


def graph_nodes(output: Tensor, include_constants: bool = True) -> list[Tensor]:
    """Every Tensor of ``output``'s graph, inputs before the ops that use them (constants too by default)."""
    return graph_order(output, include_constants=include_constants, caller="trace")


def _rule(function) -> str:
    doc = (function.__doc__ or "").strip().splitlines()
    return doc[0].strip() if doc else function.__name__


def _fmt(a: np.ndarray, max_elements: int) -> str:
    a = np.asarray(a)
    if a.size == 1:
        return f"{a.item():.6g}"
    if a.size <= max_elements:
        return np.array2string(a, precision=4, suppress_small=True, separator=", ").replace("\n", "")
    return f"<{a.dtype} {a.shape}: mean {a.mean():.4g}, |.|max {np.abs(a).max():.4g}>"


def _node_names(order: list[Tensor], table: dict[int, str]) -> dict[int, str]:
    names, counter = {}, 0
    for node in order:
        if id(node) in table:
            names[id(node)] = table[id(node)]
        elif node._ctx is None and not node.requires_grad:
            names[id(node)] = f"const({_fmt(node.data, 4)})"
        else:
            counter += 1
            names[id(node)] = f"v{counter}"
    return names


def trace(output: Tensor, names=None, file=None, grad_output=None, max_elements: int = 8) -> list[TraceStep]:
    """Print the backward pass of ``output`` node by node and return the steps.

    ``names`` (``{name: Tensor}``) labels nodes (others are ``v1, v2, ...``);
    ``file`` is where to print (default stdout; ``False`` prints nothing);
    ``grad_output`` seeds dL/d output (default 1 for one element). The graph
    is kept and no ``.grad`` is changed. Each leaf's ``step.grad`` equals
    what ``backward`` would accumulate into its ``.grad``.
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"trace: output must be a Tensor; got {type(output).__name__}")
    if not output.requires_grad:
        raise ValueError("trace: output does not require a gradient (no input has requires_grad=True)")
    out = (lambda *a, **k: None) if file is False else (lambda *a: print(*a, file=file or sys.stdout))
    order = graph_nodes(output)
    label = _node_names(order, _name_table(names))
    seed = _seed_cotangent("trace", output, grad_output)
    received: dict[int, list[tuple[str, Tensor]]] = {id(output): [("seed dL/dL", seed)]}
    steps: list[TraceStep] = []

    out(f"backward pass of {label[id(output)]} ({len(order)} nodes), from the output back to the inputs")
    with _SetGradMode(False):
        for node in reversed(order):
            parts = received.pop(id(node), None)
            if parts is None or not node.requires_grad:
                continue
            total = parts[0][1]
            for _, g in parts[1:]:
                total = total + g
            ctx, name = node._ctx, label[id(node)]
            in_names = [label[id(p)] for p in ctx.inputs] if ctx is not None else []
            op = ctx.function.__name__ if ctx is not None else "leaf"
            step = TraceStep(name, op, in_names, node.data, _rule(ctx.function) if ctx else "input",
                             [(who, g.data) for who, g in parts], total.data)
            header = f"{name} = {op.lower()}({', '.join(in_names)})" if ctx else f"{name} (input)"
            out(f"\n[{len(steps) + 1}] {header}   value {_fmt(node.data, max_elements)}")
            if len(parts) > 1:
                terms = " + ".join(f"{_fmt(g.data, max_elements)} (via {who})" for who, g in parts)
                out(f"    {name} feeds {len(parts)} consumers; chain rule adds the paths:")
                out(f"    dL/d{name} = {terms} = {_fmt(total.data, max_elements)}")
            else:
                out(f"    incoming dL/d{name} = {_fmt(total.data, max_elements)}   (from {parts[0][0]})")
            if ctx is not None:
                out(f"    rule: {step.rule}")
                sent = ctx.function.vjp(ctx, total)
                local = ctx.function.vjp(ctx, Tensor(np.ones_like(node.data))) if node.size == 1 else None
                for i, (parent, g) in enumerate(zip(ctx.inputs, sent, strict=True)):
                    if g is None or not parent.requires_grad:
                        continue
                    pname = label[id(parent)]
                    step.sent[pname] = g.data if pname not in step.sent else step.sent[pname] + g.data
                    received.setdefault(id(parent), []).append((name, g))
                    if local is not None and local[i] is not None:
                        step.local[pname] = local[i].data
                        out(f"    local d{name}/d{pname} = {_fmt(local[i].data, max_elements)}"
                            f"  ->  sends dL/d{name} * d{name}/d{pname} = {_fmt(g.data, max_elements)} to {pname}")
                    else:
                        out(f"    sends {_fmt(g.data, max_elements)} to {pname}")
            else:
                out(f"    gradient of input {name}: {_fmt(total.data, max_elements)}")
            steps.append(step)
    return steps
