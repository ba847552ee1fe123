"""Activity penalties of a shared layer: one per call, as Keras 3 (its outermost call clears the penalties and
every layer call inside it adds its own), checked against Keras itself and the twin."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jax_ref  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another test imported keras with another backend
    pytest.skip("keras was imported with a non-JAX backend", allow_module_level=True)


def _shared_dense_models():
    """The same model in both frameworks: one Dense(4) with an L2 activity regularizer called twice, d(d(x))."""
    rng = np.random.default_rng(0)
    kernel, bias = rng.standard_normal((4, 4)), rng.standard_normal(4)
    inp = nn.Input((4,))
    dense = nn.Dense(4, activity_regularizer=nn.regularizers.L2(0.1), dtype="float64", name="shared")
    engine = nn.Model(inp, dense(dense(inp)))
    engine.set_weights([kernel, bias])
    k_inp = keras.Input((4,), dtype="float64")
    k_dense = keras.layers.Dense(4, activity_regularizer=keras.regularizers.L2(0.1), dtype="float64")
    reference = keras.Model(k_inp, k_dense(k_dense(k_inp)))
    k_dense.set_weights([kernel, bias])
    return engine, dense, reference, k_dense, rng.standard_normal((5, 4))


def test_shared_layer_adds_one_activity_penalty_per_call_as_keras_and_the_twin():
    engine, dense, reference, k_dense, x = _shared_dense_models()
    engine(x)
    reference(x)
    keras_losses = [float(v) for v in reference.losses]
    assert len(keras_losses) == 2  # Keras: one penalty per call of the shared layer
    np.testing.assert_allclose([float(v.item()) for v in engine.losses], keras_losses, rtol=1e-12)
    engine(x)  # a second model call replaces the penalties, it does not add to them (Keras clears them)
    assert len(engine.losses) == len(dense.losses) == 2
    with pytest.raises(ValueError, match="expected"):
        engine(x[:, :3])  # a failed call leaves the penalties of the last call
    assert [v.item() for v in engine.losses] == pytest.approx(keras_losses, rel=1e-12)
    dense(x)  # the layer called on its own is the outermost call: one penalty
    k_dense(x)
    assert len(dense.losses) == len(k_dense.losses) == 1
    np.testing.assert_allclose(dense.losses[0].item(), float(k_dense.losses[0]), rtol=1e-12)

    twin = jax_ref.from_engine(engine)
    _, _, outputs, _ = twin.run(twin.params, twin.state, x)
    np.testing.assert_allclose(float(twin.activity_penalty(outputs)), sum(keras_losses), rtol=1e-12)
    # the gradient of the loss with both penalties, engine vs twin
    report = jax_ref.compare_gradients(engine, x, np.array([0, 1, 2, 3, 0]))
    assert report.passed and report.max_rel_error < 1e-12, report
    # negative control: the old rule (only the last call's penalty) is another number
    assert abs(keras_losses[1] - sum(keras_losses)) > 0.1
