"""Tensor semantics: the graph, backward, accumulation, aliasing, release, modes, dtypes, bad input."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import ops


def leaf(*shape, seed=0, dtype=np.float64):
    return tg.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True)


# -- the backward pass ----------------------------------------------------------------------------------
def test_chain_of_100k_ops_backward_is_iterative():
    x = tg.Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad == 1.0


def test_fan_out_adds_every_use():
    x = tg.Tensor(np.array([2.0, -1.0]), requires_grad=True)
    (x * x + x * 3.0 + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3.0 + 1.0)


def test_diamond_accumulates_both_paths():
    x = tg.Tensor(np.array(0.7), requires_grad=True)
    a = x.exp()
    b, c = a * 2.0, a * a
    (b + c).backward()
    np.testing.assert_allclose(x.grad, np.exp(0.7) * (2.0 + 2 * np.exp(0.7)))


def test_same_tensor_twice_in_one_op():
    x = tg.Tensor(np.array([3.0]), requires_grad=True)
    (x * x).sum().backward()
    assert x.grad[0] == 6.0
    y = tg.Tensor(np.array([3.0]), requires_grad=True)
    (y + y).sum().backward()
    assert y.grad[0] == 2.0


def test_no_two_grads_alias():
    """a + b hands the same cotangent to both leaves; each .grad must be its own array."""
    a, b = leaf(3), leaf(3, seed=1)
    seed = np.ones(3)
    (a + b).backward(seed)
    assert not np.shares_memory(a.grad, b.grad) and not np.shares_memory(a.grad, seed)
    a.grad[0] = 100.0
    assert b.grad[0] == 1.0 and seed[0] == 1.0


def test_grad_results_do_not_alias():
    a, b = leaf(3), leaf(3, seed=1)
    v = np.arange(3.0)
    ga, gb = tg.grad(a + b, [a, b], grad_output=v)
    ga.data[0] = 100.0
    assert gb.data[0] == 0.0 and v[0] == 0.0


def test_broadcasting_is_undone():
    a, b, c = leaf(4, 1, 3), leaf(3, seed=1), leaf(1, 1, seed=2)
    (a * b + c).backward(np.ones((4, 1, 3)))
    assert (a.grad.shape, b.grad.shape, c.grad.shape) == ((4, 1, 3), (3,), (1, 1))
    np.testing.assert_allclose(b.grad, a.data.sum(axis=(0, 1)))
    np.testing.assert_allclose(c.grad, [[12.0]])


def test_scalar_broadcast_against_0d():
    s = tg.Tensor(np.array(2.0), requires_grad=True)
    x = leaf(2, 3)
    (x * s).sum().backward()
    assert s.grad.shape == () and np.isclose(s.grad, x.data.sum())


def test_non_scalar_backward_needs_grad_and_names_the_shape():
    y = leaf(2, 3) * 2.0
    with pytest.raises(ValueError, match=r"backward: output has shape \(2, 3\).*grad"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the output has shape \(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_twice_accumulates_and_zero_grad_resets():
    x = leaf(3)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, 3.0)


def test_second_backward_without_retain_raises_clearly():
    x = leaf(3)
    y = (x.exp() * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="released.*retain_graph=True"):
        y.backward()


def test_graph_released_after_backward():
    x = leaf(5)
    h = x.exp()
    ref = weakref.ref(h)
    y = (h * 2.0).sum()
    del h
    y.backward()
    gc.collect()
    assert ref() is None, "an intermediate outlived backward: the graph was not released"


def test_graph_kept_with_retain_graph():
    x = leaf(5)
    h = x.exp()
    ref = weakref.ref(h)
    y = (h * 2.0).sum()
    del h
    y.backward(retain_graph=True)
    gc.collect()
    assert ref() is not None
    y.backward()
    np.testing.assert_allclose(x.grad, 4 * np.exp(x.data))


def test_graph_freed_when_output_dropped():
    x = leaf(5)
    h = x * 2.0
    ref = weakref.ref(h)
    y = h.sum()
    del h, y
    gc.collect()
    assert ref() is None


# -- modes -------------------------------------------------------------------------------------------
def test_no_grad_context_manager():
    x = leaf(3)
    with tg.no_grad():
        y = x * 2.0
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf


def test_no_grad_decorator_and_enable_grad_inside():
    @tg.no_grad()
    def f(t):
        with tg.enable_grad():
            inner = t * 1.0
        return t * 2.0, inner

    y, inner = f(leaf(3))
    assert not y.requires_grad and inner.requires_grad and tg.is_grad_enabled()


def test_no_grad_restored_after_exception():
    with pytest.raises(KeyError), tg.no_grad():
        raise KeyError
    assert tg.is_grad_enabled()


def test_detach_cuts_the_graph():
    x = leaf(3)
    y = (x.detach() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, x.data)


# -- grad() and higher order ----------------------------------------------------------------------------
def test_grad_leaves_dot_grad_alone_and_gives_zeros_for_unused():
    x, unused = leaf(3), leaf(2, seed=1)
    gx, gu = tg.grad((x * x).sum(), [x, unused])
    np.testing.assert_allclose(gx.data, 2 * x.data)
    np.testing.assert_array_equal(gu.data, 0.0)
    assert x.grad is None


def test_grad_create_graph_third_derivative():
    x = tg.Tensor(np.array(1.5), requires_grad=True)
    y = x ** 4
    (g1,) = tg.grad(y, [x], create_graph=True)
    (g2,) = tg.grad(g1, [x], create_graph=True)
    (g3,) = tg.grad(g2, [x])
    np.testing.assert_allclose([g1.item(), g2.item(), g3.item()], [4 * 1.5 ** 3, 12 * 1.5 ** 2, 24 * 1.5])


def test_grad_with_respect_to_intermediate():
    x = leaf(3)
    h = x * 2.0
    (gh,) = tg.grad((h * h).sum(), [h])
    np.testing.assert_allclose(gh.data, 2 * h.data)


# -- dtypes -------------------------------------------------------------------------------------------
def test_dtype_rules():
    assert tg.Tensor([1, 2]).dtype == np.float32
    assert tg.Tensor([1.0, 2.0]).dtype == np.float32
    assert tg.Tensor(3).dtype == np.float32
    assert tg.Tensor(np.array([1.0])).dtype == np.float64
    assert tg.Tensor(np.array([1, 2])).dtype == np.int64  # labels and indices stay integer
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    for y in (x * 2.0, 2.0 * x, x + 1, x / 3, 1 / x, x - 0.5, x ** 2, 2.0 ** x, x.mean(), F.softmax(x),
              x.clip(0.1, 0.9), ops.leaky_relu(x), F.cross_entropy(x[None], [1])):
        assert y.dtype == np.float32, y
    y = (x * 2.0).sum()
    y.backward()
    assert x.grad.dtype == np.float32


def test_astype_gradient_comes_back_in_the_input_dtype():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    x.astype(np.float64).sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="requires_grad=True needs a floating dtype; got int64"):
        tg.Tensor(np.array([1, 2]), requires_grad=True)


def test_comparisons_have_no_grad_and_bool_is_numpy_like():
    x = leaf(3)
    m = x > 0
    assert m.dtype == bool and not m.requires_grad
    assert bool(tg.Tensor(1.0) > 0)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x > 0)


def test_numpy_operands_defer_to_tensor():
    x = leaf(3)
    for y in (np.ones(3) * x, np.float64(2.0) * x, np.ones(3) - x):
        assert isinstance(y, tg.Tensor) and y.requires_grad


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data, match", [
    ("abc", r"Tensor: data must be numbers.*got str"),
    (object(), r"Tensor: data must be numbers.*got object"),
    ([[1, 2], [3]], r"."),
])
def test_bad_tensor_data(data, match):
    with pytest.raises((TypeError, ValueError), match=match):
        tg.Tensor(data)


def test_bad_operands():
    x = leaf(2, 3)
    with pytest.raises(TypeError, match="got str"):
        x + "a"
    with pytest.raises(ValueError, match=r"add: operands with shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        x + np.ones(4)
    with pytest.raises(ValueError, match=r"matmul: a has shape \(2, 3\) and b has shape \(2, 3\): a's last axis "
                                         r"\(3\) must equal b's second-to-last axis \(2\)"):
        x @ leaf(2, 3)
    with pytest.raises(ValueError, match=r"matmul: operands must have rank >= 1; got shapes \(2, 3\) and \(\)"):
        x @ tg.Tensor(np.array(2.0))
    with pytest.raises(ValueError, match=r"sum: axis 5 is out of range for an array of rank 2"):
        x.sum(axis=5)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape an array of shape \(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(IndexError, match=r"getitem: index .* is invalid for shape \(2, 3\)"):
        x[5]
    with pytest.raises(ValueError, match=r"clip: a_min=1 must be <= a_max=0"):
        x.clip(1, 0)
    with pytest.raises(ValueError, match=r"pad: pad_width=-1 must hold non-negative integers"):
        x.pad(-1)
    with pytest.raises(TypeError, match=r"grad: inputs\[0\] must be a Tensor; got ndarray"):
        tg.grad(x.sum(), [np.ones(3)])


def test_backward_on_a_tensor_without_graph():
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        tg.Tensor(np.ones(2)).sum().backward()
