"""The twin's side of issue 16: a refused twin call changes nothing, and the attribution tools never describe a
network the model no longer is (the compiled net cached on the model is keyed on its architecture).

The refused calls themselves (messages) are rows of the bad-calls table (``test_bad_calls.py``, ``jax-train-*``,
``parity-*``, ``compare-gradients-*``)."""

from __future__ import annotations

import numpy as np
import pytest

import jax_ref
from jax_ref import attribution
from jax_ref.attribution._net import as_net
from jax_ref.attribution.engine import engine_saliency
from tinygrad_cnn import nn

X = np.random.default_rng(0).standard_normal((4, 6, 6, 1)).astype(np.float32)
Y = np.array([0, 1, 2, 0])


def _model():
    nn.set_random_seed(0)
    return nn.Sequential([nn.Input((6, 6, 1)), nn.Conv2D(2, 3, name="c1"), nn.Flatten(name="flat"),
                          nn.Dense(3, name="out")])


def test_refused_twin_training_leaves_the_twin_as_it_was():
    """Labels out of range are refused before the first step (jit would hide them: the loss of an id beyond the
    last class is a silent 0): the twin's params and state are the ones it had."""
    twin = jax_ref.from_engine(_model())
    before = {k: {w: np.asarray(a) for w, a in ws.items()} for k, ws in twin.params.items()}
    with pytest.raises(ValueError, match=r"labels must be class ids in \[0, 3\); got 5"):
        jax_ref.train(twin, X, Y + 5, batch_size=2, steps=1, verbose=False)
    assert all(np.array_equal(before[k][w], twin.params[k][w]) for k in before for w in before[k])
    jax_ref.train(twin, X, Y, batch_size=2, steps=1, verbose=False)  # negative control: good labels do train
    assert not all(np.array_equal(before[k][w], twin.params[k][w]) for k in before for w in before[k])


def test_a_graph_model_gets_one_length_check_for_all_inputs():
    a, b = nn.Input((3,), name="a"), nn.Input((2,), name="b")
    out = nn.Dense(2, name="head")(nn.Concatenate()([a, b]))
    model = nn.Model([a, b], out)
    x = [np.zeros((4, 3), np.float32), np.zeros((3, 2), np.float32)]
    with pytest.raises(ValueError, match=r"^jax_ref.train: x\[0\] has 4 examples but x\[1\] has 3"):
        jax_ref.train(model, x, np.zeros(4, np.int64), batch_size=2, steps=1, verbose=False)


def test_attribution_follows_model_add():
    """After ``model.add`` the twin's saliency and feature maps describe the new network: the cached net is
    rebuilt (before the fix both kept the old one's three layers and its logits)."""
    model = _model()
    image = X[0]
    attribution.saliency(model, image, target=0)
    assert list(attribution.feature_maps(model, image)) == ["c1", "flat", "out"]
    net_before = as_net(model)[0]
    model.add(nn.Dense(2, name="out2"))
    assert list(attribution.feature_maps(model, image)) == ["c1", "flat", "out", "out2"]
    np.testing.assert_allclose(attribution.saliency(model, image, target=1), engine_saliency(model, image, target=1),
                               rtol=1e-4, atol=1e-6)
    assert as_net(model)[0] is not net_before
    assert as_net(model)[0] is as_net(model)[0], "an unchanged model must keep its compiled net"

