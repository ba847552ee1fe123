"""Pytrees, as JAX's ``jax.tree_util`` names them: nested tuples, lists and dicts whose leaves are the values.

``None`` is an empty subtree (no leaf), as in JAX; dict keys are visited in sorted order, as in JAX, so two dicts
with the same keys flatten alike whatever their insertion order. Every other value (a Tensor, an array, a
number) is a leaf. The walks are iterative (a deep nesting cannot hit the recursion limit).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TreeDef", "tree_flatten", "tree_leaves", "tree_map", "tree_structure", "tree_unflatten"]


@dataclass(frozen=True)
class TreeDef:
    """The shape of a pytree without its leaves: ``kind`` is ``"leaf"``, ``"none"``, ``"tuple"``, ``"list"`` or
    ``"dict"``; ``keys`` the sorted dict keys; ``children`` the subtrees' TreeDefs."""

    kind: str
    keys: tuple = ()
    children: tuple = ()

    @property
    def num_leaves(self) -> int:
        count, stack = 0, [self]
        while stack:
            node = stack.pop()
            count += node.kind == "leaf"
            stack.extend(node.children)
        return count

    def __str__(self) -> str:
        return _describe(self)


def _describe(treedef: TreeDef) -> str:
    parts, stack = [], [treedef]  # an iterative pre-order print: '*' a leaf
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        if item.kind in ("leaf", "none"):
            parts.append("*" if item.kind == "leaf" else "None")
            continue
        open_, close = {"tuple": ("(", ")"), "list": ("[", "]"), "dict": ("{", "}")}[item.kind]
        pieces: list = [open_]
        for i, child in enumerate(item.children):
            if i:
                pieces.append(", ")
            if item.kind == "dict":
                pieces.append(f"{item.keys[i]!r}: ")
            pieces.append(child)
        pieces.append("," + close if item.kind == "tuple" and len(item.children) == 1 else close)
        stack.extend(reversed(pieces))
    return "".join(parts)


def _children(tree):
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return "tuple", (), tuple(tree)
    if isinstance(tree, list):
        return "list", (), tuple(tree)
    if isinstance(tree, dict):
        keys = tuple(sorted(tree))
        return "dict", keys, tuple(tree[k] for k in keys)
    return None


def tree_flatten(tree) -> tuple[list, TreeDef]:
    """``(leaves, treedef)``: the leaves left to right (dict keys sorted) and the structure that rebuilds them."""
    leaves: list = []
    built: list = []  # post-order stack of finished TreeDefs
    stack: list = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if node is None:
            built.append(TreeDef("none"))
            continue
        split = _children(node)
        if split is None:
            leaves.append(node)
            built.append(TreeDef("leaf"))
            continue
        kind, keys, kids = split
        if expanded:
            n = len(kids)
            children = tuple(built[len(built) - n:]) if n else ()
            del built[len(built) - n:]
            built.append(TreeDef(kind, keys, children))
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in reversed(kids))
    return leaves, built[0]


def tree_unflatten(treedef: TreeDef, leaves) -> object:
    """The pytree of structure ``treedef`` whose leaves are ``leaves`` (in ``tree_flatten``'s order)."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree_unflatten: the structure {treedef} has {treedef.num_leaves} leaves but "
                         f"{len(leaves)} values were given")
    it = iter(leaves)
    results: list = []
    stack: list = [(treedef, False)]
    while stack:
        node, expanded = stack.pop()
        if node.kind == "leaf":
            results.append(next(it))
        elif node.kind == "none":
            results.append(None)
        elif not expanded:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(node.children))
        else:
            n = len(node.children)
            kids = results[len(results) - n:] if n else []
            del results[len(results) - n:]
            results.append(tuple(kids) if node.kind == "tuple" else list(kids) if node.kind == "list"
                           else dict(zip(node.keys, kids, strict=True)))
    return results[0]


def tree_leaves(tree) -> list:
    """The leaves of ``tree`` (``tree_flatten(tree)[0]``)."""
    return tree_flatten(tree)[0]


def tree_structure(tree) -> TreeDef:
    """The structure of ``tree`` (``tree_flatten(tree)[1]``)."""
    return tree_flatten(tree)[1]


def tree_map(fn, tree, *rest):
    """``fn`` applied leaf by leaf to ``tree`` and the trees in ``rest`` (which must have ``tree``'s structure)."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for i, other in enumerate(rest):
        other_leaves, other_def = tree_flatten(other)
        if other_def != treedef:
            raise ValueError(f"tree_map: tree {i + 1} has structure {other_def} but the first has {treedef}")
        others.append(other_leaves)
    return tree_unflatten(treedef, [fn(*xs) for xs in zip(leaves, *others, strict=True)])
