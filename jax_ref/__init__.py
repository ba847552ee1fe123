"""jax_ref: the JAX/Optax twin of tinygrad_cnn.

The same ops (``jax_ref.ops``), the same models built from the engine's own
config and weights (``from_engine``), gradient comparisons engine vs JAX
(``check_op``, ``compare_gradients``), Optax training side by side with the
engine (``train``, ``parity``) and data-parallel training over devices.
"""

from jax_ref import ops
from jax_ref.compare import check_op

__all__ = ["check_op", "ops"]
