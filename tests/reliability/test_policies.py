"""Policies stated and kept: the dtype policy (Keras': layers cast inputs to their dtype; a leaf's gradient has the
leaf's dtype; scalars and 0-d arrays do not promote), what enters a Tensor (floats, ints, bools; an integer cast
is outside the graph, as JAX's zero derivative), and seeds (``nn.set_random_seed`` as Keras')."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn

T = tg.Tensor


# -- dtype policy -----------------------------------------------------------------------------------------
def _model():
    return nn.Sequential([nn.Input((6, 6, 3)), nn.Conv2D(2, 3, activation="relu"), nn.MaxPooling2D(2),
                          nn.Flatten(), nn.Dense(3)])


def test_a_float32_model_called_on_float64_runs_float32_as_keras():
    model = _model()
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 3))
    out = model(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.data, model(x.astype(np.float32)).data)  # the same as casting first
    h = T(x)
    for layer in model.layers:  # unfused, layer by layer: every layer casts
        h = layer(h)
        assert h.dtype == np.float32


def test_the_cast_is_differentiable_and_the_input_gradient_keeps_the_input_dtype():
    model = _model()
    x = T(np.random.default_rng(1).standard_normal((2, 6, 6, 3)), requires_grad=True)
    model(x).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.shape == x.shape and np.abs(x.grad).sum() > 0


def test_a_leaf_gradient_has_the_leaf_dtype_when_float64_constants_join():
    w = T(np.ones(3, np.float32), requires_grad=True)
    for _ in range(2):  # first contribution and accumulation alike
        (w * T(np.full(3, 2.0))).sum().backward()
        assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad, [4.0, 4.0, 4.0])
    (g,) = tg.grad((w * T(np.full(3, 2.0))).sum(), [w])
    assert g.dtype == np.float32


@pytest.mark.parametrize("scalar", [2.0, np.float64(2.0), np.array(2.0), np.array(2), True])
def test_scalars_and_zero_d_arrays_do_not_promote(scalar):
    x = T(np.ones(3, np.float32))
    for y in (x * scalar, scalar * x, x + scalar, x / scalar):
        assert y.dtype == np.float32
    np.testing.assert_array_equal((x * scalar).data, (x * float(scalar)).data)


def test_arrays_with_axes_still_promote_as_numpy():
    """Negative control: a float64 array with an axis is data, not a scalar."""
    assert (T(np.ones(3, np.float32)) * np.array([2.0])).dtype == np.float64


# -- what enters a Tensor ---------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [np.array([1, "a"], dtype=object), np.array(["a"]), np.array([1j]),
                                  np.complex64(1), np.array(["2020-01-01"], dtype="datetime64[D]")])
def test_data_the_engine_cannot_differentiate_is_refused(data):
    with pytest.raises(TypeError, match=r"^Tensor: data must be numbers.*the engine cannot differentiate"):
        T(data)


def test_floats_ints_and_bools_are_accepted_as_before():
    assert T([1, 2]).dtype == np.float32 and T(np.arange(2)).dtype == np.int64
    assert T(np.array([True])).dtype == bool and T(np.float16(1)).dtype == np.float16


def test_an_integer_cast_is_outside_the_graph_as_jax_gives_a_zero_gradient():
    """JAX: d/dx of x.astype(int32).astype(float32) is 0 everywhere. The engine returns a constant from the int
    cast, so ``tinygrad_cnn.grad`` gives the same zeros and a float cast keeps the gradient."""
    x0 = np.array([1.5, -2.5, 3.0], np.float32)
    x = T(x0, requires_grad=True)
    as_int = x.astype(np.int32)
    assert not as_int.requires_grad
    (g,) = tg.grad((as_int.astype(np.float32) * x).sum(), [x])
    ref = jax.grad(lambda v: (v.astype(jnp.int32).astype(jnp.float32) * v).sum())(x0)
    np.testing.assert_array_equal(g.data, np.asarray(ref))  # only the product's own factor: int part is constant
    (g_float,) = tg.grad(x.astype(np.float64).sum(), [x])
    np.testing.assert_array_equal(g_float.data, np.ones(3))
    with pytest.raises(TypeError, match=r"astype: dtype complex64 is not one the engine works with"):
        x.astype(np.complex64)


# -- seeds ------------------------------------------------------------------------------------------------
def _train(seed):
    nn.set_random_seed(seed)
    model = nn.Sequential([nn.Input((4,)), nn.Dense(8, activation="relu"), nn.Dropout(0.5),
                           nn.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
    history = model.fit(x, np.arange(32) % 3, batch_size=8, epochs=2, verbose=0)  # seed=None
    return model.get_weights(), history.history["loss"]


def test_set_random_seed_makes_init_shuffling_and_dropout_reproducible():
    (w1, l1), (w2, l2), (_, l3) = _train(7), _train(7), _train(8)
    assert l1 == l2 and all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))
    assert l1 != l3  # negative control: another seed, another run


def test_a_layer_seed_is_kept_when_fit_has_none():
    layer = nn.Dropout(0.5, seed=3)
    before = layer._rng
    model = nn.Sequential([nn.Input((4,)), layer, nn.Dense(2)])
    model.compile("sgd", F.cross_entropy)
    model.fit(np.ones((4, 4), np.float32), np.zeros(4, np.int64), verbose=0)
    assert layer._rng is before


def test_anomaly_mode_is_per_thread():
    """Opened in this thread, it does not check another one (documented); opened in the worker, it does."""
    caught = []

    def work(enable):
        x = T(np.array([0.0]))
        try:
            if enable:
                with tg.detect_anomaly():
                    x.log()
            else:
                with np.errstate(divide="ignore"):
                    x.log()
        except tg.AnomalyError as exc:
            caught.append(str(exc))

    with tg.detect_anomaly():
        worker = threading.Thread(target=work, args=(False,))
        worker.start()
        worker.join()
    assert caught == []
    worker = threading.Thread(target=work, args=(True,))
    worker.start()
    worker.join()
    assert len(caught) == 1 and "Log produced Inf in the forward pass" in caught[0]
