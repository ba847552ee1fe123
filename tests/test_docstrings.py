"""Every public name a newcomer meets has a docstring that speaks of its arguments (issue #18, item 5).

Walks the ``__all__`` of the public modules (and the public methods a user calls on a class, such as
``Model.fit``) and fails for any public function or class without a docstring, or, for a callable with
parameters, a docstring without a Google-style ``Args:`` section that names every parameter (the project's
standard: a docstring per public function stating its arguments and its math). Names not yet documented so
are listed in ``ARGS_PENDING``, which may only shrink. This test checks that the sections exist and are
complete, not their wording.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re

MODULES = [
    "tinygrad_cnn", "tinygrad_cnn.nn", "tinygrad_cnn.nn.callbacks", "tinygrad_cnn.functional",
    "tinygrad_cnn.optim", "tinygrad_cnn.optim.schedules", "tinygrad_cnn.viz",
    "jax_ref", "jax_ref.attribution", "tinygrad_cnn.ops", "jax_ref.ops",
]

# Public names allowed a docstring that names none of their parameters, because the name says it all.
# Empty today: every public callable with parameters speaks of at least one of them. Add a name here only with
# a comment saying why its docstring cannot usefully name its arguments.
PARAM_RULE_EXEMPT: set[str] = set()

# Public callables with parameters whose docstring has no ``Args:`` section yet: documented in a later commit.
# The list may only shrink (``test_args_pending_lists_only_real_gaps`` fails for a name that no longer needs to
# be here). They are kept here rather than documented now because other work is editing their files:
ARGS_PENDING = {
    # jax_ref/attribution/ (the attribution methods and metrics)
    "jax_ref.attribution.activation_maximization", "jax_ref.attribution.deconvnet",
    "jax_ref.attribution.deletion_curve", "jax_ref.attribution.grad_cam_plus_plus",
    "jax_ref.attribution.guided_backprop", "jax_ref.attribution.guided_grad_cam", "jax_ref.attribution.infidelity",
    "jax_ref.attribution.input_x_gradient", "jax_ref.attribution.insertion_curve",
    "jax_ref.attribution.layer_activation", "jax_ref.attribution.layer_gradient",
    "jax_ref.attribution.noise_tunnel", "jax_ref.attribution.score_cam", "jax_ref.attribution.sensitivity_max",
    # tinygrad_cnn/optim/
    "tinygrad_cnn.optim.check_learning_rate", "tinygrad_cnn.optim.schedules.Schedule",
    "tinygrad_cnn.optim.schedules.Schedule.evaluate",
}

# What a newcomer meets first (issue #18): these must carry a Google-style ``Args:`` section.
MUST_HAVE_ARGS = [
    "tinygrad_cnn.nn.Conv2D", "tinygrad_cnn.nn.Conv1D", "tinygrad_cnn.nn.Dense", "tinygrad_cnn.nn.MaxPooling2D",
    "tinygrad_cnn.nn.AveragePooling2D", "tinygrad_cnn.nn.GlobalAveragePooling2D", "tinygrad_cnn.nn.Dropout",
    "tinygrad_cnn.nn.Flatten", "tinygrad_cnn.nn.BatchNormalization", "tinygrad_cnn.nn.Model",
    "tinygrad_cnn.nn.Sequential", "tinygrad_cnn.nn.Model.fit", "tinygrad_cnn.nn.Model.compile",
    "tinygrad_cnn.nn.Model.evaluate", "tinygrad_cnn.nn.Model.predict", "tinygrad_cnn.nn.Model.save",
    "tinygrad_cnn.functional.conv", "tinygrad_cnn.functional.max_pool", "tinygrad_cnn.functional.avg_pool",
    "tinygrad_cnn.functional.cross_entropy", "tinygrad_cnn.functional.mse", "tinygrad_cnn.optim.SGD",
    "tinygrad_cnn.optim.Adam", "tinygrad_cnn.optim.AdamW", "tinygrad_cnn.optim.RMSprop",
    "jax_ref.from_engine", "jax_ref.compare_gradients", "jax_ref.train", "jax_ref.parity",
    "jax_ref.attribution.saliency", "jax_ref.attribution.smoothgrad", "jax_ref.attribution.integrated_gradients",
    "jax_ref.attribution.occlusion", "jax_ref.attribution.grad_cam",
]

# Public methods a user calls, checked on the classes that define them (others are covered by their class docstring).
USER_METHODS = ["fit", "compile", "evaluate", "predict", "save", "summary", "train_on_batch",
                "test_on_batch", "predict_on_batch", "step", "zero_grad", "backward", "numpy", "item"]


def _params(obj) -> list[str]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [n for n, p in sig.parameters.items()
            if n not in ("self", "cls") and not n.startswith("_")  # private knobs (log_softmax's _fn)
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _own_doc(obj) -> str | None:
    return obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)


def _problem(label: str, obj, params: list[str], name: str) -> str | None:
    doc = _own_doc(obj)
    if not doc or not doc.strip():
        return f"{label}: no docstring"
    if params and name not in PARAM_RULE_EXEMPT:
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", doc))
        if not words.intersection(params):
            return f"{label}: docstring mentions none of its parameters {params}"
    return None


def _public_objects():
    seen = set()
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or id(obj) in seen:
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue  # constants (tables, dtypes) are described in their module docstring
            seen.add(id(obj))
            yield f"{modname}.{name}", name, obj


def _documented() -> list[tuple[str, str, object, list[str]]]:
    """``(label, name, object, parameter names)`` of every public callable, a class' user methods included
    (a method is labelled by the class it is reached from and checked on the class that defines it)."""
    rows = []
    for label, name, obj in _public_objects():
        if not inspect.isclass(obj):
            rows.append((label, name, obj, _params(obj)))
            continue
        rows.append((label, name, obj, _params(obj)))  # the constructor's parameters, inherited __init__ included
        for meth in USER_METHODS:
            owner = next((k for k in obj.__mro__ if meth in k.__dict__), None)
            fn = owner.__dict__[meth] if owner is not None else None
            if callable(fn) and owner.__module__.startswith(("tinygrad_cnn", "jax_ref")):
                rows.append((f"{label}.{meth}", meth, fn, _params(fn)))
    return rows


def _problems() -> list[str]:
    found = [_problem(label, obj, params, name) for label, name, obj, params in _documented()]
    return [p for p in found if p]


def _section(obj) -> str | None:
    """The header of the docstring's argument section: ``Args:``, or for a dataclass (whose constructor takes its
    fields) Google style's ``Attributes:``; None if it has neither."""
    doc = _own_doc(obj) or ""
    if "Args:" in doc:
        return "Args:"
    return "Attributes:" if dataclasses.is_dataclass(obj) and "Attributes:" in doc else None


def _args_gaps(rows=None) -> list[str]:
    """A docstring with an ``Args:`` section must name every parameter in it (so it cannot fall out of date)."""
    gaps = []
    for label, _, obj, params in _documented() if rows is None else rows:
        section = _section(obj)
        if section is None:
            continue
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", (_own_doc(obj) or "").split(section, 1)[1]))
        missing = [p for p in params if p not in words]
        if missing:
            gaps.append(f"{label}: Args: does not describe {missing}")
    return gaps


def test_every_public_name_has_a_docstring_naming_its_arguments():
    problems = _problems()
    assert not problems, f"{len(problems)} public names lack a useful docstring:\n" + "\n".join(problems)


def test_an_args_section_describes_every_parameter():
    gaps = _args_gaps()
    assert not gaps, "\n".join(gaps)


def _args_missing(rows=None) -> list[str]:
    """Public callables with parameters whose docstring has no ``Args:`` section, outside ``ARGS_PENDING``."""
    return [f"{label}: no Args: section for {params}"
            for label, _, obj, params in (_documented() if rows is None else rows)
            if params and label not in ARGS_PENDING and _section(obj) is None]


def test_every_public_callable_with_parameters_has_an_args_section():
    missing = _args_missing()
    assert not missing, f"{len(missing)} public callables lack an Args: section:\n" + "\n".join(missing)


def test_args_pending_lists_only_real_gaps():
    """The allow-list may only shrink: a name documented since (or renamed away) must leave it."""
    rows = {label: (obj, params) for label, _, obj, params in _documented()}
    stale = sorted(name for name in ARGS_PENDING
                   if name not in rows or not rows[name][1] or _section(rows[name][0]) is not None)
    assert not stale, f"remove from ARGS_PENDING (documented or gone): {stale}"


def test_what_a_newcomer_meets_first_has_an_args_section():
    by_label = {label: obj for label, _, obj, _ in _documented()}
    missing = [label for label in MUST_HAVE_ARGS if "Args:" not in (_own_doc(by_label[label]) or "")]
    assert not missing, f"no Args: section: {missing}"


def test_the_check_catches_a_missing_and_an_unrelated_docstring():
    """Negative control: the rule flags a bare function and one whose docstring ignores its arguments."""

    def bare(x, axis):
        pass

    def vague(x, axis):
        """Do the thing."""

    def good(x, axis):
        """Sum ``x`` over ``axis``."""

    assert _problem("bare", bare, _params(bare), "bare") == "bare: no docstring"
    assert "mentions none" in _problem("vague", vague, _params(vague), "vague")
    assert _problem("good", good, _params(good), "good") is None

    def stale(x, axis):
        """Sum.

        Args:
            x: the input.
        """

    assert _args_gaps([("stale", "stale", stale, _params(stale))]) == ["stale: Args: does not describe ['axis']"]

    def no_args(x, axis):
        """Sum ``x`` over ``axis``."""

    def nothing_to_say():
        """A callable without parameters needs no Args: section."""

    rows = [(name, name, fn, _params(fn)) for name, fn in
            (("no_args", no_args), ("nothing_to_say", nothing_to_say), ("stale", stale))]
    assert _args_missing(rows) == ["no_args: no Args: section for ['x', 'axis']"]


def test_help_of_conv2d_shows_its_arguments():
    """``help(nn.Conv2D)`` shows the constructor's arguments with their defaults and meaning."""
    import pydoc

    import tinygrad_cnn.nn as nn

    text = pydoc.render_doc(nn.Conv2D, renderer=pydoc.plaintext)
    for needle in ("filters", "kernel_size", "padding", "Args:", "ceil(W / S)"):
        assert needle in text, needle


def test_help_of_a_one_line_op_shows_its_math_and_arguments():
    """``ops._docs.documented`` and ``jax_ref._docs.take_engine_args`` build docstrings that ``help()`` renders."""
    import pydoc

    import jax_ref.ops
    import tinygrad_cnn.ops as ops

    text = pydoc.render_doc(ops.log1p, renderer=pydoc.plaintext)
    for needle in ("log1p(x)", "y = log(1 + x)", "vjp: g / (1 + x)", "Args:", "x: Tensor"):
        assert needle in text, needle
    twin = pydoc.render_doc(jax_ref.ops.softplus, renderer=pydoc.plaintext)
    assert "logaddexp(x, 0)" in twin and "Args:" in twin and "x: Tensor or array-like" in twin


def test_the_twin_refuses_an_engine_section_that_misses_a_parameter():
    """Negative control of ``take_engine_args``: it checks the engine's section names every twin parameter."""
    import pytest

    from jax_ref._docs import take_engine_args

    def engine(x, axis):
        """Sum.

        Args:
            x: the input.
        """

    def twin(x, axis):
        """Sum on JAX."""

    with pytest.raises(ValueError, match=r"\['axis'\]"):
        take_engine_args(twin, engine)
    assert twin.__doc__ == "Sum on JAX."  # left as it was
