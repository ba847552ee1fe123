"""detect_anomaly through a whole Sequential model: the first op where a NaN/Inf appears is named, forward or
backward, with its input shapes, even though every later op also sees non-finite values."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, ops

X = np.random.default_rng(0).standard_normal((2, 6, 6, 3))
Y = np.array([0, 2])


def _model(activation=None, pool=True):
    layers = [nn.Input((6, 6, 3)), nn.Conv2D(4, 3, name="conv", dtype="float64"),
              nn.ReLU(name="relu", dtype="float64")]
    if activation is not None:
        layers.append(nn.Activation(activation, name="custom", dtype="float64"))
    if pool:
        layers.append(nn.MaxPooling2D(2, name="pool", dtype="float64"))
    layers += [nn.Flatten(name="flat", dtype="float64"), nn.Dense(3, name="dense", dtype="float64")]
    return nn.Sequential(layers)


def _loss(model):
    return F.cross_entropy(model(X), Y)


def test_clean_model_passes_forward_and_backward():
    model = _model()
    with tg.detect_anomaly():
        _loss(model).backward()
    assert all(np.isfinite(p.grad).all() for p in model.parameters())


def test_nan_in_first_layer_weights_names_the_conv_forward():
    """A NaN in the conv kernel makes every later op non-finite; the error names the Conv, the first one."""
    model = _model()
    model.layers[0].kernel.data[1, 1, 0, 2] = np.nan
    with tg.detect_anomaly(), pytest.raises(
            tg.AnomalyError, match=r"Conv produced NaN in the forward pass \(input shapes: \(2, 6, 6, 3\), "
                                   r"\(3, 3, 3, 4\)"):
        _loss(model)


def test_nan_in_last_layer_weights_names_the_matmul_forward():
    """Conv, ReLU, pool and Flatten run clean; the Dense kernel's NaN first shows up in its MatMul."""
    model = _model()
    model.layers[-1].kernel.data[5, 1] = np.nan
    with tg.detect_anomaly(), pytest.raises(
            tg.AnomalyError, match=r"MatMul produced NaN in the forward pass \(input shapes: \(2, 16\), \(16, 3\)"):
        _loss(model)


def test_inf_weight_names_the_first_op_that_turns_it_into_a_non_finite_output():
    model = _model()
    model.layers[-1].bias.data[0] = np.inf
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"Add produced Inf in the forward pass "
                                                                   r"\(input shapes: \(2, 3\), \(3,\)"):
        _loss(model)


def test_inf_gradient_names_the_op_backward_not_the_later_ones():
    """sqrt after ReLU: forward is finite (sqrt(0) = 0), but sqrt's vjp g / (2 sqrt(0)) is Inf at every dead
    unit. That Inf then meets ReLU's zero mask (Inf * 0 = NaN) and the conv's GEMMs; the error names Sqrt.
    (No pooling here: a pool's zero cotangent at a dead unit would make 0 / 0 = NaN instead of Inf.)"""
    model = _model(activation=ops.sqrt, pool=False)
    with tg.detect_anomaly():
        loss = _loss(model)
        assert np.isfinite(loss.data)
        with pytest.raises(tg.AnomalyError,
                           match=r"Sqrt produced Inf in the backward pass \(input shapes: \(2, 4, 4, 4\)"):
            loss.backward()


def test_without_detect_anomaly_the_nan_spreads_silently():
    """Negative control: the same model without the context gives NaN gradients and no error."""
    model = _model(activation=ops.sqrt, pool=False)
    with np.errstate(all="ignore"):
        _loss(model).backward()
    assert np.isnan(model.layers[0].kernel.grad).any()


def test_fit_under_detect_anomaly_stops_at_the_first_bad_op():
    model = _model()
    model.layers[-1].kernel.data[0, 0] = np.nan
    model.compile("sgd", F.cross_entropy)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="MatMul produced NaN in the forward pass"):
        model.fit(X, Y, batch_size=2, epochs=1, verbose=0)
