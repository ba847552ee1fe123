"""``Lambda(function, output_shape=None, arguments=None)``: an engine function as a layer (Keras' ``Lambda``).

``y = function(x, **arguments)``; the gradient is whatever the engine records for ``function`` (it must be
built from engine ops, e.g. ``tinygrad_cnn.functional``). The output shape is ``output_shape`` (a tuple without
the batch axis, or a callable of the input shape) or, if not given, found by running ``function`` once on
zeros of the input's shape (unknown sizes read as 1).

Serialisation: a function of ``tinygrad_cnn.functional`` is stored by name, ``{"module":
"tinygrad_cnn.functional", "class_name": "function", "config": "<name>"}`` (Keras' layout for a registered
function), so ``get_config``/``from_config``, checkpoints and the JAX twin (``jax_ref.ops`` has the same name)
work. Any other callable (a Python lambda, a closure) runs, but ``get_config`` raises a ``ValueError`` saying
why and what to do instead: Keras would store its bytecode, which is neither portable nor safe to load.
"""

from __future__ import annotations

import numpy as np

from tinygrad_cnn import functional as F
from tinygrad_cnn import validation
from tinygrad_cnn.modes import no_grad
from tinygrad_cnn.nn.layer import Layer
from tinygrad_cnn.tensor import Tensor

__all__ = ["Lambda"]

_MODULE = "tinygrad_cnn.functional"


def functional_name(function) -> str | None:
    """The name under which ``function`` is found in ``tinygrad_cnn.functional``'s public API, else None."""
    name = getattr(function, "__name__", None)
    return name if name in F.__all__ and getattr(F, name) is function else None


class Lambda(Layer):
    """``y = function(x, **arguments)`` (see the module docstring).

    Args:
        function: callable ``(x, **arguments) -> Tensor`` of engine ops (its gradient comes from them).
        output_shape: None (default: inferred by a trial call), a shape without the batch axis, or a callable
            ``input_shape -> output_shape``.
        mask: None (default); masking is not supported.
        arguments: dict of extra keyword arguments passed to ``function``, default None.
        **kwargs: the base ``Layer`` arguments.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        w = self._where()
        if isinstance(function, dict):
            function = _function_from_config(w, function)
        if not callable(function):
            raise TypeError(f"{w}: function must be callable (an engine function such as F.relu); got {function!r}")
        if mask is not None:
            raise ValueError(f"{w}: masking is not supported (the engine has no masks); got mask={mask!r}")
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"{w}: arguments must be a dict of keyword arguments or None; got {arguments!r}")
        if output_shape is not None and not callable(output_shape):
            if not isinstance(output_shape, (tuple, list)) or not all(
                    s is None or validation.is_int(s) and s > 0 for s in output_shape):
                raise ValueError(f"{w}: output_shape must be None, a callable or a tuple of positive ints (batch "
                                 f"axis excluded); got {output_shape!r}")
            output_shape = tuple(output_shape)
        self.function, self.output_shape_arg, self.arguments = function, output_shape, dict(arguments or {})

    def build(self, input_shape):
        self.input_spec = None  # the function decides which inputs it takes
        self.built = True

    def compute_output_shape(self, input_shape):
        if callable(self.output_shape_arg):
            return tuple(self.output_shape_arg(tuple(input_shape)))
        if self.output_shape_arg is not None:
            return (input_shape[0], *self.output_shape_arg)
        probe = np.zeros([1 if s is None else s for s in input_shape], self.dtype)
        with no_grad():
            out = self.function(Tensor(probe), **self.arguments)
        if not isinstance(out, Tensor):
            raise TypeError(f"{self._where()}: function must return a Tensor; got {type(out).__name__}")
        return (input_shape[0], *out.shape[1:])

    def call(self, x, training=False):
        return self.function(x, **self.arguments)

    def get_config(self):
        name = functional_name(self.function)
        if name is None:
            raise ValueError(
                f"{self._where()}: function {getattr(self.function, '__name__', self.function)!r} is not a function "
                f"of tinygrad_cnn.functional, so it cannot be serialised (Keras would store its bytecode); use an "
                f"F function (with arguments=...), or write a Layer subclass and register it with "
                f"nn.register_serializable")
        shape = self.output_shape_arg
        if callable(shape):
            raise ValueError(f"{self._where()}: a callable output_shape cannot be serialised; give a tuple or None")
        return {**super().get_config(), "function": {"module": _MODULE, "class_name": "function", "config": name},
                "output_shape": None if shape is None else list(shape), "arguments": dict(self.arguments)}


def _function_from_config(where: str, config: dict):
    """The ``tinygrad_cnn.functional`` function a config names (see the module docstring)."""
    name = config.get("config")
    if config.get("module") != _MODULE or not isinstance(name, str) or name not in F.__all__:
        raise ValueError(f"{where}: function config {config!r} must name a function of {_MODULE} "
                         f"({{'module': '{_MODULE}', 'class_name': 'function', 'config': '<name>'}})")
    return getattr(F, name)
