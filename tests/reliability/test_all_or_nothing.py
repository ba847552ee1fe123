"""Nothing half-done: set_weights, load_weights (every format), from_config, compile and optimizer construction
check everything first and then write, so a failure on the third item leaves the first two (and everything else)
exactly as they were."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.nn import _serial


def _model():
    nn.set_random_seed(0)
    return nn.Sequential([nn.Input((6, 6, 2)), nn.Conv2D(3, 3), nn.Flatten(), nn.Dense(2)])


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


# the third array is wrong in a way only a write would find out (right shape, unusable dtype), or in its shape
BAD_THIRD = {
    "object dtype": lambda a: np.full(a.shape, None, dtype=object),
    "complex dtype": lambda a: a.astype(np.complex64) + 1j,
    "string dtype": lambda a: np.full(a.shape, "x"),
    "wrong shape": lambda a: np.zeros(a.shape + (1,), a.dtype),
}


@pytest.mark.parametrize("bad", BAD_THIRD, ids=list(BAD_THIRD))
@pytest.mark.parametrize("target", ["model", "layer"])
def test_set_weights_failing_on_the_third_array_changes_nothing(bad, target):
    model = _model()
    before = model.get_weights()
    new = [np.full_like(a, 7.0) for a in before]
    if target == "model":
        new[2] = BAD_THIRD[bad](new[2])
        call, shown = model.set_weights, r"Dense 'dense.*' weight 'kernel'"
    else:  # a layer with three weights: BatchNormalization (gamma, beta, moving_mean, moving_variance)
        layer = nn.BatchNormalization()
        layer.build((None, 4))
        model = layer
        before = layer.get_weights()
        new = [np.full_like(a, 7.0) for a in before]
        new[2] = BAD_THIRD[bad](new[2])
        call, shown = layer.set_weights, r"weight 'moving_mean'"
    with pytest.raises((TypeError, ValueError), match=shown):
        call(new)
    assert _same(before, model.get_weights())


def test_set_weights_converts_what_a_write_would_accept():
    model = _model()
    new = [np.ones(a.shape, np.int64) for a in model.get_weights()]
    model.set_weights(new)
    assert all(a.dtype == np.float32 and (a == 1).all() for a in model.get_weights())


@pytest.mark.parametrize("fmt", ["npz", "weights.h5"])
def test_load_weights_failing_on_the_third_array_changes_nothing(tmp_path, fmt):
    path = tmp_path / f"w.{fmt}"
    source = _model()
    source.set_weights([np.full_like(a, 3.0) for a in source.get_weights()])
    source.save_weights(path)
    other = nn.Sequential([nn.Input((6, 6, 2)), nn.Conv2D(3, 3), nn.Flatten(), nn.Dense(5)])  # Dense differs
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"dense.*(kernel|weight 0).*expects shape \(48, 5\)"):
        other.load_weights(path)
    assert _same(before, other.get_weights())


def test_from_config_failing_on_the_third_layer_leaves_no_trace():
    model = _model()
    config = model.get_config()
    for entry in config["layers"]:  # layers without names take default names: a failed build must not use them
        entry["config"].pop("name", None)
    config["layers"][2]["config"]["units"] = -1
    kept = copy.deepcopy(config)
    counts = dict(_serial._NAME_COUNTS)
    with pytest.raises(ValueError, match="units"):
        nn.Sequential.from_config(config)
    assert config == kept
    assert dict(_serial._NAME_COUNTS) == counts
    graph_config = nn.Model(model.inputs, model.outputs).get_config()
    graph_config["layers"][3]["class_name"] = "Dens"
    counts = dict(_serial._NAME_COUNTS)
    with pytest.raises(ValueError, match="Dens"):
        nn.Model.from_config(graph_config)
    assert dict(_serial._NAME_COUNTS) == counts


def test_compile_failing_on_a_metric_keeps_the_previous_compile():
    model = _model()
    model.compile(optimizer="sgd", loss="cross_entropy", metrics=["accuracy"])
    state = (model.optimizer, model.loss, model.metrics, model.compiled, model._optimizer_factory)
    with pytest.raises(ValueError, match="metrics"):
        model.compile(optimizer="adam", loss="mse", metrics=["mae", "accuracy", "accuracie"])
    assert (model.optimizer, model.loss, model.metrics, model.compiled, model._optimizer_factory) == state


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_optimizer_construction_failing_on_the_third_param_touches_no_param(cls):
    params = [Tensor(np.ones(3, np.float32), requires_grad=True) for _ in range(2)]
    params.append(Tensor(np.ones(3, np.int64)))  # not a float tensor
    for p in params[:2]:
        p.grad = np.full(3, 0.5, np.float32)
    before = [(p.data.copy(), p.grad.copy(), p.requires_grad) for p in params[:2]]
    with pytest.raises(TypeError, match=r"params\[2\] must have a floating dtype"):
        cls(params, learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        cls(params[:2], learning_rate=-1.0)
    for p, (data, grad, flag) in zip(params[:2], before, strict=True):
        assert np.array_equal(p.data, data) and np.array_equal(p.grad, grad) and p.requires_grad == flag
