"""The graph of a model built with Keras' Functional API: symbolic tensors and the nodes that produce them.

``Input(shape)`` returns a ``SymbolicTensor``: a placeholder with a shape (``None`` for the batch axis), a
dtype and the ``Node`` that produced it. Calling a layer on symbolic tensors computes nothing: it builds the
layer for their shapes and records a node (the layer, its symbolic inputs, its symbolic output). A model walks
back from its outputs once (``nodes_between``), checks that every node is computable from its inputs, and keeps
the nodes in one topological order; running the model is one loop over that order.
"""

from __future__ import annotations

__all__ = ["Node", "SymbolicTensor", "nodes_between"]


class SymbolicTensor:
    """A value of a graph model that is not computed yet: ``shape`` (batch axis ``None``), ``dtype`` and
    ``node``, the call that produces it (``node.layer`` is the layer that was called)."""

    __slots__ = ("shape", "dtype", "node")

    def __init__(self, shape, dtype, node=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self.node.layer.name if self.node is not None else "?"

    def __repr__(self) -> str:
        shape = "(" + ", ".join("None" if s is None else str(s) for s in self.shape) + ")"
        return f"<SymbolicTensor shape={shape} dtype={self.dtype} from {self.name!r}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is a placeholder of a graph model (made by nn.Input or by calling a layer on "
                        f"one); it holds no values: build nn.Model(inputs, outputs) and call the model on data")


class Node:
    """One call of ``layer`` on symbolic ``inputs`` (a list), giving ``output``; registered with the layer."""

    __slots__ = ("layer", "inputs", "output")

    def __init__(self, layer, inputs: list, output: SymbolicTensor):
        self.layer = layer
        self.inputs = list(inputs)
        self.output = output
        output.node = self
        layer._inbound_nodes.append(self)

    def __repr__(self) -> str:
        return f"<Node {self.layer.name} <- {[t.name for t in self.inputs]}>"


def nodes_between(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor], where: str) -> list[Node]:
    """The nodes that compute ``outputs`` from ``inputs``, each after the nodes it reads (iterative walk).

    Raises ``ValueError`` naming the layer if some node needs a value that none of ``inputs`` leads to (Keras'
    "graph disconnected"); ``where`` names the model in errors.
    """
    input_ids = {id(t) for t in inputs}
    order: list[Node] = []
    state: dict[int, bool] = {}  # id(node) -> True once placed in order
    stack: list[tuple[Node, bool]] = [(t.node, False) for t in reversed(outputs)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            state[id(node)] = True
            order.append(node)
            continue
        if id(node) in state:
            continue
        state[id(node)] = False
        stack.append((node, True))
        if id(node.output) in input_ids:
            continue  # a model input: its InputLayer node reads nothing
        if not node.inputs:
            raise ValueError(f"{where}: graph disconnected: {node.layer.name!r} is an input of the graph that is not "
                             f"among the model's inputs {[t.name for t in inputs]}; pass it in inputs")
        for t in reversed(node.inputs):
            if id(t.node) not in state:
                stack.append((t.node, False))
    return order
