"""The Layer base class: weights, lazy build, input checks, regularization losses, config.

A layer owns named weights (Tensors with ``requires_grad=True``) created in
``build(input_shape)`` through ``add_weight``, in Keras' order (kernel, then
bias). ``layer(x, training=False)`` builds on first use, checks the input
against what the layer was built for, runs ``call`` and records the activity
regularization penalty ``activity_regularizer(y) / batch_size`` (Keras' rule).
``layer.losses`` holds the weight penalties (recomputed from the current
weights, so they are differentiable) plus the activity penalties of the last
outermost call: as Keras' call context, the outermost call (a model's, or a
layer's called on its own) clears the penalties of every layer it runs, and
each layer call inside it adds its own, so a layer shared by two nodes of a
model contributes one penalty per call.

``layer.trainable`` (Keras' flag) may be changed at any time: a weight's
``requires_grad`` is ``layer.trainable and w`` where ``w`` is the ``trainable``
argument the weight was added with, so setting the flag freezes or releases
the layer's weights at once (``parameters()``, the summary counts and ``fit``
follow it) while a weight added with ``trainable=False`` stays frozen.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect

import numpy as np

from tinygrad_cnn import observe, ops, validation
from tinygrad_cnn.nn import _serial, activations, constraints, initializers, regularizers
from tinygrad_cnn.nn.graph import Node, SymbolicTensor
from tinygrad_cnn.tensor import Tensor, as_tensor

__all__ = ["Layer", "assign_checked", "outermost_call"]

_DTYPES = ("float32", "float64")

# True inside an outermost layer or model call (Keras' ``CallContext``): nested calls add activity penalties
_IN_CALL = contextvars.ContextVar("tinygrad_cnn_in_layer_call", default=False)


@contextlib.contextmanager
def outermost_call(layers):
    """Keras' call context for activity penalties: entered by the outermost call, it clears the activity
    penalties of ``layers`` (the layers the call runs) and lets every layer call inside it add its own; entered
    inside another call, it does nothing (the penalties accumulate for the outermost call). A call that fails
    leaves the penalties of the call before it."""
    if _IN_CALL.get():
        yield
        return
    before = [(layer, layer._activity_losses) for layer in layers]
    for layer in layers:
        layer._activity_losses = []
    token = _IN_CALL.set(True)
    try:
        yield
    except BaseException:
        for layer, losses in before:
            layer._activity_losses = losses
        raise
    finally:
        _IN_CALL.reset(token)


class Layer:
    """Base of every Keras-style layer (see the module docstring).

    A subclass defines ``build(input_shape)`` (creating weights with ``add_weight``), ``call(x, training)``
    and ``compute_output_shape``; ``layer(x)`` builds on first use and runs ``call``.

    Args:
        name: str or None (default: a unique snake_case name of the class, e.g. ``conv2d_1``).
        dtype: the weights' dtype or policy name, default ``"float32"``.
        trainable: bool, default True; False freezes the weights (they leave ``parameters()``).
        activity_regularizer: a penalty on the layer's output added to the loss, default None.
        input_shape: the input shape without the batch axis, to build at construction (Keras 2's argument).

    Raises:
        TypeError: ``name`` not a string.
        ValueError: an unknown keyword argument (with a did-you-mean suggestion) or dtype.
    """

    takes_list = False  # merge layers take a list of inputs, ``layer([a, b])``

    def __init__(self, name=None, dtype="float32", trainable=True, activity_regularizer=None, input_shape=None,
                 **kwargs):
        cls = type(self).__name__
        if kwargs:
            key = next(iter(kwargs))
            allowed = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "kwargs")]
            allowed += ["name", "dtype", "trainable", "input_shape"]
            validation.choice(cls, "keyword argument", key, tuple(dict.fromkeys(allowed)))
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{cls}: name must be a string; got {name!r}")
        self.name = name or _serial.unique_name(_serial.snake_case(cls))
        self.dtype = validation.dtype_choice(cls, "dtype", "float32" if dtype is None else dtype, _DTYPES)
        self._weights: list[tuple[str, Tensor, object, object]] = []
        self._frozen_weights: set[int] = set()  # ids of the weights added with trainable=False
        self.trainable = trainable
        self.activity_regularizer = regularizers.get(activity_regularizer, self._where(), "activity_regularizer")
        self.input_shape_arg = None if input_shape is None else self._shape_arg("input_shape", input_shape)
        self.built = False
        self.input_spec: dict | None = None
        self._activity_losses: list[Tensor] = []
        self._inbound_nodes: list[Node] = []  # one per call on symbolic tensors (a shared layer has several)

    # -- helpers ----------------------------------------------------------------------------------
    def _where(self) -> str:
        name = getattr(self, "name", None)
        return f"{type(self).__name__} {name!r}" if name else type(self).__name__

    def _shape_arg(self, arg, shape) -> tuple:
        if not isinstance(shape, (tuple, list)) or not all(s is None or validation.is_int(s) and s > 0
                                                           for s in shape):
            raise ValueError(f"{self._where()}: {arg} must be a tuple of positive ints (None allowed); got {shape!r}")
        return tuple(None if s is None else int(s) for s in shape)

    @property
    def trainable(self) -> bool:
        """Keras' flag: whether ``fit`` may update this layer's weights (see the module docstring)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value) -> None:
        self._trainable = validation.boolean(self._where(), "trainable", value)
        for _, t, _, _ in self._weights:
            t.requires_grad = self._trainable and id(t) not in self._frozen_weights

    def add_weight(self, name, shape, initializer="zeros", regularizer=None, constraint=None, trainable=True):
        """Create, initialise and register a weight Tensor; returns it. ``trainable=False`` freezes this weight
        for good; otherwise it follows ``layer.trainable``."""
        trainable = validation.boolean(self._where(), f"{name} trainable", trainable)
        init = initializers.get(initializer, self._where(), f"{name} initializer")
        value = np.asarray(init(tuple(shape), self.dtype), dtype=self.dtype)
        if value.shape != tuple(shape):
            raise ValueError(f"{self._where()}: initializer for {name} gave shape {value.shape}, expected {shape}")
        t = Tensor(value, requires_grad=trainable and self.trainable)
        if not trainable:
            self._frozen_weights.add(id(t))
        self._weights.append((name, t, regularizer, constraint))
        return t

    def _resolve(self, kind: str, arg: str, value):
        """Look up an initializer/regularizer/constraint/activation argument, naming this layer on error."""
        module = {"initializer": initializers, "regularizer": regularizers, "constraint": constraints,
                  "activation": activations}[kind]
        return module.get(value, self._where(), arg)

    # -- the protocol subclasses implement ----------------------------------------------------------
    def build(self, input_shape) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.input_spec = {"ndim": len(input_shape), "axes": {}}
        self.built = True

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def call(self, x: Tensor, training: bool = False) -> Tensor:
        raise NotImplementedError

    def receptive_field(self):
        """Per spatial axis ``(effective kernel, stride)`` for the summary; None if the layer does not move data
        between positions; ``"global"`` if one output sees the whole input."""
        return None

    # -- calling ---------------------------------------------------------------------------------------
    def check_input_shape(self, shape) -> None:
        """Raise a ValueError naming this layer if ``shape`` does not fit what it was built for."""
        spec = self.input_spec
        if spec is None:
            return
        shape = tuple(shape)
        built = getattr(self, "_build_shape", None)
        what = f" (built for {_fmt_shape(built)})" if built is not None else ""
        if spec.get("ndim") is not None and len(shape) != spec["ndim"]:
            raise ValueError(f"{self._where()}: expected an input of rank {spec['ndim']}{what}; got shape "
                             f"{_fmt_shape(shape)} (rank {len(shape)})")
        if spec.get("min_ndim") is not None and len(shape) < spec["min_ndim"]:
            raise ValueError(f"{self._where()}: expected an input of rank >= {spec['min_ndim']}; got shape "
                             f"{_fmt_shape(shape)}")
        for axis, size in spec.get("axes", {}).items():
            if shape[axis] != size:
                raise ValueError(f"{self._where()}: expected axis {axis} of the input to have size {size}{what}; "
                                 f"got shape {_fmt_shape(shape)}")

    def __call__(self, x, training: bool = False):
        """``layer(x)``: the output for the data ``x``; on a ``SymbolicTensor`` (from ``nn.Input`` or another
        layer's symbolic call), the symbolic output, recording the call as a node of a graph model."""
        if self.takes_list:
            if not isinstance(x, (list, tuple)):
                raise TypeError(f"{self._where()}: takes a list of inputs, layer([a, b, ...]); got "
                                f"{type(x).__name__}")
            if any(isinstance(t, SymbolicTensor) for t in x):
                return self._call_symbolic(list(x))
            x = [self._cast_input(as_tensor(t)) for t in x]
            with outermost_call((self,)):
                return self._run(x, [tuple(t.shape) for t in x], training)
        if isinstance(x, SymbolicTensor):
            return self._call_symbolic(x)
        x = as_tensor(x)
        if not isinstance(x, Tensor):
            raise TypeError(f"{self._where()}: input must be a Tensor or an array; got {type(x).__name__}")
        with outermost_call((self,)):
            return self._run(self._cast_input(x), tuple(x.shape), training)

    def _cast_input(self, x: Tensor) -> Tensor:
        """Keras' dtype policy: a floating input of another dtype is cast to the layer's ``dtype`` (differentiably:
        the gradient flows back in the input's own dtype); integer and bool inputs pass unchanged."""
        if x.dtype.kind == "f" and x.dtype != self.dtype:
            return ops.astype(x, self.dtype)
        return x

    def _run(self, x, shape, training):
        """Build on first use (for ``shape``, batch axis read as None), check the input, call, add the activity
        penalty of this call (inside ``outermost_call``)."""
        if not self.built:
            self.check_build_shape(shape)
            self._build_shape = _batchless(shape)
            self.build(self._build_shape)
        self.check_input_shape(shape)
        if observe.observers():  # anomaly mode, the profiler...: name this layer in the events
            with observe.in_layer(self._where()):
                out = self.call(x, training=bool(training))
        else:
            out = self.call(x, training=bool(training))
        if self.activity_regularizer is not None:
            penalty = self.activity_regularizer(out)
            if out.ndim > 0 and out.shape[0] > 0:
                penalty = penalty * (1.0 / out.shape[0])
            self._activity_losses.append(penalty)
        return out

    def _call_symbolic(self, x) -> SymbolicTensor:
        """Build for ``x``'s shape (or check it fits what the layer was built for) and record the node; ``x`` is
        one symbolic tensor, or a list of them for a merge layer."""
        inputs = x if isinstance(x, list) else [x]
        if not all(isinstance(t, SymbolicTensor) for t in inputs):
            raise TypeError(f"{self._where()}: a graph call takes symbolic tensors only; got "
                            f"{[type(t).__name__ for t in inputs]}")
        shape = [t.shape for t in inputs] if isinstance(x, list) else x.shape
        out = SymbolicTensor(self.build_from_shape(shape), self.dtype)
        Node(self, inputs, out)
        return out

    def _node(self, attr: str) -> Node:
        if len(self._inbound_nodes) != 1:
            state = "has never been called on a symbolic tensor" if not self._inbound_nodes else (
                f"was called {len(self._inbound_nodes)} times (a shared layer): read node.{attr} of the call you "
                f"mean, from layer.inbound_nodes")
            raise ValueError(f"{self._where()}: layer.{attr} is defined for a layer called once in a graph; it {state}")
        return self._inbound_nodes[0]

    @property
    def inbound_nodes(self) -> list[Node]:
        """The graph nodes of this layer, one per symbolic call."""
        return list(self._inbound_nodes)

    @property
    def output(self) -> SymbolicTensor:
        """The symbolic output of this layer's one call in a graph (for ``nn.Model(model.inputs, layer.output)``)."""
        return self._node("output").output

    @property
    def input(self) -> SymbolicTensor:
        """The symbolic input of this layer's one call in a graph."""
        node = self._node("input")
        return node.inputs[0] if node.inputs else node.output

    def check_build_shape(self, shape) -> None:
        """Hook: validate a shape before building (rank etc.)."""

    def build_from_shape(self, input_shape) -> tuple:
        """Build (if needed) for ``input_shape`` and return the output shape."""
        input_shape = _batchless(input_shape)
        if not self.built:
            self.check_build_shape(input_shape)
            self._build_shape = input_shape
            self.build(input_shape)
        else:
            self.check_input_shape(input_shape)
        return self.compute_output_shape(input_shape)

    # -- weights ------------------------------------------------------------------------------------
    @property
    def weights(self) -> list[Tensor]:
        """All weights in Keras order."""
        return [t for _, t, _, _ in self._weights]

    @property
    def weight_names(self) -> list[str]:
        return [n for n, _, _, _ in self._weights]

    @property
    def trainable_weights(self) -> list[Tensor]:
        """The weights an optimizer may update now (``requires_grad``), in Keras order."""
        return [t for t in self.weights if t.requires_grad]

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        """The frozen weights (the layer's flag is off, or they were added with ``trainable=False``)."""
        return [t for t in self.weights if not t.requires_grad]

    def parameters(self) -> list[Tensor]:
        return self.trainable_weights

    def count_params(self) -> int:
        return int(sum(t.size for t in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights as arrays, in Keras order."""
        return [t.data.copy() for t in self.weights]

    def set_weights(self, arrays) -> None:
        """Overwrite the weights (in place) from arrays in Keras order; every array is checked (count, shape, a
        real number dtype) and converted before the first weight changes."""
        arrays = list(arrays)
        if not self.built and arrays:
            raise ValueError(f"{self._where()}: set_weights on a layer that is not built (it has no weights yet); "
                             f"build it first: layer.build(input_shape), or call it on an input")
        if len(arrays) != len(self._weights):
            raise ValueError(f"{self._where()}: set_weights expects {len(self._weights)} arrays "
                             f"({', '.join(self.weight_names) or 'none'}); got {len(arrays)}")
        slots = [(f"{self._where()}: weight {wname!r}", t) for wname, t, _, _ in self._weights]
        assign_checked(slots, arrays)

    def apply_constraints(self) -> None:
        """Project every constrained weight in place (called after each optimizer step)."""
        for _, t, _, c in self._weights:
            if c is not None:
                t.copy_(c(t.data))

    @property
    def losses(self) -> list[Tensor]:
        """Weight regularization penalties (from the current weights) and the activity penalties of the last
        outermost call (one per call of this layer inside it)."""
        out = [reg(t) for _, t, reg, _ in self._weights if reg is not None]
        return out + list(self._activity_losses)

    # -- config ---------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """A JSON-able dict of the constructor arguments (Keras' keys)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


def assign_checked(slots, arrays) -> None:
    """Write ``arrays`` into the weights of ``slots`` (``(description, Tensor)`` pairs), all or nothing: each array
    must have its weight's shape and a real number dtype (bool, int or float: complex, object and string arrays are
    refused, as a cast would drop or fail on them) and is converted to the weight's dtype before the first write."""
    converted = []
    for (where, t), a in zip(slots, arrays, strict=True):
        a = np.asarray(a.data if isinstance(a, Tensor) else a)
        if a.shape != t.shape:
            raise ValueError(f"{where} has shape {t.shape}; got an array of shape {a.shape}")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{where} holds {t.dtype} numbers; got an array of dtype {a.dtype}")
        converted.append(a.astype(t.dtype, copy=False))
    for (_, t), a in zip(slots, converted, strict=True):
        t.copy_(a)  # an in-place write: bumps the version that backward checks


def _batchless(shape):
    """``shape`` with the batch axis read as None (each shape of a list of them, for a merge layer)."""
    if isinstance(shape, list):
        return [_batchless(s) for s in shape]
    return (None,) + tuple(shape[1:])


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + (",)" if len(shape) == 1 else ")")

