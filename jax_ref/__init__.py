"""jax_ref: the JAX/Optax twin of tinygrad_cnn.

The same ops (``jax_ref.ops``), the same models built from the engine's own
config and weights (``from_engine``), gradient comparisons engine vs JAX
(``check_op``, ``compare_gradients``), Optax training side by side with the
engine (``train``, ``parity``) and data-parallel training over devices
(``train(..., shard=True)``) and attribution (``jax_ref.attribution``).

Modules, each importing only those below it (no cycles, imports at the top):
``ops`` (on ``_conv``, ``_pool``, ``_padding``) < ``_penalties`` < ``_layers``,
``_mirror_tensor`` < ``_custom`` (a user's layer: its own ``call`` run on JAX)
< ``model`` (``from_engine``) < ``train`` (optax) < ``parity`` (engine side by
side, and the engine objects the checks build) < ``compare``; ``attribution``
sits on ``model``; ``launch`` (multi-process jobs: ``launch``, ``initialize``)
imports nothing of the package.
"""

from jax_ref import attribution, ops
from jax_ref.compare import assert_gradients_match, check_op, compare_gradients
from jax_ref.model import JaxModel, from_engine
from jax_ref.parity import ParityResult, clone_engine, parity
from jax_ref.train import TrainResult, train

__all__ = [
    "JaxModel", "ParityResult", "TrainResult", "assert_gradients_match", "attribution", "check_op", "clone_engine",
    "compare_gradients", "from_engine", "ops", "parity", "train",
]
