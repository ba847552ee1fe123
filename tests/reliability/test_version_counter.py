"""Version counters (PyTorch's): data written in place between forward and backward is refused at backward, naming
the op and the tensor, instead of silently giving the gradient of different numbers. The engine's own in-place
work (fused conv + pool, buffers, optimizer steps after backward, BatchNorm statistics) never trips it."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, optim

T = tg.Tensor
MODIFIED = r"backward: input \d of {op} \({what}, shape {shape}, dtype float64\) was modified in place after {op}"


def _leaf(values=(1.0, -2.0, 3.0)):
    return T(np.array(values), requires_grad=True)


def test_data_times_equals_between_forward_and_backward_is_refused():
    """``x.data *= 10`` assigns the attribute back (augmented assignment), so the counter sees it."""
    x = _leaf()
    y = (x * x).sum()
    x.data *= 10
    assert x.version == 1
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="Mul", what="a leaf", shape=r"\(3,\)")):
        y.backward()


def test_optimizer_step_before_backward_is_refused():
    w = _leaf()
    loss = (w * w).sum()
    opt = optim.SGD([w], learning_rate=0.1)
    w.grad = np.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="Mul", what="a leaf", shape=r"\(3,\)")):
        loss.backward()


@pytest.mark.parametrize("edit", ["data", "setitem", "copy_"])
def test_editing_a_relu_input_is_refused(edit):
    x = _leaf()
    h = x * 2.0
    y = F.relu(h).sum()
    if edit == "data":
        h.data = -h.data
    elif edit == "setitem":
        h[0] = -5.0
    else:
        h.copy_(np.zeros(3))
    with pytest.raises(RuntimeError, match=MODIFIED.format(op="Relu", what="the output of Mul", shape=r"\(3,\)")):
        y.backward()


def test_editing_the_output_a_vjp_reads_is_refused():
    """exp's vjp reads its own output: writing it is caught at exp's node too."""
    x = _leaf()
    y = x.exp()
    y.data *= 2
    with pytest.raises(RuntimeError, match=r"backward: the output of Exp \(shape \(3,\), dtype float64\) was "
                                           r"modified in place"):
        y.backward(np.ones(3))


def test_detach_shares_the_counter_with_its_source():
    x = _leaf()
    y = (x * x).sum()
    x.detach().data += 1.0
    with pytest.raises(RuntimeError, match="was modified in place"):
        y.backward()


def test_set_weights_between_forward_and_backward_is_refused():
    model = nn.Sequential([nn.Input((3,)), nn.Dense(2, dtype="float64", name="d")])
    loss = model(np.ones((1, 3))).sum()
    model.set_weights([w * 2 for w in model.get_weights()])
    with pytest.raises(RuntimeError, match=r"input 1 of Add \(a leaf, shape \(2,\)"):
        loss.backward()


def test_writes_after_backward_or_before_forward_are_fine_and_gradients_right():
    """Negative control: the same writes outside the forward-backward window change nothing but the values."""
    x = _leaf()
    x.data *= 10  # before the forward: the graph sees version 1
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.array([10.0, -20.0, 30.0]))
    x.data += 1.0  # after the backward: nothing left to check
    assert x.version == 2


def test_an_element_write_through_the_array_is_outside_the_tensor_and_not_seen():
    """Documented limit (as PyTorch's ``.data`` and ``.numpy()``): ``x.data[i] = v`` writes the array the Tensor
    holds without going through the Tensor; ``x[i] = v`` is the tracked spelling."""
    x = _leaf()
    y = (x * x).sum()
    x.data[0] = 100.0
    y.backward()
    assert x.version == 0


def test_training_a_fused_conv_pool_model_with_batchnorm_never_trips_it():
    """fit runs forward, backward, then the step (and BatchNorm writes its moving statistics in place during the
    forward): a whole epoch passes, and the fused conv + relu + max-pool path is the one taken."""
    model = nn.Sequential([nn.Input((6, 6, 2)), nn.Conv2D(3, 3, padding="same", activation="relu"),
                           nn.MaxPooling2D(2), nn.BatchNormalization(), nn.Flatten(), nn.Dense(2)])
    model.compile(optim.Adam, F.cross_entropy)
    x = np.random.default_rng(0).standard_normal((8, 6, 6, 2)).astype(np.float32)
    history = model.fit(x, np.arange(8) % 2, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_retain_graph_then_step_then_backward_again_is_refused():
    w = _leaf()
    loss = (w * 3.0).sum() * (w * w).sum()
    loss.backward(retain_graph=True)
    optim.SGD([w], learning_rate=0.1).step()
    with pytest.raises(RuntimeError, match="was modified in place"):
        loss.backward()


def test_higher_order_gradients_are_unaffected():
    x = _leaf()
    (g,) = tg.grad((x ** 3).sum(), [x], create_graph=True)
    (h,) = tg.grad(g.sum(), [x])
    np.testing.assert_allclose(h.data, 6 * x.data)
