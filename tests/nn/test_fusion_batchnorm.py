"""Conv + BatchNormalization (+ ReLU) folded at inference (``nn.fusion``): the same outputs and gradients as the
layers run one by one, only where the fold is valid (inference, the conv's only reader, its channel axis), and
never in training."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn, profiler

R = np.random.default_rng(0)


def _randomize(model):
    """Nonzero betas and biases, gammas and moving statistics away from 1 and 0 (a fold that drops one shows)."""
    arrays = []
    for layer in model.layers:
        for name, w in zip(layer.weight_names, layer.get_weights(), strict=True):
            noise = 0.3 * R.standard_normal(w.shape)
            arrays.append((np.abs(1 + noise) if name == "moving_variance" else w + noise).astype(w.dtype))
    model.set_weights(arrays)
    return model


def _model(dtype="float64"):
    """Four convs: folded with its ReLU (no bias); folded without ReLU (bias, BN without scale/center, channels
    first); read by a BN and by the Add (not folded); a BN over a spatial axis (not folded)."""
    kw = {"dtype": dtype}
    x = nn.Input((6, 6, 3), **kw)
    a = nn.Conv2D(4, 3, padding="same", use_bias=False, name="a", **kw)(x)
    a = nn.ReLU(name="a_relu", **kw)(nn.BatchNormalization(name="a_bn", **kw)(a))
    t = nn.Permute((3, 1, 2), **kw)(a)
    b = nn.Conv2D(4, 3, padding="same", data_format="channels_first", name="b", **kw)(t)
    b = nn.BatchNormalization(axis=1, center=False, scale=False, name="b_bn", **kw)(b)
    b = nn.Permute((2, 3, 1), **kw)(b)
    c = nn.Conv2D(4, 1, name="c", **kw)(b)
    c = nn.Add(**kw)([nn.BatchNormalization(name="c_bn", **kw)(c), c])
    d = nn.Conv2D(4, 3, padding="same", name="d", **kw)(c)
    d = nn.BatchNormalization(axis=1, name="d_bn", **kw)(d)
    out = nn.Dense(3, name="head", **kw)(nn.GlobalAveragePooling2D(**kw)(d))
    return _randomize(nn.Model(x, out))


def test_only_the_valid_pairs_fold():
    model = _model()
    folds = {model._nodes[[id(n) for n in model._nodes].index(k)].layer.name: (bn.layer.name, relu and relu.layer.name)
             for k, (bn, relu) in model._folds.items()}
    assert folds == {"a": ("a_bn", "a_relu"), "b": ("b_bn", None)}


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_folded_inference_matches_layer_by_layer(dtype, tol):
    model = _model(dtype)
    xs = R.standard_normal((5, 6, 6, 3)).astype(dtype)
    x = tg.Tensor(xs, requires_grad=True)
    v = R.standard_normal((5, 3))
    params = model.parameters()
    with profiler.profile() as folded_prof:
        y = model(x)
    folded = [y.numpy()] + [g.numpy() for g in tg.grad(y, [x] + params, grad_output=v)]
    with nn.fusion.disabled(), profiler.profile() as plain_prof:
        y = model(x)
    plain = [y.numpy()] + [g.numpy() for g in tg.grad(y, [x] + params, grad_output=v)]
    for got, want in zip(folded, plain, strict=True):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    # the fold did run: the folded ReLU and the normalization's subtraction on the activations are gone
    def calls(prof, name):
        return prof.stats[name].forward_calls if name in prof.stats else 0
    assert calls(folded_prof, "Relu") == 0 < calls(plain_prof, "Relu")
    assert calls(folded_prof, "Sub") < calls(plain_prof, "Sub")


def test_training_mode_never_folds_and_updates_the_moving_statistics():
    model = _model()
    xs = R.standard_normal((5, 6, 6, 3))
    before = model.get_layer("a_bn").moving_mean.numpy().copy()
    got = model(xs, training=True).numpy()
    assert not np.allclose(model.get_layer("a_bn").moving_mean.numpy(), before)  # batch statistics were used
    with nn.fusion.disabled():  # batch statistics: the output does not depend on the moving statistics
        want = model(xs, training=True).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(AssertionError):  # negative control: inference differs from training here
        np.testing.assert_allclose(model(xs).numpy(), want, rtol=1e-6)


def test_frozen_batchnorm_folds_in_training_as_keras_runs_it_in_inference():
    model = _model()
    model.get_layer("a_bn").trainable = False  # Keras: a frozen BatchNormalization runs in inference mode
    xs = R.standard_normal((5, 6, 6, 3))
    got = model(xs, training=True).numpy()
    with nn.fusion.disabled():
        want = model(xs, training=True).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_batchnorm_relu_runs_as_one_primitive_in_training_with_the_same_values_gradients_and_statistics():
    model = _model()
    assert {model._nodes[[id(n) for n in model._nodes].index(k)].layer.name: r.layer.name
            for k, r in model._bn_relus.items()} == {"a_bn": "a_relu"}
    twin = _model()
    twin.set_weights(model.get_weights())
    xs = R.standard_normal((5, 6, 6, 3))
    v = R.standard_normal((5, 3))
    results = []
    for m, context in ((model, profiler.profile()), (twin, nn.fusion.disabled())):
        with context as prof:
            x = tg.Tensor(xs, requires_grad=True)
            y = m(x, training=True)
            grads = tg.grad(y, [x] + m.parameters(), grad_output=v)
        results.append(([y.numpy()] + [g.numpy() for g in grads], m.get_weights(), prof))
    (fused, fused_w, prof), (plain, plain_w, _) = results
    for got, want in zip(fused + fused_w, plain + plain_w, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)  # moving statistics updated alike
    assert "Relu" not in prof.stats and prof.stats["Normalize"].forward_calls == 4
