"""Indexing along one axis: take_along_axis (NumPy), gather (PyTorch), sort / argsort / topk, one_hot; and
``where`` with NumPy's module-function arguments (arrays and numbers as well as Tensors).

The differentiable ones are composites of ``getitem`` with an integer-array index, so their vjp is
``getitem``'s: the cotangent scatter-added into zeros shaped like the input (repeated indices add up).
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import validation
from tinygrad_cnn.ops import elementwise, movement
from tinygrad_cnn.ops.reduce import pair, single_axis
from tinygrad_cnn.tensor import Tensor, as_tensor


def _index_array(fn: str, indices) -> np.ndarray:
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{fn}: indices must be an integer array; got dtype {idx.dtype}")
    return idx


def _along_axis(fn: str, x: Tensor, idx: np.ndarray, axis: int, grid, negative: bool) -> Tensor:
    """x[..., idx, ...] along ``axis``: an open grid arange(grid[d]) on every other axis d, ``idx`` on ``axis``."""
    n = x.shape[axis]
    low = -n if negative else 0
    if idx.size and (idx.min() < low or idx.max() >= n):
        bad = idx[(idx < low) | (idx >= n)].flat[0]
        raise IndexError(f"{fn}: index {bad} is out of range for axis {axis} of size {n} (expected {low} <= index "
                         f"< {n}; input shape {x.shape})")
    index = tuple(idx if d == axis else np.arange(m).reshape((-1,) + (1,) * (idx.ndim - 1 - d))
                  for d, m in enumerate(grid))
    return movement.getitem(x, index)


def take_along_axis(x, indices, axis):
    """y[..., i, ...] = x[..., indices[..., i, ...], ...] along ``axis``, as ``np.take_along_axis``: ``indices``
    has x's rank and broadcasts against x on the other axes; negative indices count from the end; axis=None
    takes from the flattened x with 1-D indices.   vjp: g scatter-added back (repeated indices add up).

    Args:
        x: Tensor of any shape.
        indices: integer array or Tensor of x's rank (1-D when ``axis`` is None).
        axis: int, or None for the flattened x.
    """
    x = as_tensor(x)
    idx = _index_array("take_along_axis", indices)
    a = single_axis("take_along_axis", axis, x.ndim)
    if a is None:
        x, a = movement.reshape(x, (-1,)), 0
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices must have the rank of x ({x.ndim}, shape {x.shape}); got "
                         f"shape {idx.shape}")
    others = [(m, k) for d, (m, k) in enumerate(zip(x.shape, idx.shape, strict=True)) if d != a]
    if any(m != k and 1 not in (m, k) for m, k in others):
        raise ValueError(f"take_along_axis: indices of shape {idx.shape} do not broadcast against x of shape "
                         f"{x.shape} on the axes other than axis {a}")
    return _along_axis("take_along_axis", x, idx, a, x.shape, negative=True)


def gather(x, dim, index):
    """PyTorch's ``torch.gather(x, dim, index)``: y[i][j][k] = x[index[i][j][k]][j][k] for dim = 0 (likewise
    for other dims). ``index`` has x's rank, ``index.shape[d] <= x.shape[d]`` on every other axis (no
    broadcasting) and 0 <= index < x.shape[dim]; y has index's shape.   vjp: g scatter-added into zeros like
    x (repeated indices add up), as ``torch.gather``'s backward.

    Args:
        x: Tensor of any shape.
        dim: int, the axis to gather along (negative counts from the end).
        index: integer array or Tensor of x's rank.
    """
    x = as_tensor(x)
    idx = _index_array("gather", index)
    a = single_axis("gather", dim, x.ndim, allow_none=False)
    if idx.ndim != x.ndim or any(k > m for d, (m, k) in enumerate(zip(x.shape, idx.shape, strict=True)) if d != a):
        raise ValueError(f"gather: index of shape {idx.shape} must have the rank of x (shape {x.shape}) and be no "
                         f"larger than x on every axis but dim={dim}")
    return _along_axis("gather", x, idx, a, idx.shape, negative=False)


def _argsort(fn: str, data: np.ndarray, axis: int, descending) -> np.ndarray:
    if not validation.boolean(fn, "descending", descending):
        return np.argsort(data, axis=axis, kind="stable")
    # stable descending: sort the reversed array, so ties come back in their original order once reversed again
    backwards = np.argsort(np.flip(data, axis), axis=axis, kind="stable")
    return np.flip(data.shape[axis] - 1 - backwards, axis).copy()


def argsort(x, axis=-1, descending: bool = False):
    """Indices that sort ``x`` along ``axis`` (None: the flattened x), stable: equal elements keep their order,
    ascending or descending (as ``jnp.argsort(stable=True)``; NaN last ascending, first descending). An integer
    Tensor outside the graph.

    Args:
        x: Tensor (or array-like) of any shape.
        axis: int, default -1, or None for the flattened x.
        descending: bool, default False.
    """
    data = as_tensor(x).data
    a = single_axis("argsort", axis, data.ndim)
    if a is None:
        data, a = data.reshape(-1), 0
    return movement.constant(_argsort("argsort", data, a, descending))


def sort(x, axis=-1, descending: bool = False):
    """``x`` sorted along ``axis`` (None: the flattened x), as ``np.sort`` (values only; ``argsort`` gives the
    indices): take_along_axis(x, argsort(x, axis, descending), axis). vjp: g routed back through that
    permutation; at ties each output position sends its cotangent to the element ``argsort`` put there (stable
    order, also when descending).

    Args:
        x: Tensor of any shape.
        axis: int, default -1, or None for the flattened x.
        descending: bool, default False: largest first.
    """
    x = as_tensor(x)
    a = single_axis("sort", axis, x.ndim)
    if a is None:
        x, a = movement.reshape(x, (-1,)), 0
    return take_along_axis(x, _argsort("sort", x.data, a, descending), a)


def topk(x, k, axis=-1, largest: bool = True):
    """The ``k`` largest (``largest=False``: smallest) elements along ``axis`` and their indices, as
    ``(values, indices)``, largest first (smallest first); ties in stable order, the lower index first (as
    ``jax.lax.top_k``). Values carry the gradient (scatter-added back); indices are an integer Tensor.

    Args:
        x: Tensor of any shape.
        k: int, 0 <= k <= x.shape[axis].
        axis: int, default -1.
        largest: bool, default True; False takes the k smallest.
    """
    x = as_tensor(x)
    a = single_axis("topk", axis, x.ndim, allow_none=False)
    validation.positive_int("topk", "k", k, minimum=0)
    if k > x.shape[a]:
        raise ValueError(f"topk: k={k} is larger than axis {a} of size {x.shape[a]} (input shape {x.shape})")
    order = _argsort("topk", x.data, a, validation.boolean("topk", "largest", largest))
    indices = order[(slice(None),) * a + (slice(0, k),)]
    return take_along_axis(x, indices, a), movement.constant(indices)


def one_hot(labels, num_classes: int, dtype=np.float32):
    """Integer class ids (any shape) as one-hot rows, shape ``labels.shape + (num_classes,)``, a constant of
    ``dtype`` (float32 by default; ``jax.nn.one_hot`` gives zeros for an out-of-range id, this raises).

    Args:
        labels: integer array or Tensor of class ids in [0, num_classes), any shape.
        num_classes: positive int, the length of each row.
        dtype: NumPy dtype of the result, default ``np.float32``.
    """
    y = _index_array("one_hot", labels)
    n = validation.positive_int("one_hot", "num_classes", num_classes)
    if y.size and (y.min() < 0 or y.max() >= n):
        bad = y[(y < 0) | (y >= n)].flat[0]
        raise ValueError(f"one_hot: labels must be class ids in [0, {n}) for num_classes={n}; got {bad}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"one_hot: dtype={dtype!r} is not a NumPy dtype") from exc
    return movement.constant(np.eye(n, dtype=dtype)[y])


def where(condition, x, y):
    """x where ``condition`` holds, else y, with broadcasting, as ``np.where(condition, x, y)``: ``ops.where`` on
    x and y made Tensors (numbers take the other operand's dtype).   vjp: g to the chosen branch, 0 to the other.

    Args:
        condition: array-like of bools (a constant, no gradient).
        x, y: Tensors or numbers broadcast against condition and each other: the values where condition holds,
            and where it does not.
    """
    return elementwise.where(condition, *pair(x, y))
