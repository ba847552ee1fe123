"""detect_anomaly: the first NaN/Inf, forward or backward, is reported at the op that made it."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import ops


def test_log_of_zero_raises_in_forward_naming_log():
    x = tg.Tensor(np.array([1.0, 0.0]), requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"Log produced Inf in the forward pass.*\(2,\)"):
        ops.log(x)


def test_first_forward_place_not_the_last():
    """0 * log(0) = NaN downstream; the error names the Log where -inf first appeared, not the Mul."""
    x = tg.Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="Log produced Inf in the forward"):
        (x * ops.log(x)).sum()


def test_backward_nan_names_the_op_and_backward():
    """sqrt(0) is finite, its vjp g / (2 sqrt(0)) is not: reported as Sqrt's backward, not as a Div forward."""
    x = tg.Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with tg.detect_anomaly():
        y = (ops.sqrt(x) * 3.0).sum()
        with pytest.raises(tg.AnomalyError, match=r"Sqrt produced Inf in the backward pass \(input shapes: \(2,\)"):
            y.backward()


def test_first_backward_place_not_the_last():
    """The Inf made by Sqrt's vjp then flows into Exp's and Mul's vjps; the error names Sqrt."""
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tg.detect_anomaly():
        y = ops.exp(ops.sqrt(x - 1.0)).sum()
        with pytest.raises(tg.AnomalyError, match="Sqrt produced Inf in the backward"):
            y.backward()


def test_anomaly_is_off_by_default_and_restored():
    x = tg.Tensor(np.array([0.0]), requires_grad=True)
    with np.errstate(all="ignore"):
        assert ops.log(x).data[0] == -np.inf
    with pytest.raises(tg.AnomalyError), tg.detect_anomaly():
        ops.log(x)
    ops.log(x)  # no error once the context has exited


def test_clean_graph_passes_under_detect_anomaly():
    x = tg.Tensor(np.array([0.5, 2.0]), requires_grad=True)
    with tg.detect_anomaly():
        (ops.log(x) * ops.sqrt(x)).sum().backward()
    assert np.isfinite(x.grad).all()
