"""Argument descriptions shared by many ops' docstrings (Google style), written once, and ``documented``, which
gives a one-line op its docstring: its math, then an ``Args:`` section made of these blocks.

Each block is a list of ``Args:`` entries without indentation; ``documented`` indents them, so ``help(ops.exp)``
shows an ordinary Google-style docstring.
"""

from __future__ import annotations

import inspect
import textwrap

X = "x: Tensor of any shape and floating dtype."
AB = ("a, b: Tensors of the same dtype, broadcast together as NumPy does; the\n"
      "    result has the broadcast shape, and each input's vjp is summed back to its own shape (``unbroadcast``).")
AXES = "axis: None (default: every axis), an int or a tuple of ints; negative axes count from the end."
KEEPDIMS = "keepdims: bool, default False: keep each reduced axis with size 1 (the result broadcasts against x)."
PAIR = "a, b: Tensors or numbers (a number takes the other operand's dtype), broadcast together as NumPy does."
DDOF = "ddof: number, keyword-only, default 0: the divisor is N - ddof (1 gives the unbiased estimate)."
ONE_AXIS = "axis: int, or None (default) for the flattened x; a negative axis counts from the end."


def documented(*blocks: str, math: str | None = None):
    """Decorator: the function's docstring becomes ``math`` (default: its own docstring), then ``Args:`` and the
    ``blocks`` (one or more entries each, see the module docstring), indented as Google style wants.

    Args:
        *blocks: ``Args:`` entries, e.g. ``X`` or ``"p: the exponent."``.
        math: the summary, usually the primitive's own docstring (``Log1p.__doc__``: the formula and its vjp),
            so the math is written once, on the ``Function`` that computes it.
    """
    def decorate(fn):
        summary = inspect.cleandoc(math if math is not None else fn.__doc__ or "")
        fn.__doc__ = summary + "\n\nArgs:\n" + "\n".join(textwrap.indent(b, "    ") for b in blocks)
        return fn
    return decorate
