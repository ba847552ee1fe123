"""The losses (``tinygrad_cnn.losses``, as ``F.*``) against their JAX twin (``jax_ref.losses``, built on optax) in
float64: forward and ``v^T J`` with random cotangents for every float argument, hypothesis-drawn shapes (rank-0,
zero-size batches), every reduction and flag; second order (Hessian-vector products against ``jax.jvp`` of
``jax.grad``) where the loss is twice differentiable; PyTorch's meaning of ``nll_loss``, ``ignore_index``,
``label_smoothing``, ``kl_div`` and the logits BCE; bad arguments; negative controls.

Inputs are kept away from the kinks (|e| = delta for huber, 1 - t p = 0 for hinge, e = 0 for mae) and from the
clipping thresholds, where the derivative is not defined.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from agreement import Tally
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jax_ref.losses as J
import tinygrad_cnn as tg
from tinygrad_cnn import functional as F

STATS = Tally("losses (vs JAX/optax)")
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
BATCH = st.sampled_from([(), (3,), (2, 3), (0,), (1,)])
SEEDS = st.integers(0, 2**16)


def away(rng, shape, gap=0.1, scale=1.0):
    """Normal values at least ``gap`` away from 0."""
    x = rng.standard_normal(shape) * scale
    return np.where(x >= 0, x + gap, x - gap)


def compare(check_vjp, engine_fn, jax_fn, *arrays, seed=0):
    STATS.record(check_vjp(engine_fn, jax_fn, *arrays, seed=seed, tol=1e-10))


# -- first order ---------------------------------------------------------------------------------------------------
@SETTINGS
@given(batch=BATCH, classes=st.integers(1, 4), seed=SEEDS, labels=st.sampled_from(["int", "onehot", "soft"]),
       reduction=REDUCTIONS, from_logits=st.booleans(), smoothing=st.sampled_from([0.0, 0.1]),
       ignore=st.sampled_from([None, -1, 0]))
def test_cross_entropy(check_vjp, batch, classes, seed, labels, reduction, from_logits, smoothing, ignore):
    if not batch:
        batch = (2,)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, classes, batch)
    if ignore is not None:
        labels = "int"
        ids = np.where(rng.random(batch) < 0.4, ignore, ids)
    y = {"int": ids, "onehot": np.eye(classes)[ids], "soft": rng.dirichlet(np.ones(classes), batch)}[labels]
    x = rng.standard_normal(batch + (classes,)) * 3 if from_logits else rng.uniform(0.05, 1.0, batch + (classes,))
    kw = {"from_logits": from_logits, "reduction": reduction, "label_smoothing": smoothing, "ignore_index": ignore}
    compare(check_vjp, lambda t: F.cross_entropy(t, y, **kw), lambda t: J.cross_entropy(t, y, **kw), x, seed=seed)


def test_cross_entropy_soft_labels_in_the_graph(check_vjp, rng):
    """A float label Tensor that requires a gradient gets one (-log p), with smoothing."""
    kw = {"reduction": "sum", "label_smoothing": 0.2}
    compare(check_vjp, lambda x, y: F.cross_entropy(x, y, **kw), lambda x, y: J.cross_entropy(x, y, **kw),
            rng.standard_normal((4, 3)), rng.dirichlet(np.ones(3), 4))


@SETTINGS
@given(batch=BATCH, classes=st.integers(1, 4), seed=SEEDS, reduction=REDUCTIONS,
       ignore=st.sampled_from([None, -100, 1]))
def test_nll_loss(check_vjp, batch, classes, seed, reduction, ignore):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, classes, batch)
    if ignore is not None:
        ids = np.where(rng.random(batch) < 0.4, ignore, ids)
    log_p = np.asarray(jax.nn.log_softmax(rng.standard_normal(batch + (classes,))))
    kw = {"ignore_index": ignore, "reduction": reduction}
    compare(check_vjp, lambda t: F.nll_loss(t, ids, **kw), lambda t: J.nll_loss(t, ids, **kw), log_p, seed=seed)


@SETTINGS
@given(batch=BATCH, width=st.integers(1, 3), seed=SEEDS, reduction=REDUCTIONS, from_logits=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.2]), hard=st.booleans(), scale=st.sampled_from([1.0, 40.0]))
def test_binary_cross_entropy(check_vjp, batch, width, seed, reduction, from_logits, smoothing, hard, scale):
    rng = np.random.default_rng(seed)
    shape = batch + (width,) if batch else ()
    p = rng.standard_normal(shape) * scale if from_logits else rng.uniform(0.02, 0.98, shape)
    t = (rng.random(shape) < 0.5).astype(float) if hard else rng.random(shape)
    kw = {"from_logits": from_logits, "label_smoothing": smoothing, "reduction": reduction}
    compare(check_vjp, lambda a, b: F.binary_cross_entropy(a, b, **kw),
            lambda a, b: J.binary_cross_entropy(a, b, **kw), p, t, seed=seed)


def _elementwise_inputs(name, rng, shape, delta):
    """(predictions, targets) away from the loss' kinks."""
    p = rng.standard_normal(shape)
    if name == "huber":  # |e| in (0, 0.8 delta) or (1.2 delta, 2.5 delta)
        mag = np.where(rng.random(shape) < 0.5, rng.uniform(0.05, 0.8, shape), rng.uniform(1.2, 2.5, shape)) * delta
        return p, p - np.where(rng.random(shape) < 0.5, mag, -mag)
    if name == "hinge":  # margins 1 - t p away from 0; targets -1/1 or 0/1
        t = np.where(rng.random(shape) < 0.5, 1.0, -1.0)
        margin = away(rng, shape, 0.1)
        p = (1.0 - margin) * t
        return p, (t + 1) / 2 if rng.random() < 0.5 else t
    if name == "kl_div":
        return rng.uniform(0.01, 0.99, shape), rng.uniform(0.01, 0.99, shape)
    return p, p + away(rng, shape)


ELEMENTWISE = {
    "mse": (F.mse, J.mse, {}), "mae": (F.mae, J.mae, {}), "huber": (F.huber, J.huber, {"delta": 0.7}),
    "hinge": (F.hinge, J.hinge, {}), "kl_div": (F.kl_div, J.kl_div, {}),
}


@SETTINGS
@given(name=st.sampled_from(sorted(ELEMENTWISE)), batch=BATCH, width=st.integers(1, 3), seed=SEEDS,
       reduction=REDUCTIONS)
def test_elementwise_losses(check_vjp, name, batch, width, seed, reduction):
    engine, twin, kw = ELEMENTWISE[name]
    rng = np.random.default_rng(seed)
    shape = batch + (width,) if batch else ()
    p, t = _elementwise_inputs(name, rng, shape, kw.get("delta", 1.0))
    kw = {**kw, "reduction": reduction}
    compare(check_vjp, lambda a, b: engine(a, b, **kw), lambda a, b: twin(a, b, **kw), p, t, seed=seed)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_kl_div_of_log_predictions(check_vjp, rng, reduction):
    log_q = np.asarray(jax.nn.log_softmax(rng.standard_normal((2, 3, 4))))
    t = rng.dirichlet(np.ones(4), (2, 3))
    kw = {"reduction": reduction, "log_predictions": True}
    compare(check_vjp, lambda a, b: F.kl_div(a, b, **kw), lambda a, b: J.kl_div(a, b, **kw), log_q, t)
    t[0, 0] = [0.0, 0.5, 0.5, 0.0]  # 0 log 0 = 0 in the forward (optax's gradient wrt such a target is NaN)
    np.testing.assert_allclose(F.kl_div(log_q, t, **kw).data, J.kl_div(log_q, t, **kw), rtol=1e-13)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "binary_cross_entropy", "kl_div", "hinge"])
def test_non_contiguous_inputs_give_the_contiguous_result(loss, rng):
    p, t = rng.uniform(0.05, 0.95, (4, 3)).T, rng.uniform(0.05, 0.95, (4, 3)).T  # transposed views
    fn = getattr(F, loss)
    a, b = tg.Tensor(p, requires_grad=True), tg.Tensor(np.ascontiguousarray(p), requires_grad=True)
    out_a, out_b = fn(a, t, reduction="sum"), fn(b, np.ascontiguousarray(t), reduction="sum")
    out_a.backward()
    out_b.backward()
    assert out_a.item() == out_b.item()
    np.testing.assert_array_equal(a.grad, b.grad)


# -- second order ----------------------------------------------------------------------------------------------------
R = np.random.default_rng(11)
_LOGITS, _IDS = R.standard_normal((5, 4)) * 2, np.array([0, 3, -1, 1, 3])
_P, _T = R.uniform(0.05, 0.95, (5, 3)), R.uniform(0.05, 0.95, (5, 3))
_X = R.standard_normal((5, 3))
SECOND = {  # name: (engine f(x), jax f(x), x) with scalar outputs; the other arguments are constants
    "cross_entropy_logits": (lambda x: F.cross_entropy(x, _IDS, ignore_index=-1, label_smoothing=0.1),
                             lambda x: J.cross_entropy(x, _IDS, ignore_index=-1, label_smoothing=0.1), _LOGITS),
    "cross_entropy_probabilities": (lambda x: F.cross_entropy(x, _IDS % 4, from_logits=False, reduction="sum"),
                                    lambda x: J.cross_entropy(x, _IDS % 4, from_logits=False, reduction="sum"),
                                    R.uniform(0.1, 1.0, (5, 4))),
    "nll_loss_of_log_softmax": (lambda x: F.nll_loss(F.log_softmax(x), _IDS, ignore_index=-1),
                                lambda x: J.nll_loss(jax.nn.log_softmax(x), _IDS, ignore_index=-1), _LOGITS),
    "bce_logits": (lambda x: F.binary_cross_entropy(x, _T, from_logits=True, label_smoothing=0.1),
                   lambda x: J.binary_cross_entropy(x, _T, from_logits=True, label_smoothing=0.1), _X * 3),
    "bce_probabilities": (lambda x: F.binary_cross_entropy(x, _T, reduction="sum"),
                          lambda x: J.binary_cross_entropy(x, _T, reduction="sum"), _P),
    "mse": (lambda x: F.mse(x, _T), lambda x: J.mse(x, _T), _X),
    "huber": (lambda x: F.huber(x, _T, delta=0.8), lambda x: J.huber(x, _T, delta=0.8),
              _T + np.where(R.random((5, 3)) < 0.5, 0.4, 1.5) * np.sign(_X)),
    "kl_div": (lambda x: F.kl_div(x, _T), lambda x: J.kl_div(x, _T), _P),
    "kl_div_log": (lambda x: F.kl_div(x, _T, log_predictions=True, reduction="sum"),
                   lambda x: J.kl_div(x, _T, log_predictions=True, reduction="sum"), _X),
}


def hvp_error(engine_f, jax_f, x0, seed=0) -> float:
    """max relative error of the engine's H v (grad of <grad f, v>) against jax.jvp of jax.grad."""
    v = np.random.default_rng(seed).standard_normal(x0.shape)
    x = tg.Tensor(x0, requires_grad=True)
    (g,) = tg.grad(engine_f(x), [x], create_graph=True)
    (hv,) = tg.grad((g * tg.Tensor(v)).sum(), [x])
    ref = jax.jvp(jax.grad(jax_f), (jnp.asarray(x0),), (jnp.asarray(v),))[1]
    return float(np.max(np.abs(hv.data - ref)) / max(float(np.max(np.abs(ref))), 1e-12))


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_order(name):
    engine_f, jax_f, x0 = SECOND[name]
    STATS.record(hvp_error(engine_f, jax_f, x0))


# -- PyTorch's meaning -------------------------------------------------------------------------------------------
def test_torch_conventions(rng):
    """nll_loss / cross_entropy with ignore_index and label_smoothing ("mean" over the examples not ignored),
    kl_div on log-probabilities ("mean" = torch's "batchmean"), the logits BCE, huber: as torch.nn.functional."""
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, ids = rng.standard_normal((6, 4)), np.array([0, 3, -100, 1, -100, 2])
    for red in ("mean", "sum", "none"):
        np.testing.assert_allclose(
            F.cross_entropy(x, ids, reduction=red, ignore_index=-100, label_smoothing=0.2).data,
            tf.cross_entropy(torch.tensor(x), torch.tensor(ids), reduction=red, label_smoothing=0.2).numpy(),
            rtol=1e-12)
        np.testing.assert_allclose(F.nll_loss(F.log_softmax(x), ids, ignore_index=-100, reduction=red).data,
                                   tf.nll_loss(tf.log_softmax(torch.tensor(x), 1), torch.tensor(ids),
                                               reduction=red).numpy(), rtol=1e-12)
    t = rng.dirichlet(np.ones(4), 6)
    log_q = np.asarray(jax.nn.log_softmax(x))
    np.testing.assert_allclose(F.kl_div(log_q, t, log_predictions=True).data,
                               tf.kl_div(torch.tensor(log_q), torch.tensor(t), reduction="batchmean").numpy(),
                               rtol=1e-12)
    tb = rng.random((6, 4))
    np.testing.assert_allclose(F.binary_cross_entropy(x * 20, tb, from_logits=True).data,
                               tf.binary_cross_entropy_with_logits(torch.tensor(x * 20), torch.tensor(tb)).numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(F.huber(x, tb, delta=0.5).data,
                               tf.huber_loss(torch.tensor(x), torch.tensor(tb), delta=0.5).numpy(), rtol=1e-12)


def test_every_example_ignored_gives_zero_not_nan():
    out = F.cross_entropy(np.ones((3, 2)), np.full(3, -1), ignore_index=-1)
    assert out.item() == 0.0 and float(J.cross_entropy(np.ones((3, 2)), np.full(3, -1), ignore_index=-1)) == 0.0


def test_logits_bce_is_finite_and_accurate_at_large_logits():
    x = tg.Tensor(np.array([[-1000.0], [-30.0], [30.0], [1000.0]]), requires_grad=True)
    t = np.array([[0.0], [0.0], [1.0], [1.0]])
    out = F.binary_cross_entropy(x, t, from_logits=True, reduction="none")
    out.sum().backward()
    np.testing.assert_allclose(out.data, np.log1p(np.exp(-np.abs(x.data[:, 0]))), rtol=1e-14)
    assert np.all(np.isfinite(x.grad))


# -- negative controls ---------------------------------------------------------------------------------------------
def test_controls_catch_a_wrong_reduction_and_a_wrong_second_derivative(check_vjp, rng):
    ids = np.array([0, -1, 1, 2])
    x = rng.standard_normal((4, 3))
    with pytest.raises(AssertionError):  # "mean" over all examples is not "mean" over the ones not ignored
        check_vjp(lambda t: F.cross_entropy(t, ids, ignore_index=-1),
                  lambda t: jnp.sum(J.cross_entropy(t, ids, ignore_index=-1, reduction="none")) / len(ids), x,
                  record=False)
    engine_f, _, x0 = SECOND["huber"]
    assert hvp_error(engine_f, lambda a: J.huber(a, _T, delta=0.3), x0) > 0.5  # errors of 0.4 turn linear


# -- bad arguments ------------------------------------------------------------------------------------------------
BAD = [
    (lambda: F.cross_entropy(-np.ones((2, 3)), np.array([0, 1]), from_logits=False), ValueError,
     r"cross_entropy: from_logits=False expects logits to be probabilities .*value -1: these look like logits"),
    (lambda: F.binary_cross_entropy(np.full((2, 1), 1.5), np.ones((2, 1))), ValueError,
     r"binary_cross_entropy: from_logits=False expects predictions to be probabilities in \[0, 1\].*1.5"),
    (lambda: F.cross_entropy(np.ones((2, 3)), np.array([0, 1]), label_smoothing=1.5), ValueError,
     r"cross_entropy: label_smoothing must be in \[0.0, 1.0\]; got 1.5"),
    (lambda: F.cross_entropy(np.ones((2, 3)), np.eye(3)[:2], ignore_index=0), ValueError,
     r"cross_entropy: ignore_index=0 needs integer class ids as labels; got labels of dtype float64"),
    (lambda: F.nll_loss(np.ones((2, 3)), np.array([0, 1]), ignore_index=0.5), TypeError,
     r"nll_loss: ignore_index must be an int class id or None; got 0.5"),
    (lambda: F.nll_loss(np.ones((2, 3)), np.array([0, 5])), ValueError,
     r"nll_loss: labels must be class ids in \[0, 3\); got 5"),
    (lambda: F.huber(np.ones(2), np.ones(2), delta=0), ValueError, r"huber: delta must be > 0"),
    (lambda: F.mae(np.ones(2), np.ones(3)), ValueError, r"mae: predictions have shape \(2,\) but targets .*\(3,\)"),
    (lambda: F.kl_div(np.zeros(2), -np.ones(2), log_predictions=True), ValueError,
     r"kl_div: targets must be probabilities \(>= 0\); got the value -1"),
    (lambda: F.hinge(np.ones(2), np.ones(2), reduction="avg"), ValueError, r"hinge: reduction='avg' is not one of"),
    (lambda: F.binary_cross_entropy(np.ones(2), np.ones(2), from_logits=1), TypeError,
     r"binary_cross_entropy: from_logits must be True or False; got 1"),
]


@pytest.mark.parametrize("call,error,message", BAD)
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_zz_report():
    """Prints how many configurations were compared with JAX and the worst relative error (run with -s)."""
    STATS.report()
