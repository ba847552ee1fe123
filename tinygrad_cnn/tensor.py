"""The Tensor, the recorded graph and reverse-mode differentiation.

Every Tensor produced by a primitive while gradients are enabled remembers the
primitive's ``Context``: its inputs and what it saved. ``backward`` walks that
graph from the output to the leaves in reverse topological order and applies
each primitive's vjp. By the multivariate chain rule, a node used by several
consumers receives the *sum* of the cotangents along every path:

    dL/dx = sum over consumers c of  dL/dc . dc/dx
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from tinygrad_cnn import validation


class _GradMode(threading.local):
    enabled = True


class _Anomaly(threading.local):
    enabled = False


class _KinkRecorder(threading.local):
    recording = False
    states: list = []


_GRAD = _GradMode()
_ANOMALY = _Anomaly()
_KINKS = _KinkRecorder()


def is_grad_enabled() -> bool:
    """Whether new operations are recorded in the graph."""
    return _GRAD.enabled


class _SetGradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self._enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self):
        self._previous.append(_GRAD.enabled)
        _GRAD.enabled = self._enabled
        return self

    def __exit__(self, *exc):
        _GRAD.enabled = self._previous.pop()
        return False


def no_grad() -> _SetGradMode:
    """Context manager and decorator inside which no graph is recorded."""
    return _SetGradMode(False)


def enable_grad() -> _SetGradMode:
    """Context manager and decorator that records the graph (undoes an enclosing ``no_grad``)."""
    return _SetGradMode(True)


@contextlib.contextmanager
def detect_anomaly():
    """Check every forward result and every gradient for NaN/Inf.

    Raises ``AnomalyError`` at the first op that produces one, naming the op,
    its input shapes and whether it happened in the forward or backward pass.
    """
    previous = _ANOMALY.enabled
    _ANOMALY.enabled = True
    try:
        yield
    finally:
        _ANOMALY.enabled = previous


@contextlib.contextmanager
def record_kinks():
    """Collect the ``kink_state`` of every primitive run inside (used by ``gradcheck``)."""
    previous = (_KINKS.recording, _KINKS.states)
    _KINKS.recording, _KINKS.states = True, []
    try:
        yield _KINKS.states
    finally:
        _KINKS.recording, _KINKS.states = previous


def _to_array(data, dtype) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float32)
    if arr.dtype.kind == "b":
        return arr
    raise TypeError(f"Tensor: data must be numbers, a nested list of numbers or an array; "
                    f"got {type(data).__name__} (as array: dtype {arr.dtype})")


class Tensor:
    """An n-dimensional array that can record how it was computed.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python numbers and lists
    become float32; NumPy arrays keep their dtype (without a copy); integer
    arrays are for labels and indices and cannot require a gradient.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        if requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"Tensor: requires_grad=True needs a floating dtype; got {self.data.dtype}")
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None

    @classmethod
    def _from_op(cls, data: np.ndarray, ctx) -> "Tensor":
        out = cls.__new__(cls)
        out.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        out.grad = None
        out.requires_grad = ctx is not None
        out._ctx = ctx
        return out

    # -- array protocol -------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        """Truth of a one-element Tensor; ambiguous (ValueError, as NumPy) for more elements."""
        return bool(self.data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy)."""
        return self.data

    def item(self):
        """The value of a one-element Tensor as a Python number."""
        return self.data.item()

    def detach(self) -> "Tensor":
        """A Tensor sharing this one's data, outside any graph."""
        return Tensor._from_op(self.data, None)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._ctx.function.__name__}" if self._ctx is not None else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}, dtype={self.dtype}{flag}{op})"

    __hash__ = object.__hash__

    # -- differentiation ------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d self / d leaf, contracted with ``grad``, into every leaf's ``.grad``.

        ``grad`` (a Tensor or array shaped like ``self``) is required unless
        ``self`` has one element. Calling backward twice adds up, as in
        PyTorch; the graph is released afterwards unless ``retain_graph``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this Tensor does not require a gradient (no leaf of its graph "
                               "has requires_grad=True, or it was computed under no_grad)")
        seed = _seed_cotangent("backward", self, grad)
        _backprop(self, seed, targets=None, create_graph=False, retain_graph=retain_graph)

    # -- operators (defined in terms of the primitives in tinygrad_cnn.ops) ----------------------
    def _wrap(self, other) -> "Tensor":
        return as_tensor(other, like=self)

    def __add__(self, other): return _ops.add(self, self._wrap(other))
    def __radd__(self, other): return _ops.add(self._wrap(other), self)
    def __sub__(self, other): return _ops.sub(self, self._wrap(other))
    def __rsub__(self, other): return _ops.sub(self._wrap(other), self)
    def __mul__(self, other): return _ops.mul(self, self._wrap(other))
    def __rmul__(self, other): return _ops.mul(self._wrap(other), self)
    def __truediv__(self, other): return _ops.div(self, self._wrap(other))
    def __rtruediv__(self, other): return _ops.div(self._wrap(other), self)
    def __pow__(self, other): return _ops.pow(self, other)
    def __rpow__(self, other): return _ops.pow(self._wrap(other), self)
    def __matmul__(self, other): return _ops.matmul(self, self._wrap(other))
    def __rmatmul__(self, other): return _ops.matmul(self._wrap(other), self)
    def __neg__(self): return _ops.neg(self)
    def __getitem__(self, index): return _ops.getitem(self, index)

    def _compare(self, other, op) -> "Tensor":
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._from_op(op(self.data, other), None)

    def __lt__(self, other): return self._compare(other, np.less)
    def __le__(self, other): return self._compare(other, np.less_equal)
    def __gt__(self, other): return self._compare(other, np.greater)
    def __ge__(self, other): return self._compare(other, np.greater_equal)
    def __eq__(self, other): return self._compare(other, np.equal)
    def __ne__(self, other): return self._compare(other, np.not_equal)

    # -- methods with NumPy's signatures ----------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return _ops.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _ops.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _ops.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return _ops.min(self, axis, keepdims)
    def reshape(self, *shape): return _ops.reshape(self, _shape_args(shape))
    def transpose(self, *axes): return _ops.transpose(self, _shape_args(axes) or None)
    def flatten(self): return _ops.reshape(self, (-1,))
    def pad(self, pad_width): return _ops.pad(self, pad_width)
    def exp(self): return _ops.exp(self)
    def log(self): return _ops.log(self)
    def sqrt(self): return _ops.sqrt(self)
    def abs(self): return _ops.abs(self)
    def relu(self): return _ops.relu(self)
    def softplus(self): return _ops.softplus(self)
    def sigmoid(self): return _ops.sigmoid(self)
    def tanh(self): return _ops.tanh(self)
    def clip(self, a_min=None, a_max=None): return _ops.clip(self, a_min, a_max)
    def astype(self, dtype): return _ops.astype(self, dtype)
    # reductions and indexing (NumPy's signatures; gather, topk, maximum, minimum and where are PyTorch's)
    def prod(self, axis=None, keepdims=False): return _ops.prod(self, axis, keepdims)
    def var(self, axis=None, *, ddof=0, keepdims=False): return _ops.var(self, axis, ddof=ddof, keepdims=keepdims)
    def std(self, axis=None, *, ddof=0, keepdims=False): return _ops.std(self, axis, ddof=ddof, keepdims=keepdims)
    def argmax(self, axis=None, keepdims=False): return _ops.argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return _ops.argmin(self, axis, keepdims)
    def any(self, axis=None, keepdims=False): return _ops.any(self, axis, keepdims)
    def all(self, axis=None, keepdims=False): return _ops.all(self, axis, keepdims)
    def cumsum(self, axis=None): return _ops.cumsum(self, axis)
    def cumprod(self, axis=None): return _ops.cumprod(self, axis)
    def logsumexp(self, axis=-1, keepdims=False): return _F.logsumexp(self, axis, keepdims)
    def maximum(self, other): return _ops.maximum(self, self._wrap(other))
    def minimum(self, other): return _ops.minimum(self, self._wrap(other))
    def where(self, condition, other):
        """PyTorch's ``x.where(condition, y)``: x where ``condition`` holds, else y (``where(condition, x, y)``)."""
        return _ops.where(condition, self, self._wrap(other))
    def sort(self, axis=-1, descending=False): return _ops.sort(self, axis, descending)
    def argsort(self, axis=-1, descending=False): return _ops.argsort(self, axis, descending)
    def topk(self, k, axis=-1, largest=True): return _ops.topk(self, k, axis, largest)
    def gather(self, dim, index): return _ops.gather(self, dim, index)

    @property
    def T(self) -> "Tensor":
        return _ops.transpose(self, None)


def _shape_args(args: tuple) -> tuple:
    if len(args) == 1 and (isinstance(args[0], (tuple, list)) or args[0] is None):
        return tuple(args[0]) if args[0] is not None else ()
    return tuple(args)


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor; Python numbers take ``like``'s floating dtype so float32 stays float32."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor._from_op(value, None)
    if isinstance(value, (bool, int, float, np.generic)) and like is not None:
        dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float32
        return Tensor._from_op(np.asarray(value, dtype=dtype), None)
    return Tensor(value)


def _seed_cotangent(fn: str, output: Tensor, grad) -> Tensor:
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


def graph_order(root: Tensor, include_constants: bool = False, caller: str = "backward") -> list[Tensor]:
    """The Tensors of ``root``'s graph, inputs before the ops that use them (iterative: no recursion limit).

    Only nodes that require a gradient, unless ``include_constants``. Raises
    ``RuntimeError`` (naming ``caller``) if a backward pass released the graph.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
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


def _backprop(root: Tensor, seed: Tensor, targets, create_graph: bool, retain_graph: bool):
    """Propagate ``seed`` from ``root``; fill leaves' ``.grad`` or, with ``targets``, return their cotangents."""
    from tinygrad_cnn.function import check_finite

    order = graph_order(root)
    wanted = None
    if targets is not None:
        target_ids = {id(t) for t in targets}
        wanted = set()
        for node in order:  # parents first: a node is wanted if it is a target or feeds one
            if id(node) in target_ids or (node._ctx is not None
                                          and any(id(p) in wanted for p in node._ctx.inputs)):
                wanted.add(id(node))
        found: dict[int, Tensor] = {}
    grads: dict[int, Tensor] = {id(root): seed}
    with _SetGradMode(create_graph):
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None or (wanted is not None and id(node) not in wanted):
                continue
            if targets is not None and id(node) in target_ids:
                found[id(node)] = g
            ctx = node._ctx
            if ctx is None:
                if targets is None:
                    node.grad = (g.data.astype(node.dtype, copy=True) if node.grad is None
                                 else node.grad + g.data)
                continue
            if _ANOMALY.enabled:  # ops run inside a vjp are reported as this op's backward pass
                _ANOMALY.enabled = False
                try:
                    parent_grads = ctx.function.vjp(ctx, g)
                finally:
                    _ANOMALY.enabled = True
            else:
                parent_grads = ctx.function.vjp(ctx, g)
            if len(parent_grads) != len(ctx.inputs):
                raise RuntimeError(f"backward: {ctx.function.__name__}.vjp returned {len(parent_grads)} "
                                   f"gradients for {len(ctx.inputs)} inputs (one Tensor or None per input)")
            for parent, pg in zip(ctx.inputs, parent_grads, strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                if _ANOMALY.enabled:
                    check_finite(ctx.function, "backward", pg.data, ctx.inputs)
                previous = grads.get(id(parent))
                grads[id(parent)] = pg if previous is None else previous + pg
            if not retain_graph:
                ctx.release()
    return found if targets is not None else None


def grad(output: Tensor, inputs, grad_output=None, create_graph: bool = False,
         retain_graph: bool | None = None) -> list[Tensor]:
    """Return ``[d output / d x for x in inputs]`` (contracted with ``grad_output``) as Tensors.

    Like ``torch.autograd.grad``: leaves' ``.grad`` is untouched. With
    ``create_graph=True`` the backward pass is recorded, so the results can be
    differentiated again. An input that ``output`` does not depend on gets
    zeros. The graph is kept when ``create_graph`` (or ``retain_graph``) is set.
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: inputs[{i}] must be a Tensor; got {type(x).__name__}")
    if not isinstance(output, Tensor):
        raise TypeError(f"grad: output must be a Tensor; got {type(output).__name__}")
    seed = _seed_cotangent("grad", output, grad_output)
    retain = create_graph if retain_graph is None else retain_graph
    found = _backprop(output, seed, inputs, create_graph, retain) if output.requires_grad else {}
    results, seen = [], {id(seed)}
    for x in inputs:
        g = found.get(id(x))
        if g is None:
            g = Tensor(np.zeros_like(x.data))
        elif not create_graph:  # a fresh array: never the caller's grad_output, never shared by two results
            g = Tensor._from_op(g.data.copy(), None)
        elif id(g) in seen:  # the same node reached two inputs (e.g. a + b): give each its own Tensor
            g = _ops.add(g, Tensor._from_op(np.zeros((), g.dtype), None))
        seen.add(id(g))
        results.append(g)
    return results


def check_float(fn: str, arg: str, t: Tensor) -> None:
    """Raise unless ``t`` is floating point."""
    validation.float_array(fn, arg, t.data)


from tinygrad_cnn import functional as _F  # noqa: E402  (Tensor.logsumexp is F.logsumexp)
from tinygrad_cnn import ops as _ops  # noqa: E402  (the operators above need the primitives)
