"""Optimizers with optax' hyperparameter names and update rules, applied in place to ``p.data``.

With g the gradient, t the step count (1 for the first step) and lr the
learning rate (a number, or a schedule ``lr(count)`` of the steps taken so far,
as optax), each step computes an update u and sets ``p <- p - lr * u``:

- ``SGD``: u = g; with momentum m: tr <- g + m tr, u = tr (nesterov: u = g + m tr)  (optax.sgd = trace)
- ``Adam``: mu <- (1 - b1) g + b1 mu, nu <- (1 - b2) g^2 + b2 nu,
  u = (mu / (1 - b1^t)) / (sqrt(nu / (1 - b2^t)) + eps)                            (optax.scale_by_adam)
- ``AdamW``: the Adam update plus decoupled decay, u = u_adam + weight_decay * p  (optax.add_decayed_weights)
- ``RMSprop``: nu <- (1 - decay) g^2 + decay nu (nu starts at 0), u = g / sqrt(nu + eps)  (optax.scale_by_rms:
  eps *inside* the square root)

State and arithmetic stay in each parameter's dtype (float32 for training).
A parameter whose ``.grad`` is None is updated with a zero gradient, as optax
does for a zero cotangent (so momentum and AdamW's decay still move it).
Every parameter must have ``requires_grad=True``: a frozen tensor (a layer
built with ``trainable=False``) is refused with a ValueError naming its index
and shape, at construction and at ``step()`` (if it was frozen in between),
rather than silently moved by momentum or weight decay. ``model.parameters()``
lists only the trainable weights, so passing it is always right.
Constraints are the model's business:
``Sequential.fit`` projects the constrained weights after every ``step()``.

``OPTIMIZERS`` is the one table of names, optax' function names (``"sgd"``,
``"adam"``, ``"adamw"``, ``"rmsprop"``): ``compile(optimizer="adam")`` builds
``OPTIMIZERS["adam"](params)`` (every class' default learning rate is Keras'),
and the twin maps each name to ``optax.<name>``.

Every optimizer also takes, keyword-only, ``global_clipnorm`` (Keras' name): the gradients are first scaled by
``min(1, global_clipnorm / ||g||)``, ``||g||`` the norm of all of them together, exactly
``optax.chain(optax.clip_by_global_norm(global_clipnorm), optax.<name>(...))``. ``learning_rate`` may be a
schedule (``optim.schedules``, or any ``count -> rate``); a rate that is negative or not finite is refused
when the schedule gives it, before anything moves. ``AdamW(mask=...)`` is optax' ``mask``: which parameters
are decayed (a list of bools, one per parameter, or a callable ``params -> list of bools``).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn import observe, validation
from tinygrad_cnn.optim import schedules
from tinygrad_cnn.tensor import Tensor

__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "check_learning_rate", "clip_by_global_norm",
           "get", "schedules"]


def clip_by_global_norm(grads: list, max_norm: float) -> list:
    """optax.clip_by_global_norm on a list of arrays: ``n = sqrt(sum_i sum(g_i ** 2))``; every ``g_i`` is returned
    unchanged if ``n < max_norm``, else as ``(g_i / n) * max_norm`` (in its own dtype).

    Args:
        grads: list of NumPy arrays.
        max_norm: positive float.

    Returns:
        The list of (possibly scaled) arrays.
    """
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
    if norm < max_norm:
        return grads
    return [(g / g.dtype.type(norm)) * g.dtype.type(max_norm) for g in grads]


def check_learning_rate(where: str, value):
    """``value`` if it is a schedule (a callable ``count -> rate``, checked at each step) or a finite number >= 0
    (as a float), else raise: the one check of every optimizer's ``learning_rate`` and of the JAX twin's."""
    if callable(value):
        return value
    return validation.number_in(where, "learning_rate", value, 0.0, float("inf"), high_open=True)


class Optimizer:
    """Base class: holds the parameters and the step count; ``step()`` updates every parameter from its ``.grad``.

    A subclass defines the update u (``_update``); ``step()`` sets ``p <- p - lr(count) * u`` in place and
    then ``count += 1``. ``zero_grad()`` clears the gradients (``backward`` accumulates into ``.grad``).

    Args:
        params: the Tensors to update, e.g. ``model.parameters()`` (a list; one Tensor is accepted), each with
            ``requires_grad=True``.
        learning_rate: number >= 0 or a schedule ``count -> rate`` (``optim.schedules``), default set by the subclass.
        global_clipnorm: float or None (default): first scale all gradients by
            ``min(1, global_clipnorm / ||g||)`` (optax.clip_by_global_norm).
    Raises:
        TypeError: ``params`` not a list of Tensors (e.g. the model itself).
        ValueError: a hyperparameter out of range (named in the message), or a frozen parameter.
    """

    def __init__(self, params, learning_rate, global_clipnorm=None):
        cls = type(self).__name__
        if isinstance(params, Tensor):
            params = [params]
        if not isinstance(params, (list, tuple, dict)) and hasattr(params, "parameters"):
            raise TypeError(f"{cls}: params must be a list of Tensors; got a {type(params).__name__}: pass "
                            f"model.parameters()")
        try:
            params = list(params)
        except TypeError as exc:
            raise TypeError(f"{cls}: params must be a list of Tensors; got {type(params).__name__}") from exc
        if not params:
            raise ValueError(f"{cls}: params is empty; pass model.parameters() (build the model first)")
        seen = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{cls}: params[{i}] must be a Tensor; got {type(p).__name__}")
            if not np.issubdtype(p.dtype, np.floating):
                raise TypeError(f"{cls}: params[{i}] must have a floating dtype; got {p.dtype}")
            if id(p) in seen:
                raise ValueError(f"{cls}: params[{i}] appears twice in params")
            seen.add(id(p))
        self._check_trainable(cls, params)
        self.params = params
        self.learning_rate = learning_rate
        self.global_clipnorm = (None if global_clipnorm is None else
                                validation.number_in(cls, "global_clipnorm", global_clipnorm, 0.0, float("inf"),
                                                     high_open=True))
        self.count = 0
        self.state: list[dict] = [self._init_state(p) for p in params]

    @staticmethod
    def _check_trainable(where: str, params) -> None:
        for i, p in enumerate(params):
            if not p.requires_grad:
                raise ValueError(f"{where}: params[{i}] (shape {p.shape}) has requires_grad=False; an optimizer "
                                 f"updates only trainable tensors: pass model.parameters() (frozen layers are left "
                                 f"out) or build the optimizer without it")

    def _init_state(self, p: Tensor) -> dict:
        return {}

    @property
    def learning_rate(self):
        """A number >= 0 or a schedule ``count -> rate`` (settable: callbacks change it between epochs)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        self._learning_rate = check_learning_rate(type(self).__name__, value)

    def _lr(self) -> float:
        lr = self.learning_rate
        if not callable(lr):
            return lr
        value = lr(self.count)
        try:
            rate = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{type(self).__name__}.step: the learning_rate schedule {lr!r} gave {value!r} at step "
                            f"{self.count}; expected a number") from exc
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"{type(self).__name__}.step: the learning_rate schedule {lr!r} gave {rate} at step "
                             f"{self.count}; a learning rate must be a finite number >= 0 (no weight was changed)")
        return rate

    def zero_grad(self) -> None:
        """Forget every parameter's gradient."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter (in place) and advance the step count."""
        lr = self._lr()
        self._check_trainable(f"{type(self).__name__}.step", self.params)
        for i, p in enumerate(self.params):
            if p.grad is not None and np.shape(p.grad) != p.shape:
                raise ValueError(f"{type(self).__name__}.step: params[{i}] has shape {p.shape} but its .grad has "
                                 f"shape {np.shape(p.grad)}")
        grads = [np.zeros_like(p.data) if p.grad is None else np.asarray(p.grad, dtype=p.dtype) for p in self.params]
        if self.global_clipnorm is not None:
            grads = clip_by_global_norm(grads, self.global_clipnorm)
        active = observe.observers()
        for i, (p, g, state) in enumerate(zip(self.params, grads, self.state, strict=True)):
            u = self._decay(i, p.data, self._update(p.data, g, state))
            u *= p.dtype.type(-lr)
            if active:  # anomaly mode checks the new value before it is written
                observe.send_update(active, self, i, p, g, p.data + u, lr)
            p.data += u
        self.count += 1

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict) -> np.ndarray:
        raise NotImplementedError

    def _decay(self, index: int, p: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The update after decoupled weight decay (none here; AdamW adds it)."""
        return u

    def _check(self, arg, value, low=0.0, high=float("inf"), high_open=False) -> float:
        """``value`` in ``[low, high]`` (``high`` excluded when ``high_open`` or infinite: no hyperparameter may be
        inf)."""
        return validation.number_in(type(self).__name__, arg, value, low, high,
                                    high_open=high_open or high == float("inf"))


class SGD(Optimizer):
    """Stochastic gradient descent, as ``optax.sgd(learning_rate, momentum, nesterov)``.

    u = g; with momentum m: ``tr <- g + m tr``, u = tr (nesterov: u = g + m tr); ``p <- p - lr u``.

    Example::

        opt = optim.SGD(model.parameters(), learning_rate=0.1)
        loss.backward(); opt.step(); opt.zero_grad()

    Args:
        params: the Tensors to update, e.g. ``model.parameters()`` (a list; one Tensor is accepted), each with
            ``requires_grad=True``.
        learning_rate: number >= 0 or a schedule ``count -> rate`` (``optim.schedules``), default 0.01 (Keras').
        momentum: float in [0, 1] or None (default, no momentum).
        nesterov: bool, default False.
        global_clipnorm: keyword-only, float or None (default): first scale all gradients by
            ``min(1, global_clipnorm / ||g||)`` (optax.clip_by_global_norm).
    Raises:
        TypeError: ``params`` not a list of Tensors (e.g. the model itself).
        ValueError: a hyperparameter out of range (named in the message), or a frozen parameter.
    """

    def __init__(self, params, learning_rate=0.01, momentum=None, nesterov=False, *, global_clipnorm=None):
        self.momentum = None if momentum is None else validation.number_in("SGD", "momentum", momentum, 0.0, 1.0)
        self.nesterov = validation.boolean("SGD", "nesterov", nesterov)
        super().__init__(params, learning_rate, global_clipnorm)

    def _init_state(self, p):
        return {} if self.momentum is None else {"trace": np.zeros_like(p.data)}

    def _update(self, p, g, state):
        if self.momentum is None:
            return g.copy()
        m = p.dtype.type(self.momentum)
        tr = state["trace"]
        tr *= m
        tr += g
        return g + m * tr if self.nesterov else tr.copy()


class Adam(Optimizer):
    """Adam, as ``optax.adam(learning_rate, b1, b2, eps)``.

    ``mu <- b1 mu + (1 - b1) g``, ``nu <- b2 nu + (1 - b2) g^2``,
    ``u = (mu / (1 - b1^t)) / (sqrt(nu / (1 - b2^t)) + eps)``, ``p <- p - lr u`` (t = 1 at the first step).

    Example::

        opt = optim.Adam(model.parameters(), learning_rate=1e-3)
        loss.backward(); opt.step(); opt.zero_grad()

    Args:
        params: the Tensors to update, e.g. ``model.parameters()`` (a list; one Tensor is accepted), each with
            ``requires_grad=True``.
        learning_rate: number >= 0 or a schedule ``count -> rate`` (``optim.schedules``), default 1e-3.
        b1: float in [0, 1), default 0.9: the first moment's decay.
        b2: float in [0, 1), default 0.999: the second moment's decay.
        eps: float >= 0, default 1e-8, added to sqrt(nu_hat).
        global_clipnorm: keyword-only, float or None (default): first scale all gradients by
            ``min(1, global_clipnorm / ||g||)`` (optax.clip_by_global_norm).
    Raises:
        TypeError: ``params`` not a list of Tensors (e.g. the model itself).
        ValueError: a hyperparameter out of range (named in the message), or a frozen parameter.
    """

    def __init__(self, params, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, *, global_clipnorm=None):
        self.b1 = self._check("b1", b1, 0.0, 1.0, high_open=True)
        self.b2 = self._check("b2", b2, 0.0, 1.0, high_open=True)
        self.eps = self._check("eps", eps)
        super().__init__(params, learning_rate, global_clipnorm)

    def _init_state(self, p):
        return {"mu": np.zeros_like(p.data), "nu": np.zeros_like(p.data)}

    def _update(self, p, g, state):
        f = p.dtype.type
        t = self.count + 1
        mu, nu = state["mu"], state["nu"]
        mu *= f(self.b1)
        mu += f(1 - self.b1) * g
        nu *= f(self.b2)
        nu += f(1 - self.b2) * (g * g)
        mu_hat = mu / (f(1) - f(self.b1) ** t)
        nu_hat = nu / (f(1) - f(self.b2) ** t)
        return mu_hat / (np.sqrt(nu_hat) + f(self.eps))


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``optax.adamw``: ``p <- p - lr (u_adam + weight_decay p)``.

    ``mask`` (optax') picks the parameters that are decayed: None (all), a list of bools (one per parameter)
    or a callable ``params -> list of bools`` (called on the parameter list at every step, as optax calls it
    on the params).

    Args:
        params: the Tensors to update, e.g. ``model.parameters()`` (a list; one Tensor is accepted), each with
            ``requires_grad=True``.
        learning_rate: number >= 0 or a schedule ``count -> rate`` (``optim.schedules``), default 1e-3.
        b1, b2, eps: as :class:`Adam` (defaults 0.9, 0.999, 1e-8).
        weight_decay: float >= 0, default 1e-4 (optax').
        mask: None (default), a list of bools, or a callable ``params -> list of bools``.
        global_clipnorm: keyword-only, float or None (default): first scale all gradients by
            ``min(1, global_clipnorm / ||g||)`` (optax.clip_by_global_norm).

    Raises:
        TypeError: ``mask`` of the wrong kind, or ``params`` not a list of Tensors.
        ValueError: a hyperparameter out of range, or a mask not giving one bool per parameter.
    """

    def __init__(self, params, learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, mask=None, *,
                 global_clipnorm=None):
        self.weight_decay = validation.number_in("AdamW", "weight_decay", weight_decay, 0.0, float("inf"),
                                                 high_open=True)
        if not (mask is None or callable(mask) or isinstance(mask, (list, tuple))):
            raise TypeError(f"AdamW: mask must be None, a list of bools (one per parameter) or a callable params -> "
                            f"list of bools; got {mask!r}")
        self.mask = mask
        super().__init__(params, learning_rate, b1, b2, eps, global_clipnorm=global_clipnorm)
        self._decayed("AdamW")  # a bad mask is refused at construction

    def _decayed(self, where: str) -> list[bool]:
        if self.mask is None:
            return [True] * len(self.params)
        flags = self.mask(self.params) if callable(self.mask) else self.mask
        flags = list(flags) if isinstance(flags, (list, tuple, np.ndarray)) else flags
        if (not isinstance(flags, list) or len(flags) != len(self.params)
                or not all(isinstance(f, (bool, np.bool_)) for f in flags)):
            raise ValueError(f"{where}: mask must give one bool per parameter ({len(self.params)}); got {flags!r}")
        return [bool(f) for f in flags]

    def step(self) -> None:
        """Apply one AdamW update to every parameter (the mask is evaluated first) and advance the step count."""
        self._decay_flags = self._decayed("AdamW.step")
        super().step()

    def _decay(self, index, p, u):
        if self.weight_decay and self._decay_flags[index]:
            u += p.dtype.type(self.weight_decay) * p
        return u


class RMSprop(Optimizer):
    """RMSprop, as ``optax.rmsprop(learning_rate, decay, eps)``.

    ``nu <- decay nu + (1 - decay) g^2`` (nu starting at 0), ``u = g / sqrt(nu + eps)`` (eps inside the root,
    as optax), ``p <- p - lr u``.

    Args:
        params: the Tensors to update, e.g. ``model.parameters()`` (a list; one Tensor is accepted), each with
            ``requires_grad=True``.
        learning_rate: number >= 0 or a schedule ``count -> rate`` (``optim.schedules``),
            default 1e-3 (Keras'; optax has no default).
        decay: float in [0, 1], default 0.9.
        eps: float >= 0, default 1e-8.
        global_clipnorm: keyword-only, float or None (default): first scale all gradients by
            ``min(1, global_clipnorm / ||g||)`` (optax.clip_by_global_norm).
    Raises:
        TypeError: ``params`` not a list of Tensors (e.g. the model itself).
        ValueError: a hyperparameter out of range (named in the message), or a frozen parameter.
    """

    def __init__(self, params, learning_rate=1e-3, decay=0.9, eps=1e-8, *, global_clipnorm=None):
        self.decay = self._check("decay", decay, 0.0, 1.0)
        self.eps = self._check("eps", eps)
        super().__init__(params, learning_rate, global_clipnorm)

    def _init_state(self, p):
        return {"nu": np.zeros_like(p.data)}

    def _update(self, p, g, state):
        f = p.dtype.type
        nu = state["nu"]
        nu *= f(self.decay)
        nu += f(1 - self.decay) * (g * g)
        return g / np.sqrt(nu + f(self.eps))


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def get(name, where: str = "optim.get", arg: str = "optimizer") -> type:
    """The optimizer class of ``OPTIMIZERS`` for ``name`` (any case).

    Args:
        name: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
        where, arg: the caller and argument named in the error message.

    Returns:
        The class, e.g. ``optim.get("adam") is optim.Adam``.

    Raises:
        ValueError: an unknown name (with a did-you-mean suggestion).
    """
    return OPTIMIZERS[validation.choice(where, arg, name, tuple(OPTIMIZERS))]
