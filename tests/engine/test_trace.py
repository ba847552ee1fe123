"""trace(): the printed backward pass gives the same gradients as backward, and leaves the graph alone."""

import io

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.trace import graph_nodes


def _diamond():
    x = tg.Tensor(np.float64(1.5), requires_grad=True)
    y = tg.Tensor(np.float64(-0.7), requires_grad=True)
    a = x * y                  # a fans out to three consumers
    b = a.tanh() + x           # x fans out too
    c = a * b
    out = c + a.exp() * 0.5 + x * x   # x * x: the same input twice
    return x, y, a, out


def test_trace_scalar_diamond_matches_backward():
    x, y, a, out = _diamond()
    buf = io.StringIO()
    steps = tg.trace(out, names={"x": x, "y": y, "a": a, "out": out}, file=buf)
    assert len(graph_nodes(out)) == len(steps) + 1     # + the constant 0.5, which gets no step
    assert x.grad is None and y.grad is None          # trace does not touch .grad
    by_name = {s.name: s for s in steps}
    assert len(by_name["a"].contributions) == 3
    assert len(by_name["x"].contributions) == 4       # b, a, and x * x twice
    total = sum(g for _, g in by_name["a"].contributions)
    np.testing.assert_allclose(by_name["a"].grad, total)
    out.backward()                                     # the graph is still there
    np.testing.assert_allclose(by_name["x"].grad, x.grad, rtol=1e-12)
    np.testing.assert_allclose(by_name["y"].grad, y.grad, rtol=1e-12)
    text = buf.getvalue()
    assert "chain rule" in text and "feeds 3 consumers" in text and "local da/dx" in text
    assert by_name["a"].local == {"x": pytest.approx(-0.7), "y": pytest.approx(1.5)}
    # the count printed in the header is the number of steps listed (the constant 0.5 gets none)
    assert f": {len(steps)} nodes; 1 constant(s) get no gradient;" in text.splitlines()[0]


def test_trace_arrays_with_broadcasting_and_seed():
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    v = tg.Tensor(rng.normal(size=(4,)), requires_grad=True)
    h = (w * v).relu()
    out = (h @ v) + h.sum(axis=1) * 2.0 + (w * w).sum()
    seed = rng.normal(size=out.shape)
    steps = tg.trace(out, names={"w": w, "v": v}, file=False, grad_output=seed)
    negative = tg.trace(out, names={"w": w, "v": v}, file=False, grad_output=-seed)
    out.backward(seed)
    got = {s.name: s.grad for s in steps if s.op == "leaf"}
    np.testing.assert_allclose(got["w"], w.grad, rtol=1e-12)
    np.testing.assert_allclose(got["v"], v.grad, rtol=1e-12)
    assert not np.allclose([s.grad for s in negative if s.name == "v"][0], v.grad)


def test_trace_output_is_silent_with_file_false(capsys):
    x, _, _, out = _diamond()
    tg.trace(out, file=False)
    assert capsys.readouterr().out == ""
    tg.trace(out)
    assert "backward pass" in capsys.readouterr().out


def test_graph_nodes_order_and_released_graph():
    x, y, a, out = _diamond()
    nodes = graph_nodes(out)
    pos = {id(n): i for i, n in enumerate(nodes)}
    for n in nodes:
        if n._ctx is not None:
            assert all(pos[id(p)] < pos[id(n)] for p in n._ctx.inputs)
    assert nodes[-1] is out
    out.backward()
    with pytest.raises(RuntimeError, match="released"):
        tg.trace(out, file=False)


def test_trace_bad_arguments():
    with pytest.raises(TypeError, match="output"):
        tg.trace(np.ones(3))
    with pytest.raises(ValueError, match="require"):
        tg.trace(tg.Tensor(1.0) * 2.0)
    x, _, _, out = _diamond()
    with pytest.raises(TypeError, match="names"):
        tg.trace(out, names=[x])
