"""Learning-rate schedules equal to optax' step for step (float64), schedules / global-norm clipping / AdamW's mask
inside the optimizers equal to optax, and engine-vs-twin training with a schedule."""

import os

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.optim import schedules as S

os.environ.setdefault("KERAS_BACKEND", "jax")
optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")
jnp = jax.numpy
jax_ref = pytest.importorskip("jax_ref")
from jax_ref._report import float64  # noqa: E402
from jax_ref.train import optax_schedule  # noqa: E402

STEPS = 300
SCHEDULES = [
    S.constant_schedule(0.3),
    S.polynomial_schedule(1.0, 0.01, 2.0, 150, transition_begin=20),
    S.polynomial_schedule(1.0, 0.5, 1.5, 0),  # no transition: the constant init_value (optax' rule)
    S.linear_schedule(0.1, 0.0, 200, transition_begin=5),
    S.piecewise_constant_schedule(0.1, {10: 0.5, 100: 0.1, 101: 3.0}),
    S.exponential_decay(0.1, 17, 0.9),
    S.exponential_decay(0.1, 7, 0.5, transition_begin=5, staircase=True, end_value=1e-3),
    S.exponential_decay(0.01, 25, 1.2, end_value=0.05),  # growing, clipped from above
    S.cosine_decay_schedule(0.1, 250, alpha=0.1, exponent=2.0),
    S.warmup_cosine_decay_schedule(0.0, 0.1, 30, 260, end_value=1e-3),
    S.warmup_exponential_decay_schedule(1e-3, 0.1, 20, 15, 0.8, staircase=True, end_value=1e-3),
    S.warmup_constant_schedule(0.0, 0.2, 45),
    S.join_schedules([S.constant_schedule(0.1), S.cosine_decay_schedule(0.1, 100)], [50]),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[f"{s.name}{i}" for i, s in enumerate(SCHEDULES)])
def test_schedule_equals_optax_step_for_step(schedule):
    with float64():
        reference = optax_schedule(schedule)  # optax' own function of that name and arguments
        assert reference is not schedule
        ref = np.asarray(reference(jnp.arange(STEPS)))  # optax' formulas are elementwise in the count
    ours = np.asarray([schedule(c) for c in range(STEPS)])
    np.testing.assert_allclose(ours, ref, rtol=1e-14, atol=1e-16)
    assert np.ptp(ours) > 0 or schedule.name in ("constant_schedule", "polynomial_schedule")


def test_schedules_round_trip_through_json():
    import json

    for schedule in SCHEDULES + [S.inverse_time_decay(0.1, 10, 0.5)]:
        again = S.deserialize(json.loads(json.dumps(schedule.get_config())))
        assert [again(c) for c in range(0, STEPS, 7)] == [schedule(c) for c in range(0, STEPS, 7)]
    with pytest.raises(ValueError, match="schedules.deserialize: expected"):
        S.deserialize({"name": "Schedule", "config": {}})


def test_negative_control_an_off_by_one_count_is_caught():
    schedule = S.exponential_decay(0.1, 7, 0.5, staircase=True)
    ours = np.asarray([schedule(c + 1) for c in range(STEPS)])
    ref = np.asarray(optax.exponential_decay(0.1, 7, 0.5, staircase=True)(jnp.arange(STEPS)))
    assert not np.allclose(ours, ref, rtol=1e-6)


def test_inverse_time_and_exponential_decay_equal_keras():
    keras = pytest.importorskip("keras")
    steps = np.arange(0, 200, 7)
    pairs = [(S.inverse_time_decay(0.1, 10, 0.5), keras.optimizers.schedules.InverseTimeDecay(0.1, 10, 0.5)),
             (S.inverse_time_decay(0.1, 10, 0.5, staircase=True),
              keras.optimizers.schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True)),
             (S.exponential_decay(0.1, 10, 0.9, staircase=True),
              keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9, staircase=True))]
    for ours, theirs in pairs:
        np.testing.assert_allclose([ours(s) for s in steps], [float(theirs(int(s))) for s in steps], rtol=1e-6)
    with float64():  # optax has no inverse-time schedule: the twin runs the engine's formula on jax.numpy
        twin = optax_schedule(pairs[1][0])
        np.testing.assert_allclose(np.asarray(twin(jnp.asarray(steps))), [pairs[1][0](s) for s in steps], rtol=1e-15)


SHAPES = [(3, 4), (5,), (2, 3)]


def _run(make_ours, tx, steps=8, scale=1.0):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in SHAPES]  # float64
    grads = [[scale * rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]
    params = [Tensor(a.copy(), requires_grad=True) for a in init]
    opt = make_ours(params)
    with float64():
        ref = [jnp.asarray(a) for a in init]
        state = tx.init(ref)
        update = jax.jit(tx.update)
        worst = 0.0
        for g in grads:
            for p, gi in zip(params, g, strict=True):
                p.grad = gi.copy()
            opt.step()
            updates, state = update([jnp.asarray(gi) for gi in g], state, ref)
            ref = optax.apply_updates(ref, updates)
            worst = max(worst, max(float(np.max(np.abs(p.data - np.asarray(r)))) for p, r in zip(params, ref,
                                                                                                   strict=True)))
    return worst, [p.data for p in params], [np.asarray(r) for r in ref]


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_every_optimizer_takes_a_schedule_as_optax(name):
    schedule = S.warmup_cosine_decay_schedule(0.0, 0.05, 4, 12, end_value=1e-3)
    kwargs = {"rmsprop": {"decay": 0.9, "eps": 1e-8}, "sgd": {"momentum": 0.9}}.get(name, {})
    worst, _, _ = _run(lambda p: optim.OPTIMIZERS[name](p, learning_rate=schedule, **kwargs),
                       getattr(optax, name)(optax_schedule(schedule), **kwargs))
    assert worst < 1e-12, worst


@pytest.mark.parametrize("scale", [0.05, 10.0], ids=["below_max_norm", "clipped"])
def test_global_clipnorm_equals_optax_clip_by_global_norm(scale):
    worst, ours, _ = _run(lambda p: optim.Adam(p, 1e-2, global_clipnorm=1.0),
                          optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2)), scale=scale)
    assert worst < 1e-12, worst
    # negative control: without clipping the clipped run differs
    _, plain, _ = _run(lambda p: optim.Adam(p, 1e-2), optax.adam(1e-2), scale=scale)
    assert (max(float(np.max(np.abs(a - b))) for a, b in zip(ours, plain, strict=True)) > 1e-6) == (scale > 1)


def test_clip_by_global_norm_function():
    grads = [np.full(4, 3.0), np.full(1, 4.0 * np.sqrt(3))]  # global norm sqrt(36 + 48) = sqrt(84)
    out = optim.clip_by_global_norm(grads, 1.0)
    assert np.sqrt(sum(np.sum(g ** 2) for g in out)) == pytest.approx(1.0)
    assert optim.clip_by_global_norm(grads, 10.0) is grads


@pytest.mark.parametrize("mask", [[True, False, True], lambda params: [p.ndim > 1 for p in params]],
                         ids=["list", "callable"])
def test_adamw_mask_equals_optax_mask(mask):
    optax_mask = mask if isinstance(mask, list) else (lambda params: [p.ndim > 1 for p in params])
    worst, ours, _ = _run(lambda p: optim.AdamW(p, 1e-2, weight_decay=0.5, mask=mask),
                          optax.adamw(1e-2, weight_decay=0.5, mask=optax_mask))
    assert worst < 1e-12, worst
    _, unmasked, _ = _run(lambda p: optim.AdamW(p, 1e-2, weight_decay=0.5), optax.adamw(1e-2, weight_decay=0.5))
    assert not np.allclose(ours[1], unmasked[1])  # the bias-like vector (excluded above) decays without the mask


def test_a_negative_or_non_finite_rate_is_refused_when_it_happens():
    p = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], learning_rate=S.linear_schedule(0.1, -0.1, 4))  # negative from count 3 on
    for _ in range(3):
        p.grad = np.ones(3)
        opt.step()
    before = p.data.copy()
    with pytest.raises(ValueError, match=r"schedule linear_schedule\(.*\) gave -0\.05 at step 3; a learning rate "
                                         r"must be a finite number >= 0"):
        opt.step()
    np.testing.assert_array_equal(p.data, before)
    assert opt.count == 3
    opt.learning_rate = lambda count: float("nan")
    with pytest.raises(ValueError, match="gave nan at step 3"):
        opt.step()


@pytest.mark.parametrize("make,match", [
    (lambda: S.cosine_decay_schedule(0.1, 0), "decay_steps must be > 0"),
    (lambda: S.exponential_decay(0.1, 1.5, 0.9), "transition_steps must be an integer"),
    (lambda: S.piecewise_constant_schedule(0.1, {5: -1.0}), "scales must be >= 0"),
    (lambda: S.warmup_cosine_decay_schedule(0.0, 0.1, 10, 10), "must be > warmup_steps"),
    (lambda: S.linear_schedule(float("inf"), 0.0, 10), "init_value must be a finite number"),
    (lambda: S.join_schedules([S.constant_schedule(0.1)], [3]), "1 schedules need 0 boundaries"),
    (lambda: optim.AdamW([Tensor(np.ones(2), requires_grad=True)], mask=[True, False]), "one bool per parameter"),
    (lambda: optim.Adam([Tensor(np.ones(2), requires_grad=True)], global_clipnorm=-1), "global_clipnorm"),
])
def test_bad_schedule_and_optimizer_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_engine_and_twin_train_alike_with_a_schedule_clipping_and_a_decay_mask():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((64, 6, 6, 1)), rng.integers(0, 3, 64)
    nn.set_random_seed(0)
    model = nn.Sequential([nn.Input((6, 6, 1)), nn.Conv2D(3, 3, activation="tanh"), nn.Flatten(), nn.Dense(3)])
    schedule = S.warmup_cosine_decay_schedule(0.0, 0.05, 5, 30, end_value=1e-3)
    result = jax_ref.parity(model, x, y, "adamw", steps=30, batch_size=16, learning_rate=schedule, dtype="float64",
                            global_clipnorm=0.5, weight_decay=0.1, mask=[True, False, True, False])
    assert result.max_rel_loss_deviation < 1e-12, str(result)
    assert result.max_rel_param_deviation < 1e-11, str(result)
    assert result.engine_losses[-1] < result.engine_losses[0]
