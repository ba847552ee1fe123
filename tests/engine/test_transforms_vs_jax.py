"""JAX's function transforms on the engine against the same JAX transforms, float64, on one CNN composite.

The composite (conv2d, softplus, max- and average pooling, dense, cross-entropy) is written once over a namespace
of ops: ``tinygrad_cnn.functional`` for the engine, ``jax_ref.ops`` (the twin, name for name) for JAX, so both
sides differentiate the same function. Each transform is compared with its JAX namesake, all of its outputs.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from agreement import Tally, rel_err

import jax_ref.ops as J
import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn.pytree import tree_flatten, tree_map, tree_structure, tree_unflatten

STATS = Tally("transforms (vs JAX's transforms)")
R = np.random.default_rng(3)
X = R.standard_normal((2, 6, 6, 2))       # NHWC
K = 0.4 * R.standard_normal((3, 3, 2, 3))  # Keras' conv kernel layout
W = 0.3 * R.standard_normal((6, 4))        # dense kernel (3 channels x 2 pooled columns -> 4 classes)
LABELS = np.array([1, 3])


def logits(ops, x, k, w):
    """conv -> softplus -> max-pool 2 -> avg-pool (2, 1) -> flatten -> dense: (2, 4) logits."""
    h = ops.max_pool(ops.softplus(ops.conv2d(x, k)), 2)          # (2, 2, 2, 3)
    h = ops.avg_pool(h, (2, 1))                                  # (2, 1, 2, 3)
    return h.reshape(2, 6) @ w


def loss(ops, x, k, w):
    return ops.cross_entropy(logits(ops, x, k, w), LABELS)


def engine(fn):
    return lambda *a: fn(F, *a)


def jax_(fn):
    return lambda *a: fn(J, *a)


def assert_trees_close(ours, ref):
    leaves, treedef = tree_flatten(ours)
    ref_leaves, ref_def = tree_flatten(jax.tree_util.tree_map(np.asarray, ref))
    assert treedef == ref_def, (treedef, ref_def)
    errors = [rel_err(np.asarray(a.data if isinstance(a, tg.Tensor) else a), b) for a, b in
              zip(leaves, ref_leaves, strict=True)]
    STATS.record(*errors)


TANGENTS = tuple(np.random.default_rng(5 + i).standard_normal(a.shape) for i, a in enumerate((X, K, W)))
COTANGENTS = [{"logits": np.random.default_rng(s).standard_normal((2, 4)), "loss": np.float64(0.5 + s)} for s in (0, 1)]


def _both(ops):
    return lambda x, k, w: {"logits": logits(ops, x, k, w), "loss": loss(ops, x, k, w)}


@jax.jit
def _references(x, k, w, tangents, cotangents):
    """Every JAX transform the tests compare with, in one compiled function (XLA compiles once, not per test)."""
    f, f_loss = jax_(logits), jax_(loss)
    value, grads = jax.value_and_grad(f_loss, argnums=(0, 1, 2))(x, k, w)
    out, vjp_fn = jax.vjp(_both(J), x, k, w)
    return {
        "value": value, "grads": grads, "out": out, "vjps": [vjp_fn(ct) for ct in cotangents],
        "jvp": jax.jvp(f, (x, k, w), tangents),
        "jacobian": jax.jacrev(f, argnums=(1, 2))(x, k, w),
        "hessian": jax.hessian(f_loss, argnums=2)(x, k, w),
        "hvp": jax.jvp(jax.grad(f_loss, argnums=(0, 1, 2)), (x, k, w), tangents)[1],
        "jvp_of_grad": jax.jvp(jax.grad(lambda w_: f_loss(x, k, w_)), (w,), (tangents[2],)),
    }


_CACHE: dict = {}


def ref(name):
    if not _CACHE:
        _CACHE.update(_references(X, K, W, TANGENTS, COTANGENTS))
    return _CACHE[name]


@pytest.mark.parametrize("argnums", [0, 2, (0, 1, 2)])
def test_value_and_grad_and_grad(argnums):
    pick = ref("grads")[argnums] if isinstance(argnums, int) else ref("grads")
    value, grads = tg.value_and_grad(engine(loss), argnums=argnums)(X, K, W)
    assert_trees_close((value, grads), (ref("value"), pick))
    assert_trees_close(tg.grad(engine(loss), argnums=argnums)(X, K, W), pick)


def test_grad_with_aux_and_pytree_argument():
    def ours(params, x):
        out = logits(F, x, params["k"], params["w"])
        return F.cross_entropy(out, LABELS), {"logits": out}

    (value, aux), grads = tg.value_and_grad(ours, has_aux=True)({"w": W, "k": K}, X)
    assert_trees_close((value, aux, grads), (ref("value"), {"logits": ref("out")["logits"]},
                                             {"k": ref("grads")[1], "w": ref("grads")[2]}))
    assert not aux["logits"].requires_grad  # top level: the outputs are constants
    kernel = tg.Tensor(K, requires_grad=True)  # also when an argument requires a gradient (as JAX)
    assert not tg.grad(engine(loss), argnums=1)(X, kernel, W).requires_grad


def test_vjp_of_a_pytree_output_called_twice():
    out, vjp_fn = tg.vjp(_both(F), X, K, W)
    for ct, ref_vjp in zip(COTANGENTS, ref("vjps"), strict=True):
        assert_trees_close((out, vjp_fn(ct)), (ref("out"), ref_vjp))


def test_jvp_and_linearize():
    assert_trees_close(tg.jvp(engine(logits), (X, K, W), TANGENTS), ref("jvp"))
    out, f_jvp = tg.linearize(engine(logits), X, K, W)
    assert_trees_close((out, f_jvp(*TANGENTS)), ref("jvp"))


@pytest.mark.parametrize("transform", [tg.jacrev, tg.jacfwd, tg.jacobian], ids=["jacrev", "jacfwd", "jacobian"])
def test_jacobians(transform):
    """jax.jacrev and jax.jacfwd give the same matrix: both of ours are compared with it."""
    assert_trees_close(transform(engine(logits), argnums=(1, 2))(X, K, W), ref("jacobian"))


def test_hessian_and_hvp():
    h = tg.hessian(engine(loss), argnums=2)(X, K, W)
    assert h.shape == W.shape + W.shape
    assert_trees_close(h, ref("hessian"))
    assert_trees_close(tg.hvp(engine(loss), (X, K, W), TANGENTS), ref("hvp"))
    blocks = tg.hessian(engine(loss), argnums=(1, 2))(X, K, W)  # the mixed blocks, against jacrev of grad
    assert tree_structure(blocks) == tree_structure(((0, 0), (0, 0))) and blocks[0][1].shape == K.shape + W.shape
    np.testing.assert_allclose(blocks[1][1].data, h.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(blocks[0][1].data.reshape(K.size, W.size),
                               blocks[1][0].data.reshape(W.size, K.size).T, rtol=1e-10, atol=1e-13)


def test_nested_transforms_and_no_perturbation_confusion():
    """jvp of grad (forward over reverse) against JAX; d/dx [x * d/dy (x + y)] = 1 (JAX's classic)."""
    ours = tg.jvp(tg.grad(lambda w: loss(F, X, K, w)), (W,), (TANGENTS[2],))
    assert_trees_close(ours, ref("jvp_of_grad"))
    inner = lambda x: x * tg.grad(lambda y: x + y)(np.float64(1.0))  # noqa: E731
    assert tg.grad(inner)(np.float64(2.0)).item() == 1.0


def test_report():
    STATS.report()


# -- the calling conventions' errors ------------------------------------------------------------------------------
def test_bad_calls_name_the_argument():
    with pytest.raises(TypeError, match=r"one scalar output; f returned \* with shapes \[\(2, 4\)\]"):
        tg.grad(engine(logits))(X, K, W)
    with pytest.raises(ValueError, match=r"argnums=3 is out of range for a function called with 3"):
        tg.grad(engine(loss), argnums=3)(X, K, W)
    with pytest.raises(TypeError, match="argument 0 has dtype int64; differentiation needs floating inputs"):
        tg.grad(lambda n: n.sum())(np.arange(3))
    with pytest.raises(ValueError, match=r"the cotangent leaf 0 has shape \(3,\) but must have shape \(2, 4\)"):
        tg.vjp(engine(logits), X, K, W)[1](np.zeros(3))
    with pytest.raises(ValueError, match="3 primals but 2 tangents"):
        tg.jvp(engine(logits), (X, K, W), (X, K))
    with pytest.raises(ValueError, match=r"tangents leaf 1 has shape \(2,\) but must have shape \(3, 3, 2, 3\)"):
        tg.jvp(engine(logits), (X, K, W), (X, np.zeros(2), W))
    with pytest.raises(TypeError, match="jacfwd: f must be a callable .*; got ndarray"):
        tg.jacfwd(X)
    with pytest.raises(TypeError, match="has_aux=True requires f to return a pair"):
        tg.grad(engine(loss), has_aux=True)(X, K, W)


def test_grad_dispatch_keeps_the_tensor_form():
    x = tg.Tensor(W, requires_grad=True)
    (g,) = tg.grad((x * x).sum(), [x])
    np.testing.assert_allclose(g.data, 2 * W)
    np.testing.assert_allclose(tg.grad(lambda w: (w * w).sum())(W).data, 2 * W)



def test_pytrees_flatten_as_jax():
    tree = ({"b": 1.0, "a": [2.0, (3.0,)]}, None, 4.0)
    leaves, treedef = tree_flatten(tree)
    ref_leaves, ref_def = jax.tree_util.tree_flatten(tree)
    assert leaves == ref_leaves == [2.0, 3.0, 1.0, 4.0]  # dict keys sorted, None an empty subtree
    assert treedef.num_leaves == ref_def.num_leaves and str(treedef) == "({'a': [*, (*,)], 'b': *}, None, *)"
    assert tree_unflatten(treedef, leaves) == tree
    assert tree_map(lambda a, b: a + b, tree, tree) == jax.tree_util.tree_map(lambda a, b: a + b, tree, tree)
    with pytest.raises(ValueError, match=r"tree 1 has structure \[\*\] but the first has \(\*,\)"):
        tree_map(lambda a, b: a, (1.0,), [1.0])
    with pytest.raises(ValueError, match="has 4 leaves but 3 values were given"):
        tree_unflatten(treedef, [1, 2, 3])
