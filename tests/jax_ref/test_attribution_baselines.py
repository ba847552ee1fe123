"""DeepLIFT (rescale rule), GradientSHAP and blur IG against their definitions (float64): DeepLIFT's
completeness (every activation of captum's table, max pooling, a residual network) and a one-hidden-layer net
by hand, GradientSHAP from its draws and the plain gradient, blur IG against PAIR saliency's loop written out
with scipy; graph models, both data formats, one image and a batch, seeding and ``batch_size``; Score-CAM's
``batch_size``; bad input; captum's numbers when captum is installed (a PyTorch copy of the model, the same
draws fed in)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from attribution_torch import torch_copy
from scipy import ndimage
from test_attribution_methods import FIRST, MODEL, X, cnn
from test_graph_twin import MODEL as RESNET
from test_graph_twin import X as RES_X

from jax_ref import attribution as A
from jax_ref.attribution.paths import shap_draws
from tinygrad_cnn import nn

F64 = "float64"
R = np.random.default_rng(11)
BASE = 0.3 * R.random((3, 8, 8, 2))


def _with_biases(model, seed=1):
    rng = np.random.default_rng(seed)
    model.set_weights([w + (0.1 * rng.standard_normal(w.shape) if w.ndim == 1 else 0) for w in model.get_weights()])
    return model


def no_pool_net():
    """Conv(relu) -> strided conv(tanh) -> flatten -> Dense(relu) -> Dense: every nonlinearity rescaled."""
    nn.set_random_seed(0)
    return _with_biases(nn.Sequential([
        nn.Input((8, 8, 2)), nn.Conv2D(4, 3, padding="same", activation="relu", dtype=F64),
        nn.Conv2D(5, 3, strides=2, activation="tanh", dtype=F64), nn.Flatten(),
        nn.Dense(7, activation="relu", dtype=F64), nn.Dense(6, dtype=F64)]))


def pool_after_linear_net():
    """Conv -> MaxPool -> flatten -> Dense(relu) -> Dense: the pool reads a linear layer's output."""
    nn.set_random_seed(2)
    return _with_biases(nn.Sequential([
        nn.Input((8, 8, 2)), nn.Conv2D(3, 3, padding="same", dtype=F64), nn.MaxPooling2D(2, dtype=F64),
        nn.Flatten(), nn.Dense(7, activation="relu", dtype=F64), nn.Dense(6, dtype=F64)]))


NO_POOL = no_pool_net()


def _gap(model, x, attr, target, baseline):
    total, delta, _ = A.completeness(model, x, attr, target=target, baseline=baseline)
    return np.abs(total - delta).max(), np.abs(delta).max()


def test_deep_lift_sums_to_the_score_difference():
    attr = A.deep_lift(NO_POOL, X, target=2, baseline=BASE)
    gap, scale = _gap(NO_POOL, X, attr, 2, BASE)
    assert gap <= 1e-12 * scale and scale > 1e-2
    # captum's max-pooling rule keeps it too here (the windows' maxima move with x - x')
    gap, scale = _gap(MODEL, X, A.deep_lift(MODEL, X, target=2, baseline=BASE), 2, BASE)
    assert gap <= 1e-12 * scale
    # negative control: the gradient times (x - x') is not complete
    plain = (X - BASE) * A.saliency(NO_POOL, X, target=2)
    assert _gap(NO_POOL, X, plain, 2, BASE)[0] > 1e-3


def test_deep_lift_on_a_one_hidden_layer_net_by_hand():
    nn.set_random_seed(3)
    net = nn.Sequential([nn.Input((5,)), nn.Dense(7, activation="relu", dtype=F64), nn.Dense(3, dtype=F64)])
    w1, b1, w2, _ = net.get_weights()
    x, x0 = R.standard_normal((4, 5)), R.standard_normal((4, 5))
    h, h0 = x @ w1 + b1, x0 @ w1 + b1
    multiplier = (np.maximum(h, 0) - np.maximum(h0, 0)) / (h - h0)
    expected = (x - x0) * ((multiplier * w2[:, 1]) @ w1.T)
    np.testing.assert_allclose(A.deep_lift(net, x, target=1, baseline=x0), expected, rtol=1e-12, atol=1e-14)
    # where x = x' the gradient is used (eps fallback) and the attribution is 0
    np.testing.assert_allclose(A.deep_lift(net, x, target=1, baseline=x), 0, atol=1e-15)


def test_deep_lift_rescales_every_activation_of_captums_table():
    nn.set_random_seed(4)
    layers = [nn.Input((5,)), nn.Dense(7, activation="softplus", dtype=F64), nn.Dense(6, dtype=F64),
              nn.ELU(dtype=F64), nn.Dense(6, activation="sigmoid", dtype=F64), nn.Dense(6, dtype=F64),
              nn.LeakyReLU(negative_slope=0.2, dtype=F64), nn.Dense(3, dtype=F64)]
    x, x0 = R.standard_normal((4, 5)), R.standard_normal((4, 5))
    net = _with_biases(nn.Sequential(layers))
    gap, scale = _gap(net, x, A.deep_lift(net, x, target=0, baseline=x0), 0, x0)
    assert gap <= 1e-12 * scale and scale > 1e-2
    # gelu is not in captum's table: it keeps its gradient and the sum misses (the rules are not applied blindly)
    nn.set_random_seed(4)
    gelu = _with_biases(nn.Sequential([nn.Input((5,)), nn.Dense(7, activation="gelu", dtype=F64),
                                       nn.Dense(3, dtype=F64)]))
    assert _gap(gelu, x, A.deep_lift(gelu, x, target=0, baseline=x0), 0, x0)[0] > 1e-4


def test_deep_lift_on_graph_and_residual_models_and_channels_first():
    seq = A.deep_lift(MODEL, X, target=3, baseline=BASE)
    np.testing.assert_allclose(A.deep_lift(cnn(graph=True), X, target=3, baseline=BASE), seq, rtol=1e-12,
                               atol=1e-15)
    cf = A.deep_lift(FIRST, X.transpose(0, 3, 1, 2), target=3, baseline=BASE.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(cf.transpose(0, 2, 3, 1), seq, rtol=1e-12, atol=1e-15)
    # the residual network: BatchNormalization, Add, a max pool after a ReLU, a tanh; still complete
    images = RES_X[:2].astype(np.float64)
    attr = A.deep_lift(RESNET, images, target=1)
    total, delta, _ = A.completeness(RESNET, images, attr, target=1)
    np.testing.assert_allclose(total, delta, rtol=2e-4, atol=2e-5)  # float32 weights


def test_gradient_shap_is_its_formula_seeded_and_batched():
    bases = R.random((4, 8, 8, 2))
    got = A.gradient_shap(MODEL, X, target=2, baselines=bases, n_samples=6, stdevs=0.1, seed=3)
    eps, idx, alpha = (np.asarray(a) for a in shap_draws(3, 0.1, 6, 3, 4, (8, 8, 2), np.float64))
    noisy, base = X[None] + eps, bases[idx]
    a = alpha[..., None, None, None]
    grads = A.saliency(MODEL, (a * noisy + (1 - a) * base).reshape(-1, 8, 8, 2), target=2).reshape(noisy.shape)
    np.testing.assert_allclose(got, ((noisy - base) * grads).mean(0), rtol=1e-12, atol=1e-15)
    again = A.gradient_shap(MODEL, X, target=2, baselines=bases, n_samples=6, stdevs=0.1, seed=3, batch_size=5)
    np.testing.assert_allclose(again, got, rtol=1e-12, atol=1e-15)
    other = A.gradient_shap(MODEL, X, target=2, baselines=bases, n_samples=6, stdevs=0.1, seed=4)
    assert np.abs(other - got).max() > 1e-4  # the seed is in force
    one = A.gradient_shap(MODEL, X[0], target=2, baselines=bases[0], n_samples=3, seed=1)
    assert one.shape == X[0].shape and np.isfinite(one).all()


def _pair_blur_ig(model, x, target, max_sigma, steps, grad_step=0.01):
    """PAIR saliency's BlurIG.GetMask, written out (scipy blur, our saliency as the gradient)."""
    blur = lambda im, s: im if s == 0 else ndimage.gaussian_filter(im, sigma=[s, s, 0], mode="constant")  # noqa: E731
    sigmas = [float(i) * max_sigma / steps for i in range(steps + 1)]
    path = np.stack([blur(x, sigmas[i]) for i in range(steps)])
    velocity = np.stack([(blur(x, sigmas[i] + grad_step) - path[i]) / grad_step for i in range(steps)])
    grads = A.saliency(model, path, target=target)  # PAIR's call_model_function, all steps in one batch
    return -sum((sigmas[i + 1] - sigmas[i]) * velocity[i] * grads[i] for i in range(steps))


def test_blur_ig_is_pairs_path_integral():
    got = A.blur_ig(MODEL, X, target=1, max_sigma=3.0, steps=48)
    np.testing.assert_allclose(got[0], _pair_blur_ig(MODEL, X[0], 1, 3.0, 48), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(A.blur_ig(MODEL, X, target=1, max_sigma=3.0, steps=48, batch_size=100), got,
                               rtol=1e-12, atol=1e-15)
    cf = A.blur_ig(FIRST, X.transpose(0, 3, 1, 2), target=1, max_sigma=3.0, steps=48)
    np.testing.assert_allclose(cf.transpose(0, 2, 3, 1), got, rtol=1e-12, atol=1e-15)
    # approximate completeness: sum = S(x) - S(fully blurred x) up to the quadrature
    blurred = ndimage.gaussian_filter(X, sigma=[0, 3.0, 3.0, 0], mode="constant")
    delta = MODEL.predict(X)[:, 1] - MODEL.predict(blurred)[:, 1]
    np.testing.assert_allclose(got.sum(axis=(1, 2, 3)), delta, rtol=0.05, atol=2e-3)


def test_score_cam_batch_size_changes_nothing():
    whole = A.score_cam(MODEL, X, "c1", target=2)
    np.testing.assert_allclose(A.score_cam(MODEL, X, "c1", target=2, batch_size=5), whole, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("call, message", [
    (lambda: A.deep_lift(MODEL, X, baseline=np.zeros((2, 8, 8, 2))), r"baseline of shape \(2, 8, 8, 2\) does not"),
    (lambda: A.deep_lift(MODEL, X, score="probability"), "score"),
    (lambda: A.deep_lift(MODEL, X, eps=-1.0), "eps"),
    (lambda: A.gradient_shap(MODEL, X, baselines=np.zeros((8, 8, 3))), r"baselines must be .* got shape \(8, 8, 3\)"),
    (lambda: A.gradient_shap(MODEL, X, n_samples=0), "n_samples"),
    (lambda: A.gradient_shap(MODEL, X, stdevs=-0.1), "stdevs"),
    (lambda: A.gradient_shap(MODEL, X, seed=-1), "seed"),
    (lambda: A.gradient_shap(MODEL, X, batch_size=0), "batch_size"),
    (lambda: A.blur_ig(MODEL, X, max_sigma=0), "max_sigma must be > 0; got 0"),
    (lambda: A.blur_ig(MODEL, X, grad_step=0.0), "grad_step must be > 0"),
    (lambda: A.blur_ig(MODEL, X, sqrt="yes"), "sqrt"),
    (lambda: A.blur_ig(MODEL, X, score="prob"), "score"),
    (lambda: A.score_cam(MODEL, X, "flat", batch_size=4), "layer='flat' outputs shape"),
    (lambda: A.score_cam(MODEL, X, "c1", batch_size=0), "batch_size"),
])
def test_bad_input(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


# -- captum, on the same weights (local only: captum and torch are not CI dependencies) ---------------------------

def _captum(method, model, x, **kwargs):
    torch = pytest.importorskip("torch")
    captum_attr = pytest.importorskip("captum.attr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns that it sets hooks
        out = getattr(captum_attr, method)(torch_copy(model)).attribute(torch.tensor(x.transpose(0, 3, 1, 2)),
                                                                         **kwargs)
    return out.detach().numpy().transpose(0, 2, 3, 1)


def test_deep_lift_matches_captum():
    torch = pytest.importorskip("torch")
    base = torch.tensor(BASE.transpose(0, 3, 1, 2))
    for model in (NO_POOL, pool_after_linear_net()):
        ours = A.deep_lift(model, X, target=2, baseline=BASE)
        np.testing.assert_allclose(ours, _captum("DeepLift", model, X, baselines=base, target=2), rtol=1e-10,
                                   atol=1e-14)
    # a max pool reading a ReLU's output: captum's ReLU hook records the pool's plain gradient before the pool's
    # own hook rewrites it, so captum's pool rule is lost there and its sums miss S(x) - S(x'); ours keeps it
    theirs = _captum("DeepLift", MODEL, X, baselines=base, target=2)
    ours = A.deep_lift(MODEL, X, target=2, baseline=BASE)
    assert _gap(MODEL, X, theirs, 2, BASE)[0] > 1e-3 > 1e3 * _gap(MODEL, X, ours, 2, BASE)[0]


def test_gradient_shap_matches_captum_given_the_same_draws(monkeypatch):
    torch = pytest.importorskip("torch")
    bases = R.random((4, 8, 8, 2))
    n, b = 6, X.shape[0]
    ours = A.gradient_shap(MODEL, X, target=2, baselines=bases, n_samples=n, stdevs=0.1, seed=5)
    eps, idx, alpha = (np.asarray(a) for a in shap_draws(5, 0.1, n, b, 4, (8, 8, 2), np.float64))
    # captum's layout is image-major (row b * n + k); its draws come from np.random and torch.normal
    monkeypatch.setattr(np.random, "choice", lambda *a, **k: idx.T.reshape(-1))
    monkeypatch.setattr(np.random, "uniform", lambda *a, **k: alpha.T.reshape(-1))
    noise = torch.tensor(eps.transpose(1, 0, 2, 3, 4).reshape(-1, 8, 8, 2).transpose(0, 3, 1, 2))
    monkeypatch.setattr(torch, "normal", lambda *a, **k: noise)
    theirs = _captum("GradientShap", MODEL, X, baselines=torch.tensor(bases.transpose(0, 3, 1, 2)), n_samples=n,
                     stdevs=0.1, target=2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14)
