"""The gradient checker: it passes correct gradients, catches wrong ones, flags kinks, reports clearly."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import gradcheck as gc
from tinygrad_cnn import ops


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


class OffByOnePercentExp(tg.Function):
    """exp with a vjp 1% too large: the negative control."""

    @staticmethod
    def forward(ctx, x):
        return np.exp(x)

    @staticmethod
    def vjp(ctx, g):
        return (g * ctx.output * 1.01,)


class IgnoresCotangent(tg.Function):
    """y = 3x whose vjp returns 3 (right only for a cotangent of ones)."""

    @staticmethod
    def forward(ctx, x):
        return 3 * x

    @staticmethod
    def vjp(ctx, g):
        return (ops.constant(np.full(g.shape, 3.0)),)


def test_grade_scale_and_constants():
    assert (gc.GOOD, gc.FINE_WITH_KINKS, gc.WRONG) == (1e-7, 1e-4, 1e-2)
    assert [gc.grade(r) for r in (0.0, 1e-7, 2e-7, 1e-4, 2e-4, 1e-2, 0.02, np.nan, np.inf)] == [
        "good", "good", "fine-with-kinks", "fine-with-kinks", "suspect", "suspect", "wrong", "wrong", "wrong"]
    np.testing.assert_allclose(gc.relative_error([1.0, 0.0, 1e-12], [1.01, 0.0, 0.0]), [0.01 / 2.01, 0, 1e-4])


def test_composite_with_inputs_and_params_passes():
    w = tg.Tensor(normal(4, 3, seed=1), requires_grad=True)
    b = tg.Tensor(normal(3, seed=2), requires_grad=True)
    labels = np.array([0, 2, 1, 1, 0])

    def loss(x, y):
        return F.cross_entropy(F.tanh(F.dense(x, w, b)) * 3.0, y, reduction="none")

    report = gc.assert_gradcheck(loss, [normal(5, 4), labels], params={"kernel": w, "bias": b})
    assert [t.name for t in report.tensors] == ["inputs[0]", "kernel", "bias"]
    assert all(t.mode == "full" and t.grade == "good" and not t.kinks for t in report.tensors)
    assert report["kernel"].checked == 12 and report["kernel"].shape == (4, 3)
    assert report.max_rel_error <= gc.GOOD
    assert w.grad is None and w.dtype == np.float64  # untouched


def test_params_as_a_list_and_float32_are_restored_with_a_warning():
    w = tg.Tensor(normal(3, 2).astype(np.float32), requires_grad=True)
    before = w.data

    with pytest.warns(gc.GradcheckWarning, match=r"params\[0\] is float32; it is checked as a float64 copy"):
        report = gc.gradcheck(lambda x: F.sigmoid(x @ w), [normal(4, 3)], params=[w])
    assert report.passed and report["params[0]"].grade == "good"
    assert w.data is before and w.dtype == np.float32 and w.requires_grad


def test_float32_input_is_checked_as_float64_with_a_warning():
    with pytest.warns(gc.GradcheckWarning, match=r"inputs\[0\] is float32"):
        report = gc.gradcheck(lambda x: x.exp(), [normal(3).astype(np.float32)])
    assert report.passed and report.max_rel_error <= gc.GOOD


def test_large_tensors_use_projections():
    x = normal(30, 40)
    report = gc.gradcheck(lambda x: F.softplus(x).sum(0) * x[0], [x], max_full=100, n_projections=8)
    t = report["inputs[0]"]
    assert t.mode == "projection" and t.checked == 8 and str(t.worst_index).startswith("u")
    assert t.passed and t.grade == "good"
    assert report.evaluations == 1 + 2 * 8


def test_wrong_vjp_is_caught_with_a_readable_table():
    """Negative control: a 1% error in one vjp fails, and the table names the tensor and both values."""
    w = tg.Tensor(normal(3, 2), requires_grad=True)
    with pytest.raises(AssertionError) as info:
        gc.assert_gradcheck(lambda x: OffByOnePercentExp.apply(x) @ w, [normal(4, 3)], params={"w": w})
    text = str(info.value)
    assert "FAILED for inputs[0] (rev, order 1)" in text and "suspect FAIL" in text
    for column in ("tensor", "shape", "max abs", "max rel", "worst", "autodiff", "numerical", "grade", "kinks"):
        assert column in text
    report = gc.gradcheck(lambda x: OffByOnePercentExp.apply(x) @ w, [normal(4, 3)], params={"w": w})
    bad = report["inputs[0]"]
    assert not bad.passed and 1e-3 < bad.max_rel_error < 1e-2
    assert np.isclose(bad.autodiff / bad.numerical, 1.01, rtol=1e-6)
    assert report["w"].passed  # the kernel's gradient does not go through the bad vjp


def test_wrong_vjp_is_caught_in_projection_mode():
    report = gc.gradcheck(lambda x: OffByOnePercentExp.apply(x), [normal(50, 50)], max_full=10, n_projections=4)
    assert not report.passed and report["inputs[0]"].mode == "projection"


def test_vjp_ignoring_the_cotangent_is_caught():
    """A check with a ones cotangent would pass this; the random cotangent does not."""
    report = gc.gradcheck(IgnoresCotangent.apply, [normal(2, 3)])
    assert report["inputs[0]"].grade == "wrong"


def test_kink_within_eps_is_flagged_not_failed():
    x = np.array([0.3e-6, 1.0, -2.0, 0.5])  # relu's kink at 0 lies within eps = 1e-6 of x[0]
    report = gc.gradcheck(F.relu, [x])
    t = report["inputs[0]"]
    assert t.kinks == [(0,)] and t.kink_max_rel_error > 1e-2
    assert t.passed and t.grade == "good"
    assert "kinks" in str(report) and report.any_kinks


def test_max_winner_change_is_flagged():
    x = np.array([[1.0, 1.0 + 1e-7, 0.2], [0.0, 3.0, -1.0]])
    report = gc.gradcheck(lambda x: x.max(axis=1), [x])
    assert set(report["inputs[0]"].kinks) == {(0, 0), (0, 1)}
    assert report.passed


def test_clip_bound_within_eps_is_flagged():
    report = gc.gradcheck(lambda x: x.clip(0.0, 1.0), [np.array([1.0 + 1e-7, 0.5, -0.3])])
    assert report["inputs[0]"].kinks == [(0,)]


def test_no_kinks_away_from_kinks():
    x = normal(4, 5)
    x = np.where(np.abs(x) < 1e-3, 0.5, x)
    report = gc.gradcheck(lambda x: F.relu(x).max(axis=0) + ops.abs(x).sum(0), [x])
    assert not report.any_kinks and report.passed


def test_dropout_without_seed_is_pinned():
    """Unseeded dropout would draw a new mask at each evaluation; gradcheck pins the draws."""
    report = gc.assert_gradcheck(lambda x: F.dropout(x, 0.5, training=True) * x, [normal(4, 4)])
    assert report.max_rel_error <= gc.GOOD


def test_nondeterministic_fn_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="fn is not deterministic"):
        gc.gradcheck(lambda x: F.dropout(x, 0.5, training=True, seed=rng), [normal(3, 3)])


def test_bad_arguments():
    with pytest.raises(TypeError, match="fn must be callable; got int"):
        gc.gradcheck(3, [normal(2)])
    with pytest.raises(TypeError, match="fn must return a Tensor; got ndarray"):
        gc.gradcheck(lambda x: x.data, [normal(2)])
    with pytest.raises(ValueError, match="eps must be a positive float; got -1"):
        gc.gradcheck(lambda x: x, [normal(2)], eps=-1.0)
    with pytest.raises(TypeError, match=r"params\[0\] must be a floating Tensor.*got ndarray"):
        gc.gradcheck(lambda x: x, [normal(2)], params=[normal(2)])
    with pytest.raises(ValueError, match="NaN or Inf"):
        gc.gradcheck(lambda x: x.log(), [np.array([-1.0, 1.0])])


def test_report_is_programmatic_and_deterministic():
    fn = lambda x: F.log_softmax(x * x)  # noqa: E731
    a, b = gc.gradcheck(fn, [normal(3, 4)], seed=5), gc.gradcheck(fn, [normal(3, 4)], seed=5)
    assert a.tensors[0].max_abs_error == b.tensors[0].max_abs_error
    assert a.seed == 5 and a.eps == 1e-6 and a.atol > 0 and a.passed
    with pytest.raises(KeyError, match="no tensor named 'nope'"):
        a["nope"]
