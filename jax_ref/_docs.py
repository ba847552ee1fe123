"""The twin's functions take the engine's arguments name for name, so their docstrings take the engine's
``Args:`` section rather than a second copy of it that could drift (``take_engine_args``)."""

from __future__ import annotations

import inspect


def args_section(doc: str) -> str:
    """The body of the ``Args:`` section of a Google-style docstring (its lines up to the next section).

    Args:
        doc: a docstring (raw or cleaned) with an ``Args:`` line.
    """
    lines = inspect.cleandoc(doc).splitlines()
    start = lines.index("Args:") + 1
    body = []
    for line in lines[start:]:
        if line and not line[0].isspace():
            break  # the next section (Returns:, Raises:) or prose
        body.append(line)
    return "\n".join(body).rstrip()


def take_engine_args(fn, engine_fn) -> None:
    """Give ``fn`` (a twin function) its own docstring followed by ``engine_fn``'s ``Args:`` section, after
    checking that the engine's section names every one of ``fn``'s parameters.

    Args:
        fn: the JAX function, whose docstring states its math (and where it differs from the engine's).
        engine_fn: the ``tinygrad_cnn.functional`` function of the same name and arguments.

    Raises:
        ValueError: the engine's docstring has no ``Args:`` section, or it does not name a parameter of ``fn``.
    """
    if "Args:" in (fn.__doc__ or ""):
        return  # documented in full where it is defined (or already given the engine's section)
    engine_doc = engine_fn.__doc__ or ""
    if "Args:" not in engine_doc:
        raise ValueError(f"take_engine_args: {engine_fn.__module__}.{engine_fn.__qualname__} has no Args: section "
                         f"to give {fn.__module__}.{fn.__qualname__}")
    section = args_section(engine_doc)
    params = [p for p in inspect.signature(fn).parameters if not p.startswith("_")]
    missing = [p for p in params if f"{p}:" not in section and f"{p}," not in section]
    if missing:
        raise ValueError(f"take_engine_args: {engine_fn.__qualname__}'s Args: section does not describe "
                         f"{fn.__qualname__}'s parameters {missing}")
    fn.__doc__ = (inspect.cleandoc(fn.__doc__ or "") + f"\n\nThe arguments of ``tinygrad_cnn.functional."
                  f"{engine_fn.__name__}``\n(NumPy or JAX arrays in place of Tensors; the result is a ``jax.Array``)."
                  "\n\nArgs:\n" + section)
