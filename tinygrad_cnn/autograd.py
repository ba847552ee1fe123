"""Reverse-mode differentiation over the recorded graph: seeding, graph order, backpropagation and ``grad``.

Every Tensor produced by a primitive while gradients are enabled remembers the primitive's ``Context``: its
inputs and what it saved. ``backprop`` walks that graph from the output to the leaves in reverse topological
order and applies each primitive's vjp. By the multivariate chain rule, a node used by several consumers receives
the *sum* of the cotangents along every path:

    dL/dx = sum over consumers c of  dL/dc . dc/dx
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import hooks, observe
from tinygrad_cnn.modes import set_grad_enabled
from tinygrad_cnn.tensor import WRITES, Tensor

__all__ = ["backprop", "grad", "graph_order", "seed_cotangent"]


def seed_cotangent(fn: str, output: Tensor, grad) -> Tensor:
    """The cotangent dL/d ``output`` to start from: ``grad`` (a Tensor or an array shaped like ``output``), or
    ones when ``grad`` is None and ``output`` has one element. ``fn`` names the caller in errors."""
    if grad is None:
        if output.size != 1:
            raise ValueError(f"{fn}: output has shape {output.shape}, so grad (the cotangent dL/doutput, "
                             f"shaped like the output) is required; it can be omitted only for one element")
        return Tensor._from_op(np.ones_like(output.data), None)
    seed = grad if isinstance(grad, Tensor) else Tensor._from_op(np.asarray(grad, dtype=output.dtype), None)
    if seed.shape != output.shape:
        raise ValueError(f"{fn}: grad has shape {seed.shape} but the output has shape {output.shape}; "
                         f"they must match")
    return seed


def graph_order(root, include_constants: bool = False, caller: str = "backward") -> list[Tensor]:
    """The Tensors of ``root``'s graph (``root``: a Tensor or a list of them), inputs before the ops that use
    them (iterative: no recursion limit).

    Only nodes that require a gradient, unless ``include_constants``. Raises
    ``RuntimeError`` (naming ``caller``) if a backward pass released the graph.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    roots = [root] if isinstance(root, Tensor) else list(root)
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:
            if ctx.released:
                raise RuntimeError(f"{caller}: the graph of this Tensor was released by an earlier backward; "
                                   f"pass retain_graph=True to that backward to keep it")
            stack.extend((p, False) for p in reversed(ctx.inputs)
                         if (include_constants or p.requires_grad) and id(p) not in visited)
    return order


def _feeding(order: list[Tensor], targets) -> set[int]:
    """Ids of the nodes of ``order`` that are a target or feed one (the only nodes whose cotangent matters)."""
    target_ids = {id(t) for t in targets}
    wanted: set[int] = set()
    for node in order:  # parents first
        if id(node) in target_ids or (node._ctx is not None and any(id(p) in wanted for p in node._ctx.inputs)):
            wanted.add(id(node))
    return wanted


def _check_versions(node: Tensor) -> None:
    """Raise ``RuntimeError`` if an input of ``node``'s primitive (or ``node`` itself) was written in place since the
    primitive ran (its cell's stamp is later than the node's): its vjp reads those arrays, so the gradient would be
    silently wrong (PyTorch's check)."""
    ctx = node._ctx
    name = ctx.function.__name__
    for i, t in enumerate(ctx.inputs):
        if t._version is not None and t._version[1] > ctx.stamp:
            what = "a leaf" if t._ctx is None else f"the output of {t._ctx.function.__name__}"
            raise RuntimeError(
                f"backward: input {i} of {name} ({what}, shape {t.shape}, dtype {t.dtype}) was modified in place "
                f"after {name} used it (by an optimizer step, an x.data assignment such as x.data *= 10, "
                f"x[...] = v, copy_ or set_weights; {t._version[0]} write(s) so far); its gradient would be "
                f"computed from the new values. Run backward before changing it, or run the forward pass again "
                f"after the change")
    if node._version is not None and node._version[1] > ctx.stamp:
        raise RuntimeError(f"backward: the output of {name} (shape {node.shape}, dtype {node.dtype}) was modified in "
                           f"place after it was computed; its vjp would use the new values. Compute a new Tensor "
                           f"instead (y2 = y * 2) or run the forward pass again after the change")


def backprop(root, seed, targets=None, create_graph: bool = False,
             retain_graph: bool = False) -> dict[int, Tensor] | None:
    """Propagate ``seed`` = dL/d ``root`` back through ``root``'s graph (``root`` and ``seed``: a Tensor each, or
    equally long lists of them: several outputs, each with its cotangent, in one pass).

    Without ``targets`` every leaf's ``.grad`` accumulates its cotangent (``backward``); with ``targets`` (a
    list of Tensors) nothing is accumulated and ``{id(target): cotangent}`` is returned (``grad``).
    ``create_graph`` records the backward pass (so it can be differentiated again); the graph is released
    afterwards unless ``retain_graph``. Observers (``tinygrad_cnn.observe``) get a vjp event per node and a
    leaf event per leaf reached. Each node's total cotangent passes through its hooks (``Tensor.register_hook``,
    ``tinygrad_cnn.hooks``) before it is used; ``retain_grad`` nodes keep it in ``.grad`` (``backward`` only).
    """
    pairs = [(root, seed)] if isinstance(root, Tensor) else list(zip(root, seed, strict=True))
    pairs = [(r, s) for r, s in pairs if r.requires_grad]  # a constant output sends nothing
    order = graph_order([r for r, _ in pairs])
    wanted = None if targets is None else _feeding(order, targets)
    target_ids = set() if targets is None else {id(t) for t in targets}
    found: dict[int, Tensor] = {}
    grads: dict[int, Tensor] = {}
    active = observe.observers()
    with set_grad_enabled(create_graph):
        for r, s in pairs:  # the same output given twice: its cotangents add
            grads[id(r)] = s if id(r) not in grads else grads[id(r)] + s
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None or (wanted is not None and id(node) not in wanted):
                continue
            if hooks.has_hooks(node):
                g = hooks.run_hooks(node, g, accumulate=targets is None)
            if id(node) in target_ids:
                found[id(node)] = g
            ctx = node._ctx
            if ctx is None:
                if active:
                    observe.send_leaf(active, node, g)
                if targets is None:
                    node.grad = (g.data.astype(node.dtype, copy=True) if node.grad is None  # a leaf's dtype
                                 else (node.grad + g.data).astype(node.dtype, copy=False))
                continue
            if ctx.stamp != WRITES[0]:  # something was written since this node ran: was it one of its arrays?
                _check_versions(node)
            parent_grads = observe.run_vjp(node, g)
            if len(parent_grads) != len(ctx.inputs):
                raise RuntimeError(f"backward: {ctx.function.__name__}.vjp returned {len(parent_grads)} "
                                   f"gradients for {len(ctx.inputs)} inputs (one Tensor or None per input)")
            for parent, pg in zip(ctx.inputs, parent_grads, strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                previous = grads.get(id(parent))
                grads[id(parent)] = pg if previous is None else previous + pg
            if not retain_graph:
                ctx.release()
    return found if targets is not None else None


def backward(output: Tensor, grad=None, retain_graph: bool = False) -> None:
    """``output.backward(grad, retain_graph)``: accumulate d output / d leaf, contracted with ``grad``, into
    every leaf's ``.grad``."""
    if not output.requires_grad:
        raise RuntimeError("backward: this Tensor does not require a gradient (no leaf of its graph "
                           "has requires_grad=True, or it was computed under no_grad)")
    backprop(output, seed_cotangent("backward", output, grad), retain_graph=retain_graph)


def grad(output, inputs, grad_output=None, create_graph: bool = False,
         retain_graph: bool | None = None) -> list[Tensor]:
    """Return ``[d output / d x for x in inputs]`` (contracted with ``grad_output``) as Tensors.

    Like ``torch.autograd.grad``: leaves' ``.grad`` is untouched. ``output`` may be a list of Tensors, with
    ``grad_output`` a list of their cotangents (None for a one-element output): the result is then
    ``sum_j grad_output_j . d output_j / d x``, in one backward pass. With ``create_graph=True`` the backward
    pass is recorded, so the results can be differentiated again. An input that ``output`` does not depend on
    gets zeros. The graph is kept when ``create_graph`` (or ``retain_graph``) is set.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: inputs[{i}] must be a Tensor; got {type(x).__name__}")
    single = isinstance(output, Tensor)
    outputs = [output] if single else list(output) if isinstance(output, (list, tuple)) else None
    if outputs is None or not all(isinstance(o, Tensor) for o in outputs):
        raise TypeError(f"grad: output must be a Tensor or a list of Tensors; got {type(output).__name__}")
    cotangents = [grad_output] if single else [None] * len(outputs) if grad_output is None else list(grad_output)
    if len(cotangents) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(cotangents)} grad_output entries; give one "
                         f"cotangent (or None) per output")
    seeds = [seed_cotangent("grad", o, c) for o, c in zip(outputs, cotangents, strict=True)]
    retain = create_graph if retain_graph is None else retain_graph
    found = backprop(outputs, seeds, inputs, create_graph, retain) if any(o.requires_grad for o in outputs) else {}
    results, seen = [], {id(s) for s in seeds}
    for x in inputs:
        g = found.get(id(x))
        if g is None:
            g = Tensor(np.zeros_like(x.data))
        elif not create_graph:  # a fresh array in x's dtype: never the caller's grad_output, never shared
            g = Tensor._from_op(g.data.astype(x.dtype, copy=True), None)
        elif g.dtype != x.dtype:  # d output / d x has x's dtype, as jax.grad's
            g = g.astype(x.dtype)
        elif id(g) in seen:  # the same node reached two inputs (e.g. a + b): give each its own Tensor
            g = g + Tensor._from_op(np.zeros((), g.dtype), None)
        seen.add(id(g))
        results.append(g)
    return results
