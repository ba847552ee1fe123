"""detect_anomaly through a whole Sequential model: the first op that turns finite inputs into NaN/Inf is named,
forward or backward, with its layer and input shapes, even though every later op also sees non-finite values;
NaN/Inf already in the data (a weight, the input batch) is reported as such; optimizer updates are checked."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, ops, optim

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


def test_nan_in_first_layer_weights_is_reported_as_data_at_the_conv():
    """A NaN in the conv kernel makes every later op non-finite; the error says the kernel (a leaf) held it, at the
    Conv of layer 'conv', the first op that reads it: the Conv did not make it."""
    model = _model()
    model.layers[0].kernel.data[1, 1, 0, 2] = np.nan
    with tg.detect_anomaly(), pytest.raises(
            tg.AnomalyError, match=r"NaN already in the data: input 1 of Conv, in layer Conv2D 'conv' \(a leaf or "
                                   r"constant of shape \(3, 3, 3, 4\)\) holds NaN; Conv did not make it"):
        _loss(model)


def test_nan_in_the_input_batch_is_reported_as_data():
    model = _model()
    x = X.copy()
    x[1, 2, 2, 0] = np.nan
    with tg.detect_anomaly(), pytest.raises(
            tg.AnomalyError, match=r"NaN already in the data: input 0 of Conv, in layer Conv2D 'conv' \(a leaf or "
                                   r"constant of shape \(2, 6, 6, 3\)\)"):
        model(x)


def test_nan_in_last_layer_weights_is_reported_at_the_dense_matmul():
    """Conv, ReLU, pool and Flatten run clean; the Dense kernel's NaN is found at its MatMul."""
    model = _model()
    model.layers[-1].kernel.data[5, 1] = np.nan
    with tg.detect_anomaly(), pytest.raises(
            tg.AnomalyError, match=r"NaN already in the data: input 1 of MatMul, in layer Dense 'dense' \(a leaf or "
                                   r"constant of shape \(16, 3\)\)"):
        _loss(model)


def test_overflow_from_finite_values_blames_the_op_and_its_layer():
    """Finite but huge weights: the Dense MatMul is the first op whose inputs are finite and whose output is not."""
    model = _model()
    model.layers[-1].kernel.data[...] = 1e308
    with tg.detect_anomaly(), np.errstate(over="ignore"), pytest.raises(
            tg.AnomalyError, match=r"MatMul produced Inf in the forward pass \(input shapes: \(2, 16\), \(16, 3\); "
                                   r"output shape \(2, 3\)\), in layer Dense 'dense', from finite inputs"):
        _loss(model)


def test_fused_conv_pool_names_both_layers():
    model = nn.Sequential([nn.Input((6, 6, 3)), nn.Conv2D(4, 3, activation="relu", name="conv", dtype="float64"),
                           nn.MaxPooling2D(2, name="pool", dtype="float64"), nn.Flatten(dtype="float64")])
    model.layers[0].kernel.data[...] = 1e308
    with tg.detect_anomaly(), np.errstate(over="ignore", invalid="ignore"), pytest.raises(
            tg.AnomalyError, match=r"ConvReluMaxPool produced (Inf|NaN) in the forward pass .*, in layer Conv2D "
                                   r"'conv' \+ MaxPooling2D 'pool' \(fused\), from finite inputs"):
        model(np.abs(X) + 1.0)


def test_an_optimizer_update_that_overflows_is_caught_before_the_write():
    model = _model()
    model.compile(optim.SGD(model.parameters(), learning_rate=1e300), lambda out, y: F.cross_entropy(out, y) * 1e20)
    before = model.get_weights()
    with tg.detect_anomaly(), np.errstate(over="ignore"), pytest.raises(
            tg.AnomalyError, match=r"SGD.step: params\[0\] \(shape \(3, 3, 3, 4\)\) would become Inf: the update "
                                   r"overflowed from a finite gradient and parameter \(learning rate 1e\+300\)"):
        model.fit(X, Y, batch_size=2, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_weights()[0], before[0])  # params[0] was not written


def test_an_optimizer_update_from_a_nan_gradient_names_the_gradient():
    w = tg.Tensor(np.ones(2), requires_grad=True)
    w.grad = np.array([np.nan, 0.0])
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"params\[0\] \(shape \(2,\)\) would become "
                                                                   r"NaN: its gradient holds NaN"):
        optim.Adam([w]).step()


def test_inf_gradient_names_the_op_backward_not_the_later_ones():
    """sqrt after ReLU: forward is finite (sqrt(0) = 0), but sqrt's vjp g / (2 sqrt(0)) is Inf at every dead
    unit. That Inf then meets ReLU's zero mask (Inf * 0 = NaN) and the conv's GEMMs; the error names Sqrt.
    (No pooling here: a pool's zero cotangent at a dead unit would make 0 / 0 = NaN instead of Inf.)"""
    model = _model(activation=ops.sqrt, pool=False)
    with tg.detect_anomaly():
        loss = _loss(model)
        assert np.isfinite(loss.data)
        with pytest.raises(tg.AnomalyError,
                           match=r"Sqrt produced Inf in the backward pass \(input shapes: \(2, 4, 4, 4\); "
                                 r"output shape \(2, 4, 4, 4\)\), in layer Activation 'custom', in the gradient "
                                 r"for its input 0, from a finite cotangent"):
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
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="NaN already in the data: input 1 of MatMul, in "
                                                                   "layer Dense 'dense'"):
        model.fit(X, Y, batch_size=2, epochs=1, verbose=0)
