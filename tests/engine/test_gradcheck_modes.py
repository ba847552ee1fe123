"""The deeper checker: order 2, forward mode, the two modes against each other, the batched check; each with a
negative control it must catch, and kinks flagged in every mode and order."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import gradcheck as gc


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


class CubeConstantSlope(tg.Function):
    """y = x^3 whose vjp multiplies by 3x^2 computed on arrays: right first derivative, second derivative 0."""

    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def vjp(ctx, g):
        return (g * tg.Tensor(3 * ctx.inputs[0].data ** 2),)


class CubeDetachedCotangent(tg.Function):
    """y = x^3 whose vjp reads the cotangent's array: right vjp values, but the recorded vjp is not linear in g,
    so the jvp built from it (the double-vjp) is 0: a wrong jvp."""

    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def vjp(ctx, g):
        x = ctx.inputs[0]
        return (tg.Tensor(g.data) * x * x * 3.0,)


def cnn(kernel):
    """conv -> softplus -> max-pool on NCHW, a sample at a time (no coupling across the batch)."""
    return lambda x: F.max_pool(F.softplus(F.conv2d(x, kernel, data_format="channels_first")), 2,
                                data_format="channels_first")


def test_order_two_both_modes_and_batched_pass_on_a_cnn_composite():
    kernel = tg.Tensor(0.3 * normal(3, 3, 2, 3, seed=1), requires_grad=True)
    report = gc.assert_gradcheck(cnn(kernel), [normal(2, 2, 6, 6)], params={"kernel": kernel}, order=2,
                                 modes=("rev", "fwd"), batched=True, max_full=80, n_projections=3)
    kinds = {(t.name, t.ad_mode, t.order) for t in report.tensors}
    assert kinds == {(n, m, o) for n in ("inputs[0]", "kernel") for m in ("rev", "fwd", "fwd-vs-rev")
                     for o in (1, 2)} | {("inputs[0]", "batched", 1), ("kernel", "batched", 1)}
    assert report["kernel", "fwd-vs-rev", 2].max_rel_error < 1e-12  # no finite step: rounding only
    assert report["inputs[0]", "fwd", 2].mode == "projection" and report["kernel", "rev", 1].mode == "full"


def test_wrong_second_derivative_is_caught_at_order_two_only():
    x = [np.array([0.7, -1.3, 2.1])]
    assert gc.gradcheck(CubeConstantSlope.apply, x).passed
    report = gc.gradcheck(CubeConstantSlope.apply, x, order=2, modes=("rev", "fwd"))
    assert [t.label for t in report.failures] == ["inputs[0] (rev, order 2)", "inputs[0] (fwd, order 2)"]
    bad = report["inputs[0]", "rev", 2]
    assert bad.grade == "wrong" and bad.autodiff == 0.0 and bad.numerical != 0.0
    text = str(report)
    assert "FAILED for inputs[0] (rev, order 2), inputs[0] (fwd, order 2)" in text
    assert f"{bad.numerical:.10g}" in text and str(bad.worst_index) in text


def test_wrong_jvp_is_caught_by_forward_mode_and_by_the_mode_comparison():
    x = [np.array([0.7, -1.3, 2.1])]
    report = gc.gradcheck(CubeDetachedCotangent.apply, x, modes=("rev", "fwd"))
    assert report["inputs[0]"].passed  # reverse mode alone cannot see it
    assert {t.ad_mode for t in report.failures} == {"fwd", "fwd-vs-rev"}
    fwd = report["inputs[0]", "fwd"]
    assert fwd.autodiff == 0.0 and fwd.numerical == pytest.approx(3 * 0.7 ** 2, rel=1e-6)
    assert fwd.worst_index == "(0,) -> out[0]"  # the direction and the output element


def test_batched_check_catches_a_function_that_mixes_samples():
    x = normal(3, 4, seed=2)
    assert gc.gradcheck(lambda x: x.tanh() * 2.0, [x], batched=True).passed
    report = gc.gradcheck(lambda x: (x - x.mean(axis=0)).tanh(), [x], batched=True)
    assert report["inputs[0]"].passed and not report["inputs[0]", "batched"].passed


@pytest.mark.parametrize("modes", [("rev",), ("fwd",)])
def test_kinks_are_flagged_at_order_two(modes):
    """relu(x)^2 has a second derivative that jumps at 0: an element within eps of it is flagged, not failed."""
    x = np.array([0.3e-6, 1.0, -2.0, 0.5])
    report = gc.gradcheck(lambda x: F.relu(x) ** 2, [x], order=2, modes=modes)
    second = report["inputs[0]", modes[0], 2]
    assert second.kinks == [(0,)] and second.kink_max_rel_error > 1e-2 and report.passed


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="order must be 1 .* or 2 .*; got 3"):
        gc.gradcheck(lambda x: x, [normal(2)], order=3)
    with pytest.raises(ValueError, match=r"modes must be .* from \('rev', 'fwd'\).*got \('sideways',\)"):
        gc.gradcheck(lambda x: x, [normal(2)], modes=("sideways",))
    with pytest.raises(ValueError, match=r"batched=True needs every output to have the batch"):
        gc.gradcheck(lambda x: x.sum(), [normal(2, 3)], batched=True)
    with pytest.raises(KeyError, match="no tensor named 'inputs\\[0\\]' checked in mode 'fwd' at order 1"):
        gc.gradcheck(lambda x: x * x, [normal(2)])["inputs[0]", "fwd"]


def test_the_guide_runs():
    """docs/checking_gradients.md: its code blocks run in order and its assertions hold."""
    import pathlib
    import re

    guide = pathlib.Path(__file__).parents[2] / "docs" / "checking_gradients.md"
    exec(compile("\n".join(re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)), str(guide), "exec"), {})
