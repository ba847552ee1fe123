"""The twin of a user's ``Layer`` subclass: the layer's own ``call`` run on JAX, no JAX written by the user.

``layer_function(layer) -> fn(p, x, training, key)`` runs ``type(layer).call`` itself (the same code object,
so there is no second implementation to drift) with three things swapped for their JAX mirrors:

- its **globals**: the function is rebuilt with ``types.FunctionType(code, globals)`` over a copy of its
  module's globals in which ``tinygrad_cnn.functional`` (``F``, or any ``F.<name>`` imported by name) is
  ``jax_ref.ops`` (which mirrors it name for name), ``tinygrad_cnn`` (``tg``) and the ``Tensor`` class are
  JAX equivalents (creation functions, ``concatenate``/``stack``/``where``/``maximum``/
  ``minimum``; ``Tensor(data)`` a constant, ``isinstance(v, Tensor)`` true for tensors), the engine's
  activation functions are the twin's; plain functions of the layer's own module that ``call`` uses are
  rebuilt the same way (recursively), so helpers work too, and ``super()`` works on the proxy;
- **self**: a proxy whose weight attributes (any attribute holding one of ``layer.weights``) are the twin's
  parameter arrays, so ``jax.grad`` differentiates with respect to them; its methods and properties run
  rebuilt the same way, bound to the proxy; every other attribute is the layer's own value (its config);
- the **tensors**: ``x`` (and every value computed from it) is a ``MirrorTensor``, a thin wrapper over a JAX
  array with the engine ``Tensor``'s operators and methods (``reshape(*shape)``, ``sum(axis, keepdims)``,
  ``relu()``, ``T``, ...; the table ``METHODS``), each the ``jax.numpy`` function of the same semantics.

It traces under ``jax.jit``/``jax.grad`` like any JAX function. What cannot be mirrored fails loudly, with a
``NotImplementedError`` naming the layer, its class and the exact name or operation: reading ``.data`` /
``.numpy()`` / ``.item()`` (or any NumPy function on a tensor: NumPy cannot be differentiated by JAX, and the
engine would silently lose the gradient there too), Python control flow on a tensor's values (``bool()``),
in-place writes, attribute assignment on ``self``, a ``Tensor`` method or ``F``/``tg`` name without a
mirror, a layer held inside the layer (the engine does not track its weights). ``from_engine`` traces every
custom layer once (``jax.eval_shape``, no compute) in inference and training mode, so the error comes when
the twin is built, and checks the output shape against the engine's. As ``Layer.__call__`` does, a floating
input is cast to the layer's dtype first. One known difference: ``astype`` to a narrower float rounds the
cotangent to that dtype in JAX, not in the engine (the gradients then differ at that dtype's precision).

The name ("custom layer") and the idea that a subclass is first class come from Keras' guide to writing your
own layers; the mirroring is this project's.
"""

from __future__ import annotations

import inspect
import sys
import types

import jax
import jax.numpy as jnp

import tinygrad_cnn as tg
from jax_ref import _penalties, ops
from jax_ref._mirror_tensor import METHODS, MirrorError, MirrorTensor, unwrap, wrap
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn
from tinygrad_cnn.nn import activations, constraints, regularizers
from tinygrad_cnn.nn.layer import Layer
from tinygrad_cnn.tensor import Tensor

__all__ = ["METHODS", "MirrorError", "MirrorTensor", "is_custom", "layer_function", "penalties", "probe"]


def is_custom(layer) -> bool:
    """True for a layer whose class is not one of ``tinygrad_cnn.nn``'s own (a user's subclass, registered or
    not, or a subclass of a built-in layer): the twin mirrors it by running its ``call``."""
    return nn.LAYER_CLASSES.get(type(layer).__name__) is not type(layer)


def _mirrored(fn):
    """``fn`` on JAX arrays as a function of ``MirrorTensor``s (arguments unwrapped, results wrapped)."""
    def run(*args, **kwargs):
        return wrap(fn(*unwrap(args), **unwrap(kwargs)))

    run.__name__ = getattr(fn, "__name__", "mirrored")
    run.__doc__ = getattr(fn, "__doc__", None)
    return run


# -- the engine's namespaces, mirrored ---------------------------------------------------------------------------

class _Namespace:
    """A module as the mirrored ``call`` sees it: ``names`` maps each mirrored attribute to its value; any other
    attribute raises ``MirrorError`` naming ``<module>.<name>``."""

    def __init__(self, module: str, names: dict):
        self._module, self._names = module, names

    def __getattr__(self, name):
        names = self.__dict__["_names"]
        if name in names:
            return names[name]
        raise MirrorError(f"uses {self.__dict__['_module']}.{name}, which the twin does not mirror (mirrored: "
                          f"{', '.join(sorted(names)) or 'nothing'})")


def _constant(factory):
    """An engine creation function whose arguments are Python values (shapes, fill values, seeds): run by the
    engine itself, so the constant has the engine's values and dtype exactly."""
    def create(*args, **kwargs):
        return MirrorTensor(jnp.asarray(factory(*args, **kwargs).data))

    create.__name__ = factory.__name__
    return create


def _like(fill):
    def create(x, dtype=None, requires_grad=False):
        return MirrorTensor(fill(unwrap(x), dtype=dtype))

    return create


def _op(name: str):
    """``jax_ref.ops.<name>`` on ``MirrorTensor``s, looked up when called (so the twin always runs the current
    ``jax_ref.ops``)."""
    def run(*args, **kwargs):
        return wrap(getattr(ops, name)(*unwrap(args), **unwrap(kwargs)))

    run.__name__ = name
    return run


_F_NAMES = {name: _op(name) for name in F.__all__ if hasattr(ops, name)}
_F_MIRROR = _Namespace("tinygrad_cnn.functional", _F_NAMES)


class _TensorClass(type):
    """The ``Tensor`` class as the mirrored ``call`` sees it: ``Tensor(data, ...)`` is a constant made by the
    engine (its values and dtype), ``isinstance(v, Tensor)`` is true for ``MirrorTensor``s."""

    def __call__(cls, data, requires_grad=False, dtype=None):
        return MirrorTensor(jnp.asarray(Tensor(data, dtype=dtype).data))

    def __instancecheck__(cls, obj):
        return isinstance(obj, MirrorTensor)


class _MirrorTensorClass(metaclass=_TensorClass):
    pass


_TENSOR = _MirrorTensorClass
_TG_NAMES = {
    **{name: _constant(getattr(tg, name)) for name in ("arange", "eye", "full", "linspace", "ones", "rand", "randn",
                                                       "zeros")},
    "zeros_like": _like(jnp.zeros_like), "ones_like": _like(jnp.ones_like),
    "concatenate": _mirrored(lambda tensors, axis=0: jnp.concatenate(list(tensors), axis=axis)),
    "stack": _mirrored(lambda tensors, axis=0: jnp.stack(list(tensors), axis=axis)),
    "where": _mirrored(jnp.where), "maximum": _mirrored(jnp.maximum), "minimum": _mirrored(jnp.minimum),
    "functional": _F_MIRROR, "Tensor": _TENSOR,
}
_TG_NAMES["cat"] = _TG_NAMES["concatenate"]
_TG_MIRROR = _Namespace("tinygrad_cnn", _TG_NAMES)
# engine objects by identity -> their mirror
_BY_ID = {id(F): _F_MIRROR, id(tg): _TG_MIRROR, id(Tensor): _TENSOR}
_BY_ID.update({id(getattr(F, name)): value for name, value in _F_NAMES.items()})
_BY_ID.update({id(getattr(tg, name)): value for name, value in _TG_NAMES.items() if hasattr(tg, name)
               and not isinstance(value, _Namespace)})


def _refused_function(name: str):
    def refuse(*args, **kwargs):
        raise MirrorError(f"calls {name}, which the twin does not mirror (inside call, use tinygrad_cnn.functional "
                          f"functions, Tensor methods and the tensor creation functions of tinygrad_cnn)")

    return refuse


class _Context:
    """What one custom layer's mirror needs: where it is (for errors), its module, the rebuilt functions."""

    def __init__(self, layer):
        cls = type(layer)
        self.layer, self.module = layer, cls.__module__
        self.where = f"custom layer {layer.name!r} of class {cls.__name__} (module {cls.__module__})"
        self.rebuilt: dict[int, types.FunctionType] = {}

    def translate(self, value):
        """The mirror of a value ``call`` reads (a global, a default, a closure cell or a non-weight attribute)."""
        if isinstance(value, MirrorTensor):
            return value
        if isinstance(value, Tensor):  # a constant of the layer (its weights are found by the proxy first)
            return MirrorTensor(jnp.asarray(value.data))
        mirror = _BY_ID.get(id(value))
        if mirror is not None:
            return mirror
        if isinstance(value, types.ModuleType):
            name = value.__name__
            return _Namespace(name, {}) if name == "tinygrad_cnn" or name.startswith("tinygrad_cnn.") else value
        if isinstance(value, types.FunctionType):
            module = getattr(value, "__module__", "") or ""
            if module == activations.__name__:
                return _mirrored(_penalties.activation(self.where, activations.serialize(value)))
            if module.startswith("tinygrad_cnn"):
                return _refused_function(f"{module}.{value.__qualname__}")
            if module == self.module:
                return self.rebuild(value)
        if isinstance(value, (list, tuple)):
            return type(value)(self.translate(v) for v in value)
        if isinstance(value, dict):
            return {k: self.translate(v) for k, v in value.items()}
        return value

    def rebuild(self, function):
        """``function`` with its globals, defaults and closure cells translated (the same code object)."""
        done = self.rebuilt.get(id(function))
        if done is not None:
            return done
        scope = dict(function.__globals__)  # a copy: the user's module stays as it is
        closure = None
        if function.__closure__ is not None:
            closure = tuple(types.CellType(self.translate(c.cell_contents)) if _filled(c) else c
                            for c in function.__closure__)
        new = types.FunctionType(function.__code__, scope, function.__name__, None, closure)
        self.rebuilt[id(function)] = new
        new.__defaults__ = self.translate(function.__defaults__)
        new.__kwdefaults__ = self.translate(function.__kwdefaults__)
        names = _global_names(function.__code__)
        for name in names:
            if name in scope:
                scope[name] = self.translate(scope[name])
        if "super" in names:  # found before the builtin: super() works on the proxy
            scope["super"] = _super
        return new


def _filled(cell) -> bool:
    try:
        return cell.cell_contents is not _MISSING
    except ValueError:  # an empty cell (a name the closure has not bound yet)
        return False


def _global_names(code) -> set[str]:
    """The names a code object (and the functions, lambdas and comprehensions inside it) may load as globals."""
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names


class _LayerProxy:
    """``self`` inside the mirrored ``call``: weight attributes are the twin's parameters ``p`` (by weight
    name), methods and properties run rebuilt and bound to the proxy, other attributes are the layer's."""

    def __init__(self, context, params):
        layer = context.layer
        weights = {id(t): name for name, t in zip(layer.weight_names, layer.weights, strict=True)}
        object.__setattr__(self, "_mirror", (context, weights, params))

    def __getattribute__(self, name):
        context = object.__getattribute__(self, "_mirror")[0]
        layer = context.layer
        value = vars(layer).get(name, _MISSING)
        if value is not _MISSING:
            return _attribute_value(self, value)
        try:
            attr = inspect.getattr_static(type(layer), name)
        except AttributeError:
            raise AttributeError(f"{context.where} has no attribute {name!r}") from None
        return _class_attribute(self, attr)

    def __setattr__(self, name, value):
        raise MirrorError(f"assigns self.{name} inside call (state kept between calls is not mirrored; keep it in "
                          f"weights updated outside call, or compute it in call)")


def _class_attribute(proxy, attr):
    """A class attribute of the layer (from its class or a base) as seen through the proxy: methods and
    properties rebuilt and bound to it, other values as ``_attribute_value``."""
    context = object.__getattribute__(proxy, "_mirror")[0]
    if isinstance(attr, staticmethod):
        return context.rebuild(attr.__func__)
    if isinstance(attr, classmethod):
        return types.MethodType(context.rebuild(attr.__func__), type(context.layer))
    if isinstance(attr, property):
        if isinstance(attr.fget, types.FunctionType):
            return context.rebuild(attr.fget)(proxy)
        return _attribute_value(proxy, attr.fget(context.layer))
    if isinstance(attr, types.FunctionType):
        return types.MethodType(context.rebuild(attr), proxy)
    return _attribute_value(proxy, attr)


class _ProxySuper:
    """``super()`` on the proxy: attributes of the classes after ``cls`` in the layer's MRO."""

    def __init__(self, cls, proxy):
        self._cls, self._proxy = cls, proxy

    def __getattr__(self, name):
        context = object.__getattribute__(self._proxy, "_mirror")[0]
        mro = type(context.layer).__mro__
        for klass in mro[mro.index(self._cls) + 1:]:
            if name in vars(klass):
                return _class_attribute(self._proxy, vars(klass)[name])
        raise AttributeError(f"super() of {context.where} has no attribute {name!r}")


def _super(*args):
    """``super`` inside a rebuilt function: ``super()`` (the class and ``self`` read from the caller's frame, as
    Python's own zero-argument form does) or ``super(cls, obj)``; on the proxy, a ``_ProxySuper``."""
    if args:
        cls, obj = args
    else:
        frame = sys._getframe(1)
        cls, obj = frame.f_locals["__class__"], frame.f_locals[frame.f_code.co_varnames[0]]
    return _ProxySuper(cls, obj) if isinstance(obj, _LayerProxy) else super(cls, obj)


def _attribute_value(proxy, value):
    """An attribute of the layer as the mirrored ``call`` sees it: a weight is its parameter array (a
    ``MirrorTensor``), containers element by element, anything else ``_Context.translate``'s mirror."""
    context, weights, params = object.__getattribute__(proxy, "_mirror")
    if isinstance(value, Tensor) and id(value) in weights:
        return MirrorTensor(params[weights[id(value)]])
    if isinstance(value, Layer):
        raise MirrorError(f"uses the layer {type(value).__name__} {value.name!r} held inside it: the engine does not "
                          f"track a nested layer's weights, so neither training nor the twin would see them; call "
                          f"the layers one after another in a graph model instead")
    if isinstance(value, (list, tuple)):
        return type(value)(_attribute_value(proxy, v) for v in value)
    if isinstance(value, dict):
        return {k: _attribute_value(proxy, v) for k, v in value.items()}
    return context.translate(value)


_MISSING = object()


# -- the layer function ------------------------------------------------------------------------------------------

def layer_function(layer):
    """``fn(p, x, training, key) -> y``: the custom layer's own ``call`` on JAX (see the module docstring); ``p``
    maps the layer's weight names to arrays; ``x`` is one array (a list for a layer with ``takes_list``)."""
    context = _Context(layer)
    call = context.rebuild(type(layer).call)
    dtype = jnp.dtype(layer.dtype)

    def _cast(v):  # the engine's Layer.__call__: a floating input is cast to the layer's dtype (Keras' policy)
        v = jnp.asarray(v)
        return MirrorTensor(v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v)

    def fn(p, x, training, key):
        proxy = _LayerProxy(context, p)
        arg = [_cast(v) for v in x] if isinstance(x, (list, tuple)) else _cast(x)
        try:
            out = call(proxy, arg, training=bool(training))
            if not isinstance(out, MirrorTensor):
                raise MirrorError(f"returns {type(out).__name__}, not a tensor computed from its input")
        except MirrorError as error:
            raise NotImplementedError(f"jax_ref.from_engine: {context.where} cannot be mirrored: its call "
                                      f"{error}") from None
        except Exception as error:  # a shape error, a JAX tracing error...: say in which layer's call
            error.add_note(f"(raised in the JAX twin's run of the call of {context.where})")
            raise
        return out.array

    return fn


def penalties(layer) -> tuple[dict, dict | None]:
    """``({weight name: (regularizer config, constraint config)}, activity regularizer config)``, read from the
    layer's weights (``add_weight``'s arguments) and its ``activity_regularizer``, not from its ``get_config``
    (a custom ``get_config`` need not list them)."""
    weights = {name: (None if reg is None else regularizers.serialize(reg),
                      None if con is None else constraints.serialize(con))
               for name, _, reg, con in layer._weights}
    activity = layer.activity_regularizer
    return weights, None if activity is None else regularizers.serialize(activity)


def probe(fn, layer, params, node) -> None:
    """Trace ``fn`` for the node's input shapes (batch 2) in inference and training mode with ``jax.eval_shape``
    (no compute), so an operation without a mirror fails when the twin is built; the output shape must be the
    engine's (``node.output.shape``)."""
    def spec(t):
        return jax.ShapeDtypeStruct(tuple(2 if s is None else s for s in t.shape), jnp.dtype(t.dtype))

    x = [spec(t) for t in node.inputs] if layer.takes_list else spec(node.inputs[0])
    expected = tuple(2 if s is None else s for s in node.output.shape)
    for training in (False, True):
        out = jax.eval_shape(lambda p, v, training=training: fn(p, v, training, None), params, x)
        if tuple(out.shape) != expected:
            raise ValueError(f"jax_ref.from_engine: custom layer {layer.name!r} of class {type(layer).__name__}: "
                             f"its call gives shape {tuple(out.shape)} on the twin (training={training}) but "
                             f"compute_output_shape says {expected} (batch read as 2); make them agree")
