"""``MirrorTensor``: a JAX array standing in for an engine ``Tensor`` inside a custom layer's mirrored ``call``
(``jax_ref._custom``), with the Tensor's operators and methods (``METHODS``: each the ``jax.numpy`` function of
the same semantics, NumPy's signatures as the engine's) and a ``MirrorError`` naming every operation that would
leave JAX (``.data``, NumPy functions, ``bool()`` on values, in-place writes, unmirrored methods)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
from jax import lax

from jax_ref import ops
from tinygrad_cnn.tensor import Tensor, _shape_args

__all__ = ["METHODS", "MirrorError", "MirrorTensor", "unwrap", "wrap"]


class MirrorError(Exception):
    """An operation of a custom layer's ``call`` that the twin cannot mirror (the message says which)."""


def unwrap(value):
    """The JAX array of a ``MirrorTensor``; lists, tuples and dicts unwrapped element by element."""
    if isinstance(value, MirrorTensor):
        return value.array
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    return value


def wrap(value):
    """A JAX array as a ``MirrorTensor``; lists and tuples element by element; anything else unchanged."""
    if isinstance(value, jax.Array):
        return MirrorTensor(value)
    if isinstance(value, (list, tuple)):
        return type(value)(wrap(v) for v in value)
    return value




def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _reduce(fn):
    return lambda a, axis=None, keepdims=False: fn(a, axis=_axis(axis), keepdims=keepdims)


def _moment(fn):
    return lambda a, axis=None, *, ddof=0, keepdims=False: fn(a, axis=_axis(axis), ddof=ddof, keepdims=keepdims)


def _pad(a, pad_width, mode="constant", constant_values=0.0):
    if mode == "constant":
        return jnp.pad(a, pad_width, mode="constant", constant_values=constant_values)
    return jnp.pad(a, pad_width, mode=mode)


# The engine Tensor's methods, each as the jax.numpy function with the same semantics (NumPy's signatures, as
# the engine's); a Tensor method missing here is refused by name.
METHODS = {
    "sum": _reduce(jnp.sum), "mean": _reduce(jnp.mean), "max": _reduce(jnp.max), "min": _reduce(jnp.min),
    "prod": _reduce(jnp.prod), "any": _reduce(jnp.any), "all": _reduce(jnp.all),
    "argmax": _reduce(jnp.argmax), "argmin": _reduce(jnp.argmin),
    "var": _moment(jnp.var), "std": _moment(jnp.std),
    "logsumexp": lambda a, axis=-1, keepdims=False: ops.logsumexp(a, axis=_axis(axis), keepdims=keepdims),
    "reshape": lambda a, *shape: jnp.reshape(a, _shape_args(shape)),
    "transpose": lambda a, *axes: jnp.transpose(a, _shape_args(axes) or None),
    "flatten": lambda a: jnp.reshape(a, (-1,)),
    "pad": _pad,
    "squeeze": lambda a, axis=None: jnp.squeeze(a, _axis(axis)),
    "expand_dims": lambda a, axis: jnp.expand_dims(a, _axis(axis)),
    "unsqueeze": lambda a, axis: jnp.expand_dims(a, _axis(axis)),
    "flip": lambda a, axis=None: jnp.flip(a, _axis(axis)),
    "roll": lambda a, shift, axis=None: jnp.roll(a, shift, _axis(axis)),
    "repeat": lambda a, repeats, axis=None: jnp.repeat(a, repeats, axis),
    "tile": lambda a, *reps: jnp.tile(a, _shape_args(reps)),
    "broadcast_to": lambda a, *shape: jnp.broadcast_to(a, _shape_args(shape)),
    "moveaxis": jnp.moveaxis, "swapaxes": jnp.swapaxes,
    "cumsum": lambda a, axis=None: jnp.cumsum(a, axis), "cumprod": lambda a, axis=None: jnp.cumprod(a, axis),
    "clip": lambda a, a_min=None, a_max=None: jnp.clip(a, a_min, a_max),
    "astype": lambda a, dtype: a.astype(dtype),
    "round": lambda a, decimals=0: jnp.round(a, decimals),
    "maximum": jnp.maximum, "minimum": jnp.minimum,
    "where": lambda a, condition, other: jnp.where(condition, a, other),
    "relu": ops.relu, "softplus": ops.softplus, "sigmoid": ops.sigmoid, "tanh": ops.tanh,
    "exp": jnp.exp, "log": jnp.log, "sqrt": jnp.sqrt, "abs": jnp.abs, "log1p": jnp.log1p, "expm1": jnp.expm1,
    "log2": jnp.log2, "exp2": jnp.exp2, "square": jnp.square, "reciprocal": jnp.reciprocal, "rsqrt": lax.rsqrt,
    "sign": jnp.sign, "floor": jnp.floor, "ceil": jnp.ceil, "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan,
    "asin": jnp.arcsin, "acos": jnp.arccos, "atan": jnp.arctan, "sinh": jnp.sinh, "cosh": jnp.cosh,
    "atanh": jnp.arctanh, "erf": jsp.erf,
    "detach": lax.stop_gradient,  # the engine's detach: the same values, no gradient
}

# Tensor attributes that have no mirror by nature, and why
_REFUSED = {
    "data": "reads .data (a NumPy array: JAX cannot differentiate through NumPy, and the engine's gradient "
            "stops there too); use Tensor methods and F functions",
    "numpy": "calls .numpy() (a NumPy array: JAX cannot differentiate through NumPy)",
    "item": "calls .item() (a Python number taken from a tensor's values)",
    "grad": "reads .grad (the engine's gradient buffer)",
    "backward": "calls .backward() inside call",
    "copy_": "writes a tensor in place (copy_)",
    "register_hook": "registers a gradient hook (register_hook)",
    "retain_grad": "calls retain_grad()",
}

# NumPy ufuncs that reach a MirrorTensor from an operator whose left operand is a NumPy array
# (``array + tensor``): the engine answers them with the Tensor's reflected operator, and so does the mirror
_OPERATOR_UFUNCS = {"add": jnp.add, "subtract": jnp.subtract, "multiply": jnp.multiply, "divide": jnp.divide,
                    "true_divide": jnp.true_divide, "power": jnp.power, "less": jnp.less,
                    "less_equal": jnp.less_equal, "greater": jnp.greater, "greater_equal": jnp.greater_equal,
                    "equal": jnp.equal, "not_equal": jnp.not_equal}


def _matmul(a, b):
    return jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


class MirrorTensor:
    """A JAX array standing in for an engine ``Tensor`` inside a custom layer's ``call`` (see the module
    docstring): the Tensor's operators, ``shape``/``dtype``/``ndim``/``size``, ``T`` and the methods of
    ``METHODS``; everything that would leave JAX raises ``MirrorError`` naming the operation."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    shape = property(lambda self: tuple(self.array.shape))
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)
    size = property(lambda self: self.array.size)
    T = property(lambda self: MirrorTensor(jnp.transpose(self.array)))

    def __getattr__(self, name):
        if name in _REFUSED:
            raise MirrorError(_REFUSED[name])
        if hasattr(Tensor, name):
            raise MirrorError(f"uses Tensor.{name}, which the twin does not mirror (mirrored methods: "
                              f"{', '.join(sorted(METHODS))})")
        raise AttributeError(f"'Tensor' object has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name != "array":
            raise MirrorError(f"sets the tensor attribute {name!r}")
        object.__setattr__(self, name, value)

    def __setitem__(self, index, value):
        raise MirrorError("writes into a tensor in place (tensor[...] = value)")

    def __bool__(self):
        raise MirrorError("uses a tensor's values in Python control flow (bool(tensor): an if, while, and/or or "
                          "assert on a tensor); the twin traces call once, so branch with tg.where(condition, a, "
                          "b) or on config values and the training flag")

    def _scalar(self, *_):
        raise MirrorError("converts a tensor to a Python number (float(), int(), or a tensor used as an index)")

    __float__ = __int__ = __index__ = __complex__ = _scalar

    def __array__(self, dtype=None, copy=None):
        raise MirrorError("converts a tensor to a NumPy array (np.asarray or an engine/NumPy function given a "
                          "tensor): JAX cannot differentiate through NumPy; use F functions and Tensor methods")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and ufunc.__name__ in _OPERATOR_UFUNCS and not kwargs:
            return MirrorTensor(_OPERATOR_UFUNCS[ufunc.__name__](*unwrap(inputs)))
        raise MirrorError(f"calls NumPy's np.{ufunc.__name__} on a tensor (JAX cannot differentiate through "
                          f"NumPy); use the F function or Tensor method of the same name")

    def __array_function__(self, func, types, args, kwargs):
        raise MirrorError(f"calls NumPy's np.{func.__name__} on a tensor (JAX cannot differentiate through NumPy); "
                          f"use the F function or Tensor method of the same name")

    def __len__(self):
        return self.array.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index):
        return MirrorTensor(self.array[unwrap(index)])

    def __repr__(self):
        return f"MirrorTensor(shape={self.shape}, dtype={self.dtype})"

    __hash__ = object.__hash__


def _binary(fn, reflected=False):
    if reflected:
        return lambda self, other: MirrorTensor(fn(unwrap(other), self.array))
    return lambda self, other: MirrorTensor(fn(self.array, unwrap(other)))


for _name, _fn in (("add", jnp.add), ("sub", jnp.subtract), ("mul", jnp.multiply), ("truediv", jnp.true_divide),
                   ("pow", jnp.power), ("matmul", _matmul)):
    setattr(MirrorTensor, f"__{_name}__", _binary(_fn))
    setattr(MirrorTensor, f"__r{_name}__", _binary(_fn, reflected=True))
for _name, _fn in (("lt", jnp.less), ("le", jnp.less_equal), ("gt", jnp.greater), ("ge", jnp.greater_equal),
                   ("eq", jnp.equal), ("ne", jnp.not_equal)):
    setattr(MirrorTensor, f"__{_name}__", _binary(_fn))
MirrorTensor.__neg__ = lambda self: MirrorTensor(-self.array)
def _method(fn):
    return lambda self, *args, **kwargs: wrap(fn(self.array, *unwrap(args), **unwrap(kwargs)))


for _name, _fn in METHODS.items():
    setattr(MirrorTensor, _name, _method(_fn))
