"""Exercises are graded in float64 against the engine (tinygrad_cnn) and JAX. Each check compiles a few small JAX
functions once, so XLA is asked for quick compiles (the results do not depend on it at these tolerances)."""

import os

_FLAG = "--xla_backend_optimization_level=0"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax  # noqa: E402  (after XLA_FLAGS)

jax.config.update("jax_enable_x64", True)
