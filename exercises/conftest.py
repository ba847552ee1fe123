"""Exercises are graded in float64 against the engine (tinygrad_cnn) and JAX."""

import jax

jax.config.update("jax_enable_x64", True)
