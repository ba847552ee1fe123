"""The Tensor: an n-dimensional array that can record how it was computed.

Its operators and methods apply the engine's primitives (``tinygrad_cnn.ops``); ``backward`` runs reverse mode
(``tinygrad_cnn.autograd``). Both of those modules build on ``Tensor``, so this module imports them once, at its
end (see the note there): the one answer to the Tensor/ops circle.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import hooks
from tinygrad_cnn import validation as _validation


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
    """``value`` as a Tensor; Python numbers take ``like``'s floating dtype so float32 stays float32."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor._from_op(value, None)
    if isinstance(value, (bool, int, float, np.generic)) and like is not None:
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
