"""A model called on symbolic tensors (Keras' nested models): its graph is inlined into the calling one, its
layers shared, their gradients summed over the uses; config round trip; the errors."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn

R = np.random.default_rng(0)


def _inner():
    xi = nn.Input((4,), dtype="float64")
    return nn.Model(xi, nn.Dense(3, dtype="float64", name="shared_dense")(xi), name="inner")


def test_a_model_used_twice_shares_its_weights_and_their_gradients_add():
    inner = _inner()
    x = nn.Input((4,), dtype="float64")
    pre = nn.Dense(4, dtype="float64", name="pre")
    outer = nn.Model(x, nn.Add(dtype="float64", name="add")([inner(x), inner(pre(x))]), name="outer")
    assert [layer.name for layer in outer.layers][1:] == ["shared_dense", "pre", "add"]
    dense = inner.get_layer("shared_dense")
    assert outer.get_layer("shared_dense") is dense and outer.count_params() == 15 + 20
    xs, v = R.standard_normal((5, 4)), R.standard_normal((5, 3))
    p = pre(xs).numpy()
    y = outer(xs)
    np.testing.assert_allclose(y.numpy(), inner(xs).numpy() + inner(p).numpy(), rtol=1e-12)
    (g_kernel,) = tg.grad(y, [dense.kernel], grad_output=v)
    np.testing.assert_allclose(g_kernel.numpy(), xs.T @ v + p.T @ v, rtol=1e-12)  # both uses of the kernel
    assert inner(xs).shape == (5, 3)  # the inner model still runs on its own


def test_a_nested_sequential_round_trips_through_the_config():
    block = nn.Sequential([nn.Input((6, 6, 2)), nn.Conv2D(3, 3, padding="same", activation="relu"),
                           nn.BatchNormalization()], name="block")
    x = nn.Input((6, 6, 2))
    outer = nn.Model(x, nn.Dense(2)(nn.GlobalAveragePooling2D()(block(x))))
    xs = R.standard_normal((3, 6, 6, 2)).astype("float32")
    again = nn.Model.from_config(outer.get_config())
    again.set_weights(outer.get_weights())
    np.testing.assert_allclose(again(xs).numpy(), outer(xs).numpy(), rtol=1e-6)
    np.testing.assert_allclose(outer(xs).numpy(), outer.layers[-1](outer.layers[-2](block(xs))).numpy(), rtol=1e-6)


def test_bad_symbolic_calls_name_the_model_and_what_was_expected():
    inner = _inner()
    with pytest.raises(ValueError, match=r"Model 'inner': input .* expects shape \(None, 4\); got .*\(None, 5\)"):
        inner(nn.Input((5,), dtype="float64"))
    with pytest.raises(ValueError, match=r"Model 'inner': a symbolic call takes 1 symbolic tensor"):
        inner([nn.Input((4,)), nn.Input((4,))])
    assert len(inner.get_layer("shared_dense")._inbound_nodes) == 1  # the failed calls recorded nothing
