"""The Tensor: an n-dimensional array that can record how it was computed.

Its operators and methods apply the engine's primitives (``tinygrad_cnn.ops``); ``backward`` runs reverse mode
(``tinygrad_cnn.autograd``). Both of those modules build on ``Tensor``, so this module imports them once, at its
end (see the note there): the one answer to the Tensor/ops circle.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from tinygrad_cnn import hooks
from tinygrad_cnn import validation as _validation


def _to_array(data, dtype) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    try:
        arr = np.asarray(data, dtype=dtype)
    except ValueError as exc:
        if isinstance(data, (list, tuple)):
            raise ValueError("Tensor: data is a ragged nested list (rows of different lengths, or numbers mixed "
                             "with lists); every row at one depth must have the same length") from exc
        raise
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"Tensor: data must be numbers, a nested list of numbers or an array of floats, ints or "
                        f"bools; got {type(data).__name__} (as array: dtype {arr.dtype}): the engine cannot "
                        f"differentiate complex, string or object data")
    if dtype is None and arr.dtype.kind in "iuf" and not isinstance(data, (np.ndarray, np.generic)):
        return arr.astype(np.float32)  # Python numbers and lists are float32
    return arr


WRITES = [0]  # the global write clock: how many tracked in-place writes have happened (see Tensor._mark_written)


class Tensor:
    """An n-dimensional array that can record how it was computed.

    ``Tensor(data, requires_grad=False, dtype=None)``: Python numbers and lists
    become float32; NumPy arrays keep their dtype (without a copy); integer
    arrays are for labels and indices and cannot require a gradient.

    Version counter (as PyTorch's): every in-place write the engine performs or
    exposes bumps ``version`` -- assigning ``x.data`` (which includes
    ``x.data *= 10``: Python assigns the attribute back), ``x[index] = value``,
    ``x.copy_(src)``, optimizer steps, ``set_weights``/``load_weights``. Each
    op records its inputs' versions when it records the graph and backward
    checks them, so a gradient is never computed from data changed under it.
    Writing into the array's elements through a reference (``x.data[i] = v``,
    ``x.numpy()[...] = v``) bypasses the Tensor and is not seen: use
    ``x[i] = v`` or ``x.copy_(v)``. A ``detach()``ed Tensor shares the counter.

    Example::

        x = tg.Tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        x.grad  # array([2., 4.], dtype=float32)

    Args:
        data: a number, nested list, NumPy array or Tensor.
        requires_grad: bool, default False: record operations on it and fill ``.grad`` in ``backward``
            (floating dtypes only).
        dtype: None (default: float32 for Python data, the array's own dtype for arrays) or a NumPy dtype.

    Raises:
        TypeError: ``requires_grad=True`` with an integer or boolean dtype.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_ctx", "_version", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self._data = _to_array(data, dtype)
        if requires_grad and not np.issubdtype(self._data.dtype, np.floating):
            raise TypeError(f"Tensor: requires_grad=True needs a floating dtype; got {self._data.dtype}")
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._version = None

    @classmethod
    def _from_op(cls, data: np.ndarray, ctx) -> "Tensor":
        out = cls.__new__(cls)
        out._data = data if isinstance(data, np.ndarray) else np.asarray(data)
        out.grad = None
        out.requires_grad = ctx is not None
        out._ctx = ctx
        out._version = None
        return out

    # -- data and its version counter ---------------------------------------------------------------
    # ``_version`` is None until the first write, then a cell ``[writes, stamp]`` shared with detach()ed Tensors:
    # ``stamp`` is the value of the global write clock ``WRITES`` at the last write. A recorded op keeps the clock
    # it saw; backward looks at its inputs only if the clock has moved since (one comparison per node otherwise).
    def _mark_written(self) -> None:
        WRITES[0] += 1
        if self._version is None:
            self._version = [0, 0]
        self._version[0] += 1
        self._version[1] = WRITES[0]

    def _set_data(self, value) -> None:
        self._data = value
        self._mark_written()

    # The getter is C (attrgetter), so reading .data costs about what a plain slot did.
    data = property(attrgetter("_data"), _set_data,
                    doc="The underlying np.ndarray; assigning it (x.data = a, x.data *= 10) bumps the version.")

    @property
    def version(self) -> int:
        """How many in-place writes this Tensor's data has seen (shared with its ``detach()``ed Tensors)."""
        return 0 if self._version is None else self._version[0]

    def copy_(self, src) -> "Tensor":
        """Write ``src`` (broadcast to this shape, cast to this dtype) into this Tensor's array in place; returns
        ``self``. Recorded by the version counter, so a graph that used the old values refuses to backpropagate."""
        np.copyto(self._data, np.asarray(src.data if isinstance(src, Tensor) else src), casting="unsafe")
        self._mark_written()
        return self

    def __setitem__(self, index, value) -> None:
        """``x[index] = value`` in place, as NumPy's (recorded by the version counter, as ``copy_``)."""
        self._data[index] = value.data if isinstance(value, Tensor) else value
        self._mark_written()

    # -- array protocol -------------------------------------------------------------------------
    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        """Truth of a one-element Tensor; ambiguous (ValueError, as NumPy) for more elements."""
        return bool(self._data)

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)

    def numpy(self) -> np.ndarray:
        """The underlying array (not a copy)."""
        return self._data

    def item(self):
        """The value of a one-element Tensor as a Python number."""
        return self._data.item()

    def detach(self) -> "Tensor":
        """A Tensor sharing this one's data (and version counter), outside any graph."""
        out = Tensor._from_op(self._data, None)
        if self._version is None:
            self._version = [0, 0]
        out._version = self._version
        return out

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self._ctx.function.__name__}" if self._ctx is not None else ""
        return f"Tensor({np.array2string(self._data, precision=4, threshold=20)}, dtype={self.dtype}{flag}{op})"

    __hash__ = object.__hash__

    # -- differentiation ------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d self / d leaf, contracted with ``grad``, into every leaf's ``.grad``.

        ``grad`` (a Tensor or array shaped like ``self``) is required unless
        ``self`` has one element. Calling backward twice adds up, as in
        PyTorch; the graph is released afterwards unless ``retain_graph``.

        Args:
            grad: the cotangent v (``leaf.grad += v . d self / d leaf``); None (default) means 1 for a scalar.
            retain_graph: bool, default False: keep the graph for another backward.

        Raises:
            ValueError: a non-scalar ``self`` without ``grad``.
            RuntimeError: a released graph, or an input written in place after the forward pass (its version
                changed).
        """
        autograd.backward(self, grad, retain_graph)

    def register_hook(self, fn) -> "hooks.RemovableHandle":
        """Call ``fn(g)`` with this Tensor's total cotangent in each backward pass; a returned Tensor or array
        (same shape) replaces it, None keeps it (as PyTorch's). Returns a handle whose ``remove()`` undoes it."""
        return hooks.register_hook(self, fn)

    def retain_grad(self) -> None:
        """Fill ``.grad`` of this non-leaf Tensor in ``backward`` (leaves always get theirs), as PyTorch's."""
        hooks.retain_grad(self)

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
    def pad(self, pad_width, mode="constant", constant_values=0.0):
        return _ops.pad(self, pad_width, mode, constant_values)
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
    def log1p(self): return _ops.log1p(self)
    def expm1(self): return _ops.expm1(self)
    def log2(self): return _ops.log2(self)
    def exp2(self): return _ops.exp2(self)
    def square(self): return _ops.square(self)
    def reciprocal(self): return _ops.reciprocal(self)
    def rsqrt(self): return _ops.rsqrt(self)
    def sign(self): return _ops.sign(self)
    def floor(self): return _ops.floor(self)
    def ceil(self): return _ops.ceil(self)
    def round(self, decimals=0): return _ops.round(self, decimals)
    def sin(self): return _ops.sin(self)
    def cos(self): return _ops.cos(self)
    def tan(self): return _ops.tan(self)
    def asin(self): return _ops.asin(self)
    def acos(self): return _ops.acos(self)
    def atan(self): return _ops.atan(self)
    def sinh(self): return _ops.sinh(self)
    def cosh(self): return _ops.cosh(self)
    def atanh(self): return _ops.atanh(self)
    def erf(self): return _ops.erf(self)
    def squeeze(self, axis=None): return _ops.squeeze(self, axis)
    def expand_dims(self, axis): return _ops.expand_dims(self, axis)
    def unsqueeze(self, axis): return _ops.expand_dims(self, axis)  # PyTorch's name
    def flip(self, axis=None): return _ops.flip(self, axis)
    def roll(self, shift, axis=None): return _ops.roll(self, shift, axis)
    def repeat(self, repeats, axis=None): return _ops.repeat(self, repeats, axis)  # np.repeat (torch: tile)
    def tile(self, *reps): return _ops.tile(self, _shape_args(reps))
    def expand(self, *shape): return _ops.expand(self, _shape_args(shape))
    def broadcast_to(self, *shape): return _ops.broadcast_to(self, _shape_args(shape))
    def split(self, indices_or_sections, axis=0): return _ops.split(self, indices_or_sections, axis)
    def chunk(self, chunks, axis=0): return _ops.chunk(self, chunks, axis)
    def moveaxis(self, source, destination): return _ops.moveaxis(self, source, destination)
    def swapaxes(self, axis1, axis2): return _ops.swapaxes(self, axis1, axis2)
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
    def logsumexp(self, axis=-1, keepdims=False): return _softmax.logsumexp(self, axis, keepdims)
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
    """``value`` as a Tensor. Scalars -- Python numbers, NumPy scalars and 0-d arrays -- take ``like``'s floating
    dtype, so ``x * 2.0`` and ``x * np.array(2.0)`` are both float32 for a float32 ``x`` (PyTorch's rule for
    0-d tensors; NumPy 2 and JAX promote a 0-d float64 array). Arrays with axes keep their dtype."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) and (value.ndim or like is None or value.dtype.kind not in "biuf"):
        return Tensor._from_op(value, None)
    if isinstance(value, (bool, int, float, np.generic, np.ndarray)) and like is not None:
        dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float32
        return Tensor._from_op(np.asarray(value, dtype=dtype), None)
    return Tensor(value)


def as_float_tensor(fn: str, arg: str, x) -> Tensor:
    """``x`` (a Tensor, an array, a list or a number) as a floating-point Tensor, or an error naming ``fn`` and
    ``arg`` (the argument check every functional op starts with)."""
    if not isinstance(x, (Tensor, np.ndarray, list, tuple, int, float)):
        raise TypeError(f"{fn}: {arg} must be a Tensor or an array; got {type(x).__name__}")
    x = as_tensor(x)
    _validation.float_array(fn, arg, x.data)
    return x


# The primitives and reverse mode are written with Tensors, and the Tensor's operators and ``backward`` call them:
# the modules below import this one, so it imports them last, once it defines Tensor (Python binds the names
# when they are first used, at call time). This is the only import of the engine's core that is not at the top.
from tinygrad_cnn import autograd  # noqa: E402
from tinygrad_cnn import ops as _ops  # noqa: E402
from tinygrad_cnn import softmax as _softmax  # noqa: E402  (Tensor.logsumexp)
