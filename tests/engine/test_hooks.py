"""Tensor.register_hook and retain_grad: PyTorch's semantics (compared with PyTorch where it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg

X = np.array([0.5, -1.0, 2.0])


def chain(x):
    """y = 3x (the hooked node), z = sum(y^2): dz/dy = 2y, dz/dx = 6y."""
    y = x * 3.0
    return y, (y * y).sum()


def test_hook_sees_the_total_cotangent_once_and_can_replace_it():
    x = tg.Tensor(X, requires_grad=True)
    y = x * 3.0
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    y.register_hook(lambda g: g * 10.0)  # runs second, replaces the cotangent
    (y * y + y).sum().backward()  # two consumers of y: the hook gets their sum, once
    np.testing.assert_allclose(seen[0], 2 * 3 * X + 1)
    assert len(seen) == 1
    np.testing.assert_allclose(x.grad, 3 * 10 * (2 * 3 * X + 1))


def test_retain_grad_stores_the_cotangent_after_the_hooks_and_accumulates():
    x = tg.Tensor(X, requires_grad=True)
    y, z = chain(x)
    y.retain_grad()
    y.register_hook(lambda g: g * 2.0)  # registered after retain_grad, still runs before it (PyTorch 2)
    z.backward(retain_graph=True)
    np.testing.assert_allclose(y.grad, 2 * 2 * 3 * X)
    z.backward()
    np.testing.assert_allclose(y.grad, 2 * 2 * 2 * 3 * X)
    assert x.grad is not None and y.is_leaf is False


def test_leaf_hook_handle_and_grad_leave_dot_grad_alone():
    x = tg.Tensor(X, requires_grad=True)
    handle = x.register_hook(lambda g: np.zeros_like(g.data))  # an array is accepted as the replacement
    y, z = chain(x)
    y.retain_grad()
    (gx,) = tg.grad(z, [x], retain_graph=True)  # hooks run under grad too, .grad stays untouched
    np.testing.assert_array_equal(gx.data, 0.0)
    assert y.grad is None and x.grad is None
    handle.remove()
    handle.remove()
    z.backward()
    np.testing.assert_allclose(x.grad, 18 * X)


def test_hook_under_create_graph_is_differentiable():
    x = tg.Tensor(X, requires_grad=True)
    y, z = chain(x)
    y.register_hook(lambda g: g * y)  # depends on x again: d/dx of the hooked gradient sees it
    (gx,) = tg.grad(z, [x], create_graph=True)  # gx = 3 * (2y) * y = 6 y^2 = 54 x^2
    np.testing.assert_allclose(gx.data, 54 * X**2)
    (ggx,) = tg.grad(gx.sum(), [x])  # this pass reaches y too, so the hook runs on it again
    np.testing.assert_allclose(ggx.data, 324 * X**2)  # PyTorch gives the same (measured)


def test_bad_hooks_are_refused_clearly():
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        tg.Tensor(X).register_hook(lambda g: None)
    x = tg.Tensor(X, requires_grad=True)
    with pytest.raises(TypeError, match="fn must be callable"):
        x.register_hook(3)
    y, z = chain(x)
    y.register_hook(lambda g: g.sum())
    with pytest.raises(ValueError, match=r"returned a gradient of shape \(\) for a Tensor of shape \(3,\)"):
        z.backward()


def test_same_semantics_as_pytorch():
    torch = pytest.importorskip("torch")
    results = []
    for lib, make in ((tg, lambda: tg.Tensor(X, requires_grad=True)),
                      (torch, lambda: torch.tensor(X, requires_grad=True))):
        x = make()
        y = x * 3.0
        y.retain_grad()
        y.register_hook(lambda g: g * 2.0)
        x.register_hook(lambda g: g + 1.0)
        (y * y + y).sum().backward()
        as_np = (lambda a: a) if lib is tg else (lambda a: a.detach().numpy())
        results.append((as_np(y.grad), as_np(x.grad)))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14)


def test_observers_see_the_hooked_cotangent():
    """Hooks change values, observers only watch: a vjp event carries the cotangent after the node's hooks, so
    anomaly mode stops at the op that received a hook's NaN (and says it arrived from outside its ops)."""
    from tinygrad_cnn.observe import Observer, observing

    class Cotangents(Observer):
        def __init__(self):
            self.seen = []

        def vjp(self, event):
            self.seen.append((event.node, event.g.data.copy()))

    x = tg.Tensor(X, requires_grad=True)
    y, z = chain(x)
    y.register_hook(lambda g: g * 0.0 + 7.0)
    with observing(Cotangents()) as watcher:
        z.backward(retain_graph=True)
    (at_y,) = [g for node, g in watcher.seen if node is y]
    np.testing.assert_array_equal(at_y, 7.0)
    y.register_hook(lambda g: np.full(g.shape, np.nan))  # an array: no op of its own for anomaly mode to see
    with pytest.raises(tg.AnomalyError, match=r"the cotangent Mul received in the backward pass already held NaN"), \
            tg.detect_anomaly():
        z.backward()
