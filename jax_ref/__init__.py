"""jax_ref: the JAX/Optax twin of tinygrad_cnn.

The same ops (``jax_ref.ops``), the same models built from the engine's own
config and weights (``from_engine``), gradient comparisons engine vs JAX
(``check_op``, ``compare_gradients``), Optax training side by side with the
engine (``train``, ``parity``) and data-parallel training over devices
(``train(..., shard=True)``). ``jax_ref.attribution`` is imported on first use.
"""

from jax_ref import ops
from jax_ref.compare import assert_gradients_match, check_op, compare_gradients
from jax_ref.model import JaxModel, clone_engine, from_engine
from jax_ref.parity import ParityResult, parity
from jax_ref.train import TrainResult, train

__all__ = [
    "JaxModel", "ParityResult", "TrainResult", "assert_gradients_match", "attribution", "check_op", "clone_engine",
    "compare_gradients", "from_engine", "ops", "parity", "train",
]


def __getattr__(name):
    if name == "attribution":  # imported lazily: it is heavier and optional for the checks
        import importlib
        return importlib.import_module("jax_ref.attribution")
    raise AttributeError(f"module 'jax_ref' has no attribute {name!r}")
