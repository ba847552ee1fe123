"""Optimizers against optax, update by update: same gradients in, same parameters out (float32)."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, optim

optax = pytest.importorskip("optax")
jnp = pytest.importorskip("jax.numpy")

SHAPES = [(3, 3, 2, 4), (4,), (5, 7)]
STEPS = 8

CASES = [
    ("sgd", optim.SGD, dict(learning_rate=0.1), dict(learning_rate=0.1)),
    ("sgd_momentum", optim.SGD, dict(learning_rate=0.05, momentum=0.9),
     dict(learning_rate=0.05, momentum=0.9)),
    ("sgd_nesterov", optim.SGD, dict(learning_rate=0.05, momentum=0.8, nesterov=True),
     dict(learning_rate=0.05, momentum=0.8, nesterov=True)),
    ("adam", optim.Adam, dict(learning_rate=1e-2), dict(learning_rate=1e-2)),
    ("adam_custom", optim.Adam, dict(learning_rate=3e-3, b1=0.8, b2=0.99, eps=1e-6),
     dict(learning_rate=3e-3, b1=0.8, b2=0.99, eps=1e-6)),
    ("adamw", optim.AdamW, dict(learning_rate=1e-2, weight_decay=0.05), dict(learning_rate=1e-2, weight_decay=0.05)),
    ("adamw_default", optim.AdamW, dict(), dict(learning_rate=1e-3)),
    ("rmsprop", optim.RMSprop, dict(learning_rate=1e-2), dict(learning_rate=1e-2)),
    ("rmsprop_custom", optim.RMSprop, dict(learning_rate=5e-3, decay=0.95, eps=1e-4),
     dict(learning_rate=5e-3, decay=0.95, eps=1e-4)),
]
MAX_DEVIATION = {}


@pytest.mark.parametrize("name,ours_cls,ours_kw,optax_kw", CASES, ids=[c[0] for c in CASES])
def test_matches_optax_step_by_step(name, ours_cls, ours_kw, optax_kw):
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(STEPS)]
    params = [Tensor(a.copy(), requires_grad=True) for a in init]
    opt = ours_cls(params, **ours_kw)
    tx = getattr(optax, ours_cls.__name__.lower())(**optax_kw)
    ref = [jnp.asarray(a) for a in init]
    state = tx.init(ref)
    worst = 0.0
    for step in range(STEPS):
        for p, g in zip(params, grads[step], strict=True):
            p.grad = g.copy()
        opt.step()
        updates, state = tx.update([jnp.asarray(g) for g in grads[step]], state, ref)
        ref = optax.apply_updates(ref, updates)
        for p, r in zip(params, ref, strict=True):
            assert p.data.dtype == np.float32
            r = np.asarray(r)
            worst = max(worst, float(np.max(np.abs(p.data - r))))
            np.testing.assert_allclose(p.data, r, rtol=1e-5, atol=1e-6, err_msg=f"{name} step {step}")
    MAX_DEVIATION[name] = worst
    print(f"{name}: max |engine - optax| over {STEPS} steps = {worst:.3g}")


def test_negative_control_wrong_rule_is_caught():
    """RMSprop with eps outside the sqrt (not optax' rule) must differ from optax.rmsprop when eps is large."""
    rng = np.random.default_rng(2)
    a, g = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32) * 1e-2
    nu = 0.1 * g * g
    wrong = a - 0.1 * g / (np.sqrt(nu) + 1e-3)
    tx = optax.rmsprop(0.1, eps=1e-3)
    upd, _ = tx.update(jnp.asarray(g), tx.init(jnp.asarray(a)))
    right = np.asarray(optax.apply_updates(jnp.asarray(a), upd))
    p = Tensor(a.copy(), requires_grad=True)
    p.grad = g
    optim.RMSprop([p], 0.1, eps=1e-3).step()
    np.testing.assert_allclose(p.data, right, rtol=1e-5, atol=1e-7)
    assert np.max(np.abs(wrong - right)) > 1e-3


def test_zero_grad_and_missing_grad_is_zero_gradient():
    p = Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = optim.SGD([p], learning_rate=0.5, momentum=0.9)
    p.grad = np.ones(3, np.float32)
    opt.step()
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # momentum keeps moving with a zero gradient, as optax
    np.testing.assert_allclose(p.data, 1 - 0.5 - 0.5 * 0.9, rtol=1e-6)


def test_schedule_learning_rate_is_called_with_step_count():
    seen = []
    p = Tensor(np.zeros(2, np.float32), requires_grad=True)
    opt = optim.SGD([p], learning_rate=lambda count: seen.append(count) or 0.1)
    for _ in range(3):
        p.grad = np.ones(2, np.float32)
        opt.step()
    assert seen == [0, 1, 2]
    np.testing.assert_allclose(p.data, -0.3, rtol=1e-6)


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, learning_rate=-1), "learning_rate"),
    (lambda p: optim.SGD(p, momentum=1.5), "momentum"),
    (lambda p: optim.Adam(p, b1=1.0), "b1"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "weight_decay"),
    (lambda p: optim.RMSprop(p, 0.01, decay=2), "decay"),
    (lambda p: optim.Adam([], learning_rate=0.1), "params is empty"),
    (lambda p: optim.Adam(p + p), "twice"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make([Tensor(np.zeros(2, np.float32), requires_grad=True)])


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, momentum=0.9), optim.Adam, optim.AdamW,
                                  lambda p: optim.RMSprop(p, 1e-2)], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_frozen_tensor_is_refused_naming_index_and_shape(make):
    live = Tensor(np.ones(2, np.float32), requires_grad=True)
    frozen = Tensor(np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"params\[1\] \(shape \(3, 4\)\) has requires_grad=False"):
        make([live, frozen])
    opt = make([live])
    live.requires_grad = False  # frozen after construction: step refuses rather than decaying it
    live.grad = np.ones(2, np.float32)
    with pytest.raises(ValueError, match=r"\.step: params\[0\] \(shape \(2,\)\) has requires_grad=False"):
        opt.step()
    np.testing.assert_array_equal(live.data, 1.0)


def test_frozen_layer_is_left_out_of_parameters_and_not_moved_by_fit():
    from tinygrad_cnn import functional as F
    from tinygrad_cnn import nn
    nn.set_random_seed(0)
    model = nn.Sequential([nn.Input(shape=(4,)), nn.Dense(3, trainable=False), nn.Dense(2)])
    frozen = model.layers[0].get_weights()
    assert [tuple(p.shape) for p in model.parameters()] == [(3, 2), (2,)]
    model.compile(optim.AdamW(model.parameters(), learning_rate=0.1, weight_decay=0.5), F.cross_entropy)
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    before = model.layers[1].get_weights()
    model.fit(x, np.arange(8) % 2, batch_size=4, epochs=2, verbose=0)
    for w, f in zip(model.layers[0].get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(w, f)
    assert not np.allclose(model.layers[1].get_weights()[0], before[0])
    with pytest.raises(ValueError, match=r"params\[0\] \(shape \(4, 3\)\) has requires_grad=False"):
        optim.Adam([w for layer in model.layers for w in layer.weights])
