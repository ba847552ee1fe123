"""The second-wave attribution methods against their definitions written out explicitly (float64): input x
gradient, guided backprop and deconvnet (a one-hidden-layer net by hand; one ReLU rule on Sequential and graph
models, both data formats), guided Grad-CAM, Grad-CAM++, Score-CAM, layer activations and gradients,
noise_tunnel (SmoothGrad for every method) and activation maximisation."""

from __future__ import annotations

import os

import numpy as np
import pytest

import jax_ref
from jax_ref import attribution as A
from tinygrad_cnn import nn

F64 = "float64"
LONG = os.environ.get("TINYGRAD_LONG_TESTS") == "1"  # also the channels_first copies of the CAM checks


def cnn(data_format="channels_last", graph=False):
    """Conv(relu) -> pool -> conv(relu) -> flatten -> dense, float64, nonzero biases; ``graph``: the same
    weights as a functional model whose ReLUs are ``ReLU()`` / ``Activation("relu")`` layers."""
    nn.set_random_seed(0)
    kw = {"dtype": F64, "data_format": data_format}
    inp = nn.Input((8, 8, 2) if data_format == "channels_last" else (2, 8, 8))
    if graph:
        h = nn.ReLU(dtype=F64)(nn.Conv2D(4, 3, padding="same", name="c1", **kw)(inp))
        h = nn.MaxPooling2D(2, **kw)(h)
        h = nn.Activation("relu", dtype=F64)(nn.Conv2D(5, 3, padding="same", name="c2", **kw)(h))
        model = nn.Model(inp, nn.Dense(6, dtype=F64, name="head")(nn.Flatten(data_format=data_format)(h)))
    else:
        model = nn.Sequential([inp, nn.Conv2D(4, 3, padding="same", activation="relu", name="c1", **kw),
                               nn.MaxPooling2D(2, **kw), nn.Conv2D(5, 3, padding="same", activation="relu",
                                                                   name="c2", **kw),
                               nn.Flatten(data_format=data_format, name="flat"), nn.Dense(6, dtype=F64, name="head")])
    rng = np.random.default_rng(1)
    model.set_weights([w + (0.1 * rng.standard_normal(w.shape) if w.ndim == 1 else 0) for w in model.get_weights()])
    return model


MODEL, FIRST = cnn(), cnn("channels_first")
X = np.random.default_rng(7).random((3, 8, 8, 2))


def test_input_x_gradient_is_x_times_saliency():
    got = A.input_x_gradient(MODEL, X, target=2)
    sal = A.saliency(MODEL, X, target=2)
    np.testing.assert_allclose(got, X * sal, rtol=1e-12, atol=1e-15)
    assert np.abs(got - sal).max() > 1e-3  # negative control


def test_guided_backprop_and_deconvnet_on_a_one_hidden_layer_net_by_hand():
    nn.set_random_seed(3)
    net = nn.Sequential([nn.Input((5,)), nn.Dense(7, activation="relu", dtype=F64), nn.Dense(3, dtype=F64)])
    (w1, b1, w2, _) = net.get_weights()
    x = np.random.default_rng(0).standard_normal((4, 5))
    t = 1
    h = x @ w1 + b1
    g = w2[:, t]  # dS/d relu(h), the same for every image
    assert (g < 0).any() and ((h > 0) & (g < 0)).any()  # the rules differ here
    expected = {"saliency": ((h > 0) * g) @ w1.T, "guided_backprop": ((h > 0) * np.maximum(g, 0)) @ w1.T,
                "deconvnet": np.broadcast_to(np.maximum(g, 0) @ w1.T, x.shape)}
    for name, ref in expected.items():
        np.testing.assert_allclose(getattr(A, name)(net, x, target=t), ref, rtol=1e-12, atol=1e-14, err_msg=name)
    assert np.abs(expected["guided_backprop"] - expected["saliency"]).max() > 1e-3  # negative control


def test_guided_rules_reach_every_relu_form_and_both_data_formats():
    graph, first = cnn(graph=True), FIRST
    for name in ("guided_backprop", "deconvnet"):
        seq = getattr(A, name)(MODEL, X, target=3)
        np.testing.assert_allclose(getattr(A, name)(graph, X, target=3), seq, rtol=1e-12, atol=1e-14)
        cf = getattr(A, name)(first, X.transpose(0, 3, 1, 2), target=3).transpose(0, 2, 3, 1)
        np.testing.assert_allclose(cf, seq, rtol=1e-12, atol=1e-14)
        assert np.abs(seq - A.saliency(MODEL, X, target=3)).max() > 1e-4  # the rule is in force
    np.testing.assert_allclose(A.guided_backprop(MODEL, X[1], target=3),
                               A.guided_backprop(MODEL, X, target=3)[1], rtol=1e-12, atol=1e-15)


def test_guided_grad_cam_is_the_product():
    for model, x in ((MODEL, X), (FIRST, X.transpose(0, 3, 1, 2)))[:2 if LONG else 1]:
        axis = -1 if model.layers[0].data_format == "channels_last" else 1
        got = A.guided_grad_cam(model, x, "c2", target=0)
        ref = A.guided_backprop(model, x, target=0) * np.expand_dims(A.grad_cam(model, x, "c2", target=0), axis)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-15)
        single = A.guided_grad_cam(model, x[0], "c2", target=0)
        np.testing.assert_allclose(single, ref[0], rtol=1e-12, atol=1e-15)


def test_layer_activation_and_gradient():
    np.testing.assert_allclose(A.layer_activation(MODEL, X, "c2"), A.feature_maps(MODEL, X)["c2"], rtol=1e-14)
    np.testing.assert_allclose(A.layer_gradient(MODEL, X, "head", target=4), np.eye(6)[[4, 4, 4]], atol=1e-15)
    kernel = MODEL.get_layer("head").get_weights()[0]
    np.testing.assert_allclose(A.layer_gradient(MODEL, X, "flat", target=4), np.tile(kernel[:, 4], (3, 1)),
                               rtol=1e-12, atol=1e-15)


def test_grad_cam_plus_plus_against_the_formula():
    g, a = A.layer_gradient(MODEL, X, "c1", target=1), A.layer_activation(MODEL, X, "c1")
    denom = 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3
    alpha = np.where(denom != 0, g**2 / np.where(denom != 0, denom, 1), 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(1, 2), keepdims=True)
    ref = np.maximum((w * a).sum(-1), 0)
    got = A.grad_cam_plus_plus(MODEL, X, "c1", target=1, upsample=False)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)
    plain = A.grad_cam(MODEL, X, "c1", target=1, upsample=False)
    assert np.abs(got / got.max() - plain / plain.max()).max() > 1e-3  # negative control: not Grad-CAM
    assert A.grad_cam_plus_plus(MODEL, X, "c1", target=1).shape == (3, 8, 8)


def test_score_cam_against_an_explicit_loop():
    import jax

    jm = jax_ref.from_engine(MODEL)
    a = A.layer_activation(MODEL, X, "c2")  # (3, 4, 4, 5)
    got = A.score_cam(MODEL, X, "c2", target=5, upsample=False)
    for b in range(3):
        weights = []
        for k in range(a.shape[-1]):
            m = np.asarray(jax.image.resize(a[b, :, :, k], (8, 8), "bilinear"))
            m = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else 0 * m
            p = np.asarray(jax.nn.softmax(jm.apply(jm.params, (X[b] * m[:, :, None])[None])[0]))
            weights.append(p[5])
        ref = np.maximum((a[b] * np.array(weights)).sum(-1), 0)
        np.testing.assert_allclose(got[b], ref, rtol=1e-10, atol=1e-13)
    if LONG:
        cf = A.score_cam(FIRST, X.transpose(0, 3, 1, 2), "c2", target=5)
        np.testing.assert_allclose(cf, A.score_cam(MODEL, X, "c2", target=5), rtol=1e-10, atol=1e-13)


def test_noise_tunnel_of_saliency_is_smoothgrad_and_wraps_any_method():
    for kind in ("mean", "vargrad"):
        np.testing.assert_allclose(A.noise_tunnel(A.saliency, MODEL, X, n=4, kind=kind, seed=2),
                                   A.smoothgrad(MODEL, X, n=4, kind=kind, seed=2), rtol=1e-10, atol=1e-14,
                                   err_msg=kind)
    ig = A.noise_tunnel(A.integrated_gradients, MODEL, X, target=1, n=3, noise_level=0.0, steps=4)
    copies = A.integrated_gradients(MODEL, np.tile(X, (3, 1, 1, 1)), target=1, steps=4)  # the same compile
    np.testing.assert_allclose(ig, copies[:3], rtol=1e-12, atol=1e-15)
    cams = A.noise_tunnel(A.grad_cam, MODEL, X[0], n=3, seed=1, layer="c2")
    assert cams.shape == (8, 8)
    assert np.abs(cams - A.grad_cam(MODEL, X[0], "c2")).max() > 1e-6  # the noise is in force


def test_activation_maximization_is_seeded_batched_and_raises_the_activation():
    kw = dict(steps=30, learning_rate=0.1)
    imgs, act = A.activation_maximization(MODEL, "c1", seed=0, **kw)
    assert imgs.shape == (4, 8, 8, 2) and act.shape == (4,)
    order = [2, 0, 3, 1]
    shuffled, _ = A.activation_maximization(MODEL, "c1", channels=order, seed=0, **kw)
    np.testing.assert_allclose(shuffled, imgs[order], rtol=1e-12, atol=1e-15)  # channels do not interact
    np.testing.assert_array_equal(imgs, A.activation_maximization(MODEL, "c1", seed=0, **kw)[0])
    assert np.abs(imgs - A.activation_maximization(MODEL, "c1", seed=1, **kw)[0]).max() > 1e-6
    _, act0 = A.activation_maximization(MODEL, "c1", steps=30, learning_rate=0.0)  # the start images
    assert (act >= act0).all() and (act > act0 + 0.5).sum() >= 3  # channel 3 is dead (relu 0 with 0 gradient)
    maps = A.layer_activation(MODEL, imgs, "c1").mean(axis=(1, 2))
    np.testing.assert_allclose(np.diag(maps), act, rtol=1e-10)  # the reported activation is the image's
    cls, logit = A.activation_maximization(MODEL, "head", channels=[0, 3], **kw)
    out = MODEL(cls).data
    np.testing.assert_allclose(out[[0, 1], [0, 3]], logit, rtol=1e-6)  # the engine's own forward


@pytest.mark.parametrize("call, message", [
    (lambda: A.grad_cam_plus_plus(MODEL, X, "flat"), "layer='flat' outputs shape"),
    (lambda: A.score_cam(MODEL, X, "head"), "layer='head' outputs shape"),
    (lambda: A.guided_grad_cam(MODEL, X, "nope"), "layer"),
    (lambda: A.noise_tunnel("saliency", MODEL, X), "method must be an attribution function"),
    (lambda: A.noise_tunnel(A.saliency, MODEL, X, kind="median"), "kind"),
    (lambda: A.activation_maximization(MODEL, "c1", channels=[4]), "channels must be None or channel ids in 0..3"),
    (lambda: A.activation_maximization(MODEL, "c1", jitter=-1), "jitter"),
    (lambda: A.activation_maximization(MODEL, "c1", unit="max"), "unit"),
    (lambda: A.infidelity(MODEL, X, X[:, :4]), r"attributions must be shaped like x \(3, 8, 8, 2\)"),
    (lambda: A.deletion_curve(MODEL, X, X, steps=0), "steps"),
    (lambda: A.sensitivity_max(None, MODEL, X), "method must be an attribution function"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


LINEAR = nn.Sequential([nn.Input((4, 4, 1)), nn.Flatten(), nn.Dense(3, use_bias=False, dtype=F64)])
XL = np.random.default_rng(5).random((2, 4, 4, 1))


def test_infidelity_against_the_formula_and_zero_for_the_gradient_of_a_linear_model():
    import jax

    sal = A.saliency(LINEAR, XL, target=1)
    assert np.abs(A.infidelity(LINEAR, XL, sal, target=1, n=5, noise_scale=0.1)).max() < 1e-20
    attr = A.input_x_gradient(MODEL, X, target=2)
    got = A.infidelity(MODEL, X, attr, target=2, n=5, noise_scale=0.1, seed=3)
    noise = 0.1 * np.asarray(jax.random.normal(jax.random.PRNGKey(3), (5,) + X.shape, "float64"))
    f = lambda z: MODEL(z).data[:, 2]  # noqa: E731  (the engine's own forward)
    ref = np.mean([((noise[k] * attr).sum((1, 2, 3)) - (f(X) - f(X - noise[k]))) ** 2 for k in range(5)], axis=0)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert got.min() > 1e-8  # negative control: not an exact explanation


def test_sensitivity_max_of_linear_maps():
    import jax

    got = A.sensitivity_max(A.input_x_gradient, LINEAR, XL, target=0, n=4, radius=0.05, seed=1)
    d = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (4,) + XL.shape, "float64", -0.05, 0.05))
    w = LINEAR.get_weights()[0][:, 0].reshape(4, 4, 1)
    ref = (np.sqrt(((d * w) ** 2).sum((2, 3, 4))) / np.sqrt(((XL * w) ** 2).sum((1, 2, 3)))).max(0)
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_deletion_and_insertion_curves_against_an_explicit_loop():
    import jax

    attr = A.saliency(MODEL, X, target=1)
    steps = 4
    scores, auc = A.deletion_curve(MODEL, X, attr, target=1, steps=steps)
    ins, ins_auc = A.insertion_curve(MODEL, X, attr, target=1, steps=steps)
    for b in range(3):
        order = np.argsort(-attr[b].sum(-1).ravel(), kind="stable")
        ref_del, ref_ins = [], []
        for k in range(steps + 1):
            first = np.zeros(64, bool)
            first[order[: round(k * 64 / steps)]] = True
            first = first.reshape(8, 8, 1)
            for keep, out in ((~first, ref_del), (first, ref_ins)):
                out.append(np.asarray(jax.nn.softmax(MODEL(np.where(keep, X[b], 0.0)[None]).data[0]))[1])
        np.testing.assert_allclose(scores[b], ref_del, rtol=1e-6)
        np.testing.assert_allclose(ins[b], ref_ins, rtol=1e-6)
        np.testing.assert_allclose(auc[b], np.trapezoid(ref_del, dx=1 / steps), rtol=1e-6)
    np.testing.assert_allclose(scores[:, -1], ins[:, 0], rtol=1e-12)  # all removed == nothing inserted
