"""JAX's function transforms on the engine: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``linearize``,
``jacrev``/``jacobian``, ``jacfwd``, ``hessian``, ``hvp``, with JAX's names and calling conventions.

``f`` takes Tensors (arrays and numbers are accepted and become Tensors by ``Tensor``'s rules) and returns a
Tensor or a pytree (tuple/list/dict, ``tinygrad_cnn.pytree``) of them; every argument may be a pytree too.
Each call runs ``f`` once on fresh graph inputs and differentiates the recorded graph:

* reverse mode, ``vjp``: ``ct -> ct . df/dx`` is one backward pass (``tinygrad_cnn.grad`` with the cotangents);
* forward mode, ``jvp``, by the double-vjp construction: every primitive's vjp is written with Tensor ops, so
  ``u -> g(u) = u . df/dx`` recorded with ``create_graph=True`` is a graph *linear in u*, and its own vjp,
  evaluated at the tangent ``t``, is ``d<t, g(u)>/du = (df/dx) t``: the exact jvp (no finite step). Cost: one
  forward, one recorded backward pass and one backward pass of that backward pass: about 2x ``value_and_grad``,
  6 forwards (measured on conv/softplus/max-pool/dense/cross-entropy, batch 16: forward 23 ms,
  ``value_and_grad`` 76 ms, ``jvp`` 139 ms; JAX's true forward mode costs about 2 forwards); ``linearize``
  keeps the recorded ``g`` so each further tangent costs one backward pass of it.

Transforms nest (``hessian = jacrev(jacrev(f))``, ``jvp`` of ``grad``, ...): a transform that runs inside an
enclosing transform's ``f`` and whose graph reaches that transform's inputs (through its arguments or through
Tensors ``f`` closes over) records its backward pass, so its results stay differentiable for the enclosing one.
Otherwise (at top level, as in JAX) its results are constants and the graph is released: a parameter that
requires a gradient is not differentiated through a transform's results (use ``grad(output, inputs,
create_graph=True)`` or an enclosing transform for that), which keeps a training step free of a recorded
backward pass. An argument is differentiated only through its argument slot (a fresh node), never through other
uses of the same Tensor (no perturbation confusion).
"""

from __future__ import annotations

import threading

import numpy as np

from tinygrad_cnn import autograd
from tinygrad_cnn.function import Function
from tinygrad_cnn.modes import enable_grad, is_grad_enabled
from tinygrad_cnn.ops.movement import stack
from tinygrad_cnn.pytree import tree_flatten, tree_map, tree_unflatten
from tinygrad_cnn.tensor import Tensor, as_tensor

__all__ = ["grad", "hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jvp", "linearize", "value_and_grad", "vjp"]


class _Running(threading.local):
    """The inputs (ids) of the transforms whose ``f`` is running in this thread, outermost first."""

    def __init__(self):
        self.inputs: list[set] = []


_RUNNING = _Running()


class _ArgumentSlot(Function):
    """y = x: the node through which a transform differentiates one argument.   vjp: g."""

    @staticmethod
    def forward(ctx, x):
        return x.view()

    @staticmethod
    def vjp(ctx, g):
        return (g,)


# -- running f on fresh inputs ---------------------------------------------------------------------------------
def _fresh(fn: str, where: str, value) -> Tensor:
    """A graph input holding ``value``: a new node after ``value`` if it requires a gradient (so an outer graph
    sees through it), else a new leaf that requires one."""
    if isinstance(value, Tensor) and value.requires_grad:
        return _ArgumentSlot.apply(value)
    t = value if isinstance(value, Tensor) else Tensor(value)
    if not np.issubdtype(t.dtype, np.floating):
        raise TypeError(f"{fn}: {where} has dtype {t.dtype}; differentiation needs floating inputs (pass labels "
                        f"and indices as arguments outside argnums)")
    return Tensor(t.data, requires_grad=True)


def _callable(fn: str, f) -> None:
    if not callable(f) or isinstance(f, Tensor):
        raise TypeError(f"{fn}: f must be a callable (a function of Tensors); got {type(f).__name__}")


def _argnums(fn: str, argnums, nargs: int) -> tuple[tuple, bool]:
    """``(positions, as_tuple)`` from JAX's ``argnums`` (an int or a sequence of ints) for ``nargs`` arguments."""
    as_tuple = not isinstance(argnums, (int, np.integer))
    nums = tuple(argnums) if as_tuple else (argnums,)
    if as_tuple and not nums:
        raise ValueError(f"{fn}: argnums is an empty sequence; name at least one argument to differentiate")
    for a in nums:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -nargs <= a < nargs:
            raise ValueError(f"{fn}: argnums={argnums!r} is out of range for a function called with {nargs} "
                             f"positional arguments (expected ints in [-{nargs}, {nargs}))")
    return tuple(int(a) % nargs for a in nums), as_tuple


class _Traced:
    """``f`` run once with the arguments at ``positions`` replaced by fresh graph inputs.

    ``inputs``: the fresh Tensors, flat; ``in_defs``: each position's pytree structure; ``out``/``out_leaves``/
    ``out_def``: the output; ``aux``: the auxiliary output (``has_aux``); ``outer``: whether the results must stay
    differentiable (an enclosing transform's inputs are in ``f``'s graph).
    """

    def __init__(self, fn: str, f, args, kwargs, positions, has_aux: bool):
        _callable(fn, f)
        grad_on = is_grad_enabled()
        args = list(args)
        self.inputs, self.in_defs = [], []
        with enable_grad():
            for p in positions:
                leaves, treedef = tree_flatten(args[p])
                fresh = [_fresh(fn, f"argument {p}" + (f" leaf {i}" if len(leaves) > 1 else ""), v)
                         for i, v in enumerate(leaves)]
                self.inputs.extend(fresh)
                self.in_defs.append(treedef)
                args[p] = tree_unflatten(treedef, fresh)
            _RUNNING.inputs.append({id(t) for t in self.inputs})
            try:
                result = f(*args, **kwargs)
            finally:
                _RUNNING.inputs.pop()
        if has_aux:
            if not (isinstance(result, (tuple, list)) and len(result) == 2):
                raise TypeError(f"{fn}: has_aux=True requires f to return a pair (output, aux); got "
                                f"{type(result).__name__}" + (f" of length {len(result)}"
                                                               if isinstance(result, (tuple, list)) else ""))
            result, self.aux = result
        else:
            self.aux = None
        leaves, self.out_def = tree_flatten(result)
        self.out_leaves = [as_tensor(v) for v in leaves]
        for i, t in enumerate(self.out_leaves):
            if not np.issubdtype(t.dtype, np.floating):
                raise TypeError(f"{fn}: f's output leaf {i} has dtype {t.dtype}; only floating outputs can be "
                                f"differentiated")
        enclosing = set().union(*_RUNNING.inputs)
        live = [t for t in self.out_leaves if t.requires_grad]
        self.outer = bool(grad_on and enclosing and live) and any(
            id(n) in enclosing for n in autograd.graph_order(live, caller=fn))
        if not self.outer:  # nothing outside needs a graph: the outputs the caller sees are constants
            self.out_results = [t.detach() for t in self.out_leaves]
        else:
            self.out_results = self.out_leaves

    def output(self):
        return tree_unflatten(self.out_def, self.out_results)

    def aux_output(self):
        return self.aux if self.outer else tree_map(lambda v: v.detach() if isinstance(v, Tensor) else v, self.aux)

    def split(self, flat: list) -> list:
        """``flat`` (one entry per input) regrouped into one pytree per differentiated position."""
        out, start = [], 0
        for treedef in self.in_defs:
            n = treedef.num_leaves
            out.append(tree_unflatten(treedef, flat[start:start + n]))
            start += n
        return out

    def vjp(self, cotangents: list, create_graph: bool, retain_graph: bool) -> list:
        """``sum_j ct_j . d out_j / d inputs`` (one Tensor per input)."""
        return autograd.grad(self.out_leaves, self.inputs, cotangents, create_graph=create_graph,
                             retain_graph=retain_graph)


def _cotangents(fn: str, what: str, tree, leaves: list[Tensor], treedef) -> list[Tensor]:
    """``tree``'s leaves as Tensors, checked against the structure ``treedef`` and the shapes of ``leaves``."""
    given, given_def = tree_flatten(tree)
    if given_def != treedef:
        raise ValueError(f"{fn}: {what} has structure {given_def} but must have structure {treedef}")
    out = []
    for i, (v, ref) in enumerate(zip(given, leaves, strict=True)):
        t = v if isinstance(v, Tensor) else Tensor._from_op(np.asarray(v, dtype=ref.dtype), None)
        if t.shape != ref.shape:
            raise ValueError(f"{fn}: {what} leaf {i} has shape {t.shape} but must have shape {ref.shape}")
        out.append(t)
    return out


# -- reverse mode ----------------------------------------------------------------------------------------------
def value_and_grad(f, argnums=0, has_aux: bool = False):
    """``f -> g`` with ``g(*args) = (f(*args), df/d args[argnums])`` (``((value, aux), grads)`` with ``has_aux``).

    ``f`` must return a one-element Tensor (a scalar); ``argnums`` is an int (the gradient is shaped like that
    argument, a pytree like it) or a tuple of ints (a tuple of gradients). One forward and one backward pass.

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops. It must return a scalar.
        argnums: int or tuple of ints, default 0: which positional arguments to differentiate.
        has_aux: bool, default False: ``f`` returns ``(output, aux)`` and aux is passed through undifferentiated.

    Returns:
        The function ``g``.

    Raises:
        TypeError: ``f`` not callable, or (when ``g`` is called) an output that is not a scalar.
    """

    _callable("value_and_grad", f)

    def value_and_grad_f(*args, **kwargs):
        positions, as_tuple = _argnums("value_and_grad", argnums, len(args))
        traced = _Traced("value_and_grad", f, args, kwargs, positions, has_aux)
        if traced.out_def.kind != "leaf" or traced.out_leaves[0].size != 1:
            shapes = [t.shape for t in traced.out_leaves]
            raise TypeError(f"value_and_grad: gradients are defined only for functions with one scalar output; "
                            f"f returned {traced.out_def} with shapes {shapes} (use vjp or jacrev for others)")
        grads = traced.vjp([None], create_graph=traced.outer, retain_graph=traced.outer)
        grouped = traced.split(grads)
        value = traced.output()
        value = (value, traced.aux_output()) if has_aux else value
        return value, tuple(grouped) if as_tuple else grouped[0]

    return value_and_grad_f


def _grad_transform(f, argnums=0, has_aux: bool = False):
    """JAX's ``grad(f, argnums=0, has_aux=False)``: ``value_and_grad`` without the value (see there)."""
    vg = value_and_grad(f, argnums, has_aux)

    def grad_f(*args, **kwargs):
        value, grads = vg(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return grad_f


def grad(*args, **kwargs):
    """Two functions by one name, told apart by the first argument (a Tensor is never callable):

    * ``grad(f, argnums=0, has_aux=False)`` with ``f`` callable: JAX's transform, the gradient function of ``f``;
    * ``grad(output, inputs, grad_output=None, create_graph=False, retain_graph=None)`` with Tensors: the
      gradients as ``torch.autograd.grad`` gives them (``tinygrad_cnn.autograd.grad``).
    """
    first = args[0] if args else kwargs.get("f", kwargs.get("output"))
    if callable(first) and not isinstance(first, Tensor):
        return _grad_transform(*args, **kwargs)
    return autograd.grad(*args, **kwargs)


def vjp(f, *primals, has_aux: bool = False):
    """``(f(*primals), vjp_fn)`` (``(out, vjp_fn, aux)`` with ``has_aux``), as ``jax.vjp``.

    ``vjp_fn(ct)`` takes a cotangent with the structure and shapes of ``f``'s output and returns a tuple with one
    cotangent per primal, ``ct . df/dprimal_i``; it can be called any number of times (the graph is kept while
    ``vjp_fn`` lives). One forward pass, then one backward pass per call.

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops.
        *primals: the point to differentiate at, one value per argument of ``f``.
        has_aux: bool, default False: ``f`` returns ``(output, aux)``.
    """
    traced = _Traced("vjp", f, primals, {}, tuple(range(len(primals))), has_aux)

    def vjp_fn(ct):
        cts = _cotangents("vjp_fn", "the cotangent", ct, traced.out_leaves, traced.out_def)
        return tuple(traced.split(traced.vjp(cts, create_graph=traced.outer, retain_graph=True)))

    out = traced.output()
    return (out, vjp_fn, traced.aux_output()) if has_aux else (out, vjp_fn)


# -- forward mode ----------------------------------------------------------------------------------------------
class _Linear:
    """The recorded ``g(u) = u . df/dx`` of a traced ``f`` (u: one zero cotangent leaf per output): its vjp at a
    tangent t is the jvp ``(df/dx) t`` (the double-vjp construction, see the module docstring)."""

    def __init__(self, traced: _Traced):
        self.traced = traced
        self.dummies = [Tensor(np.zeros(t.shape, t.dtype), requires_grad=True) for t in traced.out_leaves]
        self.g = traced.vjp(self.dummies, create_graph=True, retain_graph=True)

    def jvp(self, tangents: list, inputs=None, retain_graph: bool = True) -> list:
        """``(df/dx) t`` per output for ``tangents`` (one per input, or for the inputs at ``inputs`` only)."""
        idx = range(len(self.g)) if inputs is None else inputs
        return autograd.grad([self.g[i] for i in idx], self.dummies, list(tangents),
                             create_graph=self.traced.outer, retain_graph=retain_graph)


def _tangents(fn: str, primals, tangents):
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"{fn}: primals and tangents must be tuples or lists (one entry per argument of f); got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"{fn}: {len(primals)} primals but {len(tangents)} tangents; give one tangent per primal")


def jvp(f, primals, tangents, has_aux: bool = False):
    """``(f(*primals), (df/dprimals) tangents)`` (``(out, tangent_out, aux)`` with ``has_aux``), as ``jax.jvp``.

    ``tangents`` has the structure and shapes of ``primals``; ``tangent_out`` those of the output. Exact (the
    double-vjp construction; its cost is in the module docstring).

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops.
        primals: tuple, the point (one value per argument of ``f``).
        tangents: tuple, the direction, structured and shaped like ``primals``.
        has_aux: bool, default False: ``f`` returns ``(output, aux)``.
    """
    _tangents("jvp", primals, tangents)
    traced = _Traced("jvp", f, primals, {}, tuple(range(len(primals))), has_aux)
    ts = _cotangents("jvp", "tangents", tuple(tangents), traced.inputs, tree_flatten(tuple(primals))[1])
    out_t = _Linear(traced).jvp(ts, retain_graph=False)
    out, tan = traced.output(), tree_unflatten(traced.out_def, out_t)
    return (out, tan, traced.aux_output()) if has_aux else (out, tan)


def linearize(f, *primals):
    """``(f(*primals), f_jvp)`` with ``f_jvp(*tangents) = (df/dprimals) tangents``, as ``jax.linearize``: the
    backward pass is recorded once, and each call of ``f_jvp`` is one backward pass of it.

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops.
        *primals: the point, one value per argument of ``f``.
    """
    traced = _Traced("linearize", f, primals, {}, tuple(range(len(primals))), False)
    linear = _Linear(traced)
    primal_def = tree_flatten(tuple(primals))[1]

    def f_jvp(*tangents):
        _tangents("linearize", primals, tangents)
        ts = _cotangents("f_jvp", "tangents", tuple(tangents), traced.inputs, primal_def)
        return tree_unflatten(traced.out_def, linear.jvp(ts))

    return traced.output(), f_jvp


# -- Jacobians ---------------------------------------------------------------------------------------------------
def _assemble(traced: _Traced, blocks, as_tuple: bool):
    """``blocks[j][i]`` (output leaf j, input i: shaped out_j.shape + in_i.shape) as JAX lays a Jacobian out: the
    output's pytree, each entry the argnums' structure (a tuple for a tuple argnums)."""
    per_out = []
    for row in blocks:
        grouped = traced.split(row)
        per_out.append(tuple(grouped) if as_tuple else grouped[0])
    return tree_unflatten(traced.out_def, per_out)


def jacrev(f, argnums=0, has_aux: bool = False):
    """The Jacobian of ``f`` by reverse mode, as ``jax.jacrev``: one backward pass per output element. Entry
    ``[out_index + in_index]`` is ``d out[out_index] / d in[in_index]`` (shape ``out.shape + in.shape``).

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops.
        argnums: int or tuple of ints, default 0: which positional arguments to differentiate.
        has_aux: bool, default False: ``f`` returns ``(output, aux)`` and aux is passed through undifferentiated.

    Returns:
        The function computing the Jacobian (a tuple of them for a tuple ``argnums``).
    """

    _callable("jacrev", f)

    def jacrev_f(*args, **kwargs):
        positions, as_tuple = _argnums("jacrev", argnums, len(args))
        traced = _Traced("jacrev", f, args, kwargs, positions, has_aux)
        blocks = []
        for y in traced.out_leaves:
            rows = []
            for k in range(y.size):
                seed = Tensor(np.zeros(y.shape, y.dtype))
                seed.data.reshape(-1)[k] = 1.0
                rows.append(autograd.grad([y], traced.inputs, [seed], create_graph=traced.outer,
                                          retain_graph=True))
            blocks.append([_stacked([r[i] for r in rows], y.shape, x.shape, axis=0)
                           for i, x in enumerate(traced.inputs)])
        jac = _assemble(traced, blocks, as_tuple)
        return (jac, traced.aux_output()) if has_aux else jac

    return jacrev_f


jacobian = jacrev  # jax.jacobian is jacrev


def _stacked(pieces: list[Tensor], out_shape: tuple, in_shape: tuple, axis: int) -> Tensor:
    """Rows (axis 0: one per output element, shaped in_shape) or columns (axis -1: one per input element, shaped
    out_shape) stacked into the ``out_shape + in_shape`` Jacobian block."""
    if not pieces:
        return Tensor(np.zeros(out_shape + in_shape))
    block = stack(pieces, axis=axis)
    return block.reshape(out_shape + in_shape)


def jacfwd(f, argnums=0, has_aux: bool = False):
    """The Jacobian of ``f`` by forward mode, as ``jax.jacfwd`` (same layout as ``jacrev``): the backward pass is
    recorded once, then one backward pass of it per input element (the double-vjp jvp of each basis tangent).

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops.
        argnums: int or tuple of ints, default 0: which positional arguments to differentiate.
        has_aux: bool, default False: ``f`` returns ``(output, aux)`` and aux is passed through undifferentiated.
    """

    _callable("jacfwd", f)

    def jacfwd_f(*args, **kwargs):
        positions, as_tuple = _argnums("jacfwd", argnums, len(args))
        traced = _Traced("jacfwd", f, args, kwargs, positions, has_aux)
        linear = _Linear(traced)
        columns = [[None] * len(traced.inputs) for _ in traced.out_leaves]
        for i, x in enumerate(traced.inputs):
            cols = []
            for k in range(x.size):
                e = Tensor(np.zeros(x.shape, x.dtype))
                e.data.reshape(-1)[k] = 1.0
                cols.append(linear.jvp([e], inputs=[i]))
            for j, y in enumerate(traced.out_leaves):
                if x.size:
                    columns[j][i] = _stacked([c[j] for c in cols], y.shape, (x.size,), axis=-1).reshape(
                        y.shape + x.shape)
                else:
                    columns[j][i] = Tensor(np.zeros(y.shape + x.shape, y.dtype))
        jac = _assemble(traced, columns, as_tuple)
        return (jac, traced.aux_output()) if has_aux else jac

    return jacfwd_f


def hessian(f, argnums=0, has_aux: bool = False):
    """The Hessian of a scalar ``f``: ``jacrev(jacrev(f))`` (JAX writes ``jacfwd(jacrev(f))``: its forward mode is
    cheaper than reverse there; here forward mode is built from reverse, so reverse-over-reverse is the cheaper
    order and gives the same matrix for a twice-differentiable f). Shape ``in.shape + in.shape``.

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops. It must return a scalar.
        argnums: int or tuple of ints, default 0: which positional arguments to differentiate.
        has_aux: bool, default False: ``f`` returns ``(output, aux)`` and aux is passed through undifferentiated.
    """
    inner = jacrev(f, argnums, has_aux)
    return jacrev(inner, argnums, has_aux)


def hvp(f, primals, tangents):
    """The Hessian-vector product ``H v`` of a scalar ``f`` at ``primals`` along ``tangents`` (structured like
    ``primals``: a tuple, one entry per argument; H is taken jointly over all arguments), as JAX's autodiff
    cookbook defines ``hvp(f, primals, tangents) = jvp(grad(f, argnums=all), primals, tangents)[1]``.
    Reverse-over-reverse: one forward, one recorded backward and one backward pass of it (H is symmetric).

    Args:
        f: a function of Tensors/arrays (pytrees of them) built from the engine's ops. It must return a scalar.
        primals: tuple, the point.
        tangents: tuple, the vector v, structured and shaped like ``primals``.

    Raises:
        TypeError: ``f`` does not return one scalar Tensor.
    """
    _tangents("hvp", primals, tangents)
    traced = _Traced("hvp", f, primals, {}, tuple(range(len(primals))), False)
    if traced.out_def.kind != "leaf" or traced.out_leaves[0].size != 1:
        raise TypeError(f"hvp: f must return one scalar Tensor; got {traced.out_def} with shapes "
                        f"{[t.shape for t in traced.out_leaves]}")
    ts = _cotangents("hvp", "tangents", tuple(tangents), traced.inputs, tree_flatten(tuple(primals))[1])
    g = traced.vjp([None], create_graph=True, retain_graph=True)
    hv = autograd.grad(g, traced.inputs, ts, create_graph=traced.outer, retain_graph=traced.outer)
    return tuple(traced.split(hv))
