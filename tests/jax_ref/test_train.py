"""Optax training of the twin: parity with the engine's optimizers on digits, and data-parallel sharding over
4 (simulated) devices giving the same losses and parameters as 1 device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import jax_ref
from jax_ref.train import make_optimizer
from tinygrad_cnn import nn, optim
from tinygrad_cnn.data import load_digits

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    x, y, _, _ = load_digits()
    return x, y


def _cnn():
    nn.set_random_seed(0)
    return nn.Sequential([nn.Input(shape=(8, 8, 1)), nn.Conv2D(4, 3, activation="relu"), nn.MaxPooling2D(2),
                          nn.Flatten(), nn.Dense(10)], name="digits_cnn")


@pytest.mark.parametrize("optimizer, kwargs, dtype, tol", [
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}, "float32", 1e-4),
    ("adam", {"learning_rate": 1e-2}, "float32", 1e-4),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, "float64", 1e-12),
    ("adamw", {"learning_rate": 1e-2, "weight_decay": 1e-3}, "float64", 1e-12),
    ("rmsprop", {"learning_rate": 5e-3}, "float64", 1e-12),
])
def test_parity_with_the_engine_over_50_steps(digits, optimizer, kwargs, dtype, tol):
    model = _cnn()
    before = model.get_weights()
    result = jax_ref.parity(model, *digits, optimizer, steps=50, batch_size=32, seed=1, dtype=dtype, **kwargs)
    assert len(result.engine_losses) == len(result.jax_losses) == 50
    assert result.engine_losses[-1] < 0.9 * result.engine_losses[0]  # it actually trained
    assert result.max_rel_loss_deviation <= tol, str(result)
    assert result.max_rel_param_deviation <= 10 * tol, str(result)
    for w, b in zip(model.get_weights(), before, strict=True):  # the user's model is untouched
        np.testing.assert_array_equal(w, b)


def test_train_updates_the_twin_and_respects_constraints_and_frozen_layers_and_weights(digits):
    x, y = digits
    nn.set_random_seed(0)
    model = nn.Sequential([nn.Input(shape=(8, 8, 1)), nn.Conv2D(3, 3, trainable=False), nn.Flatten(),
                           nn.Dense(10, kernel_constraint=nn.constraints.MaxNorm(0.3))])
    model.layers[-1].bias.requires_grad = False  # one weight frozen on its own inside a trainable layer
    twin = jax_ref.from_engine(model)
    conv_name, dense_name = (layer.name for layer in model.layers[::2])
    frozen = np.asarray(twin.params[conv_name]["kernel"]), np.asarray(twin.params[dense_name]["bias"])
    result = jax_ref.train(twin, x, y, "adam", 1e-2, batch_size=64, steps=20, verbose=False)
    assert result.losses[-1] < result.losses[0]
    np.testing.assert_array_equal(np.asarray(twin.params[conv_name]["kernel"]), frozen[0])
    np.testing.assert_array_equal(np.asarray(twin.params[dense_name]["bias"]), frozen[1])
    norms = np.linalg.norm(np.asarray(twin.params[dense_name]["kernel"]), axis=0)
    assert norms.max() <= 0.3 + 1e-6
    twin.to_engine()
    np.testing.assert_array_equal(model.layers[-1].get_weights()[0], np.asarray(twin.params[dense_name]["kernel"]))


def test_train_errors():
    twin = jax_ref.from_engine(_cnn())
    x, y = np.zeros((10, 8, 8, 1), np.float32), np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="optimizer='adagrad'"):
        jax_ref.train(twin, x, y, "adagrad", verbose=False)
    for name in optim.OPTIMIZERS:  # the engine's one table of names, each optax' function of that name
        assert isinstance(make_optimizer(name, 0.1), optax.GradientTransformation)
    with pytest.raises(ValueError, match="batch_size=32 is larger than the 10 examples"):
        jax_ref.train(twin, x, y, verbose=False)
    assert len(jax.devices()) >= 1


_SHARDED = textwrap.dedent("""
    import json, numpy as np, jax
    import jax_ref
    from tinygrad_cnn import nn
    from tinygrad_cnn.data import load_digits
    x, y, _, _ = load_digits()
    nn.set_random_seed(0)
    model = nn.Sequential([nn.Input(shape=(8, 8, 1)), nn.Conv2D(4, 3, activation="relu"), nn.MaxPooling2D(2),
                           nn.Flatten(), nn.Dropout(0.2), nn.Dense(10)])
    runs = {}
    for shard in (False, True):
        twin = jax_ref.from_engine(model)
        r = jax_ref.train(twin, x, y, "adam", 1e-2, batch_size=64, steps=30, seed=3, shard=shard, verbose=False)
        leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(r.params)]
        shardings = [a.sharding.is_fully_replicated and len(a.sharding.device_set) == r.devices
                     for a in jax.tree_util.tree_leaves(r.params)]
        runs[shard] = (r.losses, leaves, r.devices, shardings)
    (l1, p1, d1, _), (l4, p4, d4, s4) = runs[False], runs[True]
    print(json.dumps({"devices": [d1, d4], "loss_dev": float(np.max(np.abs(l1 - l4) / np.abs(l1))),
                      "param_dev": max(float(np.max(np.abs(a - b)) / np.max(np.abs(a))) for a, b in zip(p1, p4)),
                      "replicated": all(s4), "first": float(l1[0]),
                      "last": float(l1[-1])}))
""")


def test_sharded_training_matches_one_device():
    # the session's XLA_FLAGS (quick compiles, tests/conftest.py) kept, plus 4 host devices
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=300,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["devices"] == [1, 4]
    assert res["replicated"], res
    assert res["last"] < res["first"]
    assert res["loss_dev"] < 1e-5 and res["param_dev"] < 1e-5, res
