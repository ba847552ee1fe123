"""jax_ref.attribution against independent references (float64): per-image jax.grad loops, explicit window
loops, captured activations; seeds, batching, data formats, compile caching and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_ref
from jax_ref import attribution as A
from jax_ref.attribution import _net
from tinygrad_cnn import nn

F64 = "float64"


def small_cnn(data_format="channels_last", seed=0, bias=0.1):
    """A small float64 CNN with nonzero biases (so it is not positively homogeneous)."""
    nn.set_random_seed(seed)
    shape = (8, 8, 2) if data_format == "channels_last" else (2, 8, 8)
    kw = {"dtype": F64, "data_format": data_format}
    model = nn.Sequential([nn.Input(shape), nn.Conv2D(4, 3, padding="same", activation="relu", **kw),
                           nn.MaxPooling2D(2, **kw), nn.Conv2D(5, 3, padding="same", activation="tanh", **kw),
                           nn.Flatten(data_format=data_format), nn.Dense(6, dtype=F64)])
    rng = np.random.default_rng(seed + 1)
    model.set_weights([w + (bias * rng.standard_normal(w.shape) if w.ndim == 1 else 0) for w in
                       model.get_weights()])
    return model


@pytest.fixture(scope="module")
def model():
    return small_cnn()


_TWINS = {}


def twin(engine_model):
    """One JaxModel per engine model, so compiled functions are shared between tests."""
    if engine_model not in _TWINS:
        _TWINS[engine_model] = jax_ref.from_engine(engine_model)
    return _TWINS[engine_model]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(7).random((3, 8, 8, 2))


_REF = {}


def ref_grad(jm, x, t, score="logit"):
    """One image's gradient by jax.grad of a batch-1 score (the independent reference, called in loops)."""
    if (jm, score) not in _REF:
        def s(params, img, target):
            out = jm.apply(params, img[None])[0]
            out = jax.nn.softmax(out) if score == "probability" else out
            return out[target]
        _REF[jm, score] = jax.jit(jax.grad(s, argnums=1))
    return np.asarray(_REF[jm, score](jm.params, jnp.asarray(x), t))


def test_saliency_matches_per_image_grad(model, images):
    jm = twin(model)
    pred = np.argmax(np.asarray(jm.apply(jm.params, images)), axis=-1)
    for score in ("logit", "probability"):
        got = A.saliency(jm, images, score=score)
        ref = np.stack([ref_grad(jm, images[i], pred[i], score) for i in range(3)])
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)
    explicit = A.saliency(model, images, target=[1, 2, 3])
    ref = np.stack([ref_grad(jm, images[i], i + 1) for i in range(3)])
    np.testing.assert_allclose(explicit, ref, rtol=1e-10, atol=1e-13)
    single = A.saliency(jm, images[1], target=2)
    assert single.shape == images[1].shape and isinstance(single, np.ndarray)
    np.testing.assert_allclose(single, ref[1], rtol=1e-10, atol=1e-13)  # target 2 is image 1's target above


def test_saliency_channels_first_is_the_transpose():
    last, first = small_cnn("channels_last"), small_cnn("channels_first")
    x = np.random.default_rng(3).random((2, 8, 8, 2))
    got_first = A.saliency(first, x.transpose(0, 3, 1, 2), target=1)
    # same weights, Flatten reorders to channels_last order: the two models compute the same function
    np.testing.assert_allclose(got_first.transpose(0, 2, 3, 1), A.saliency(last, x, target=1), rtol=1e-10,
                               atol=1e-13)


def noise_reference(x, n, level, seed):
    """The documented noise: one key, normal draws of shape (n,) + batch shape, sigma per image."""
    eps = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (n,) + x.shape, jnp.float64))
    span = x.reshape(len(x), -1).max(1) - x.reshape(len(x), -1).min(1)
    return x[None] + level * span.reshape(1, -1, 1, 1, 1) * eps


def test_smoothgrad_kinds_match_explicit_samples(model, images):
    jm = twin(model)
    n, level = 6, 0.2
    noisy = noise_reference(images, n, level, seed=3)
    g = np.stack([[ref_grad(jm, noisy[k, i], 4) for i in range(3)] for k in range(n)])
    refs = {"mean": g.mean(0), "squared": (g ** 2).mean(0), "vargrad": g.var(0)}
    for kind, ref in refs.items():
        got = A.smoothgrad(jm, images, target=4, n=n, noise_level=level, kind=kind, seed=3)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=kind)
    chunked = A.smoothgrad(jm, images, target=4, n=n, noise_level=level, kind="vargrad", seed=3, batch_size=4)
    np.testing.assert_allclose(chunked, refs["vargrad"], rtol=1e-9, atol=1e-12, err_msg="batch_size=4")


def test_smoothgrad_seed_and_zero_noise(model, images):  # n=6 and target 4 reuse the compiles above
    jm = twin(model)
    a = A.smoothgrad(jm, images, target=4, n=6, seed=1)
    np.testing.assert_array_equal(a, A.smoothgrad(jm, images, target=4, n=6, seed=1))  # bit-identical
    assert np.abs(a - A.smoothgrad(jm, images, target=4, n=6, seed=2)).max() > 1e-6  # negative control
    sal = A.saliency(jm, images, target=4)
    zero = {k: A.smoothgrad(jm, images, target=4, n=6, noise_level=0.0, kind=k) for k in A.gradients.KINDS}
    np.testing.assert_allclose(zero["mean"], sal, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(zero["squared"], sal ** 2, rtol=1e-12, atol=1e-15)
    assert np.abs(zero["vargrad"]).max() < 1e-20


def test_integrated_gradients_trapezoid_and_completeness(model, images):
    jm = twin(model)
    steps, base = 8, 0.3
    got = A.integrated_gradients(jm, images, target=2, baseline=base, steps=steps)
    alphas = np.linspace(0, 1, steps + 1)
    w = np.full(steps + 1, 1 / steps)
    w[[0, -1]] /= 2
    for i in range(3):
        path = [base + a * (images[i] - base) for a in alphas]
        avg = sum(wk * ref_grad(jm, p, 2) for wk, p in zip(w, path, strict=True))
        np.testing.assert_allclose(got[i], (images[i] - base) * avg, rtol=1e-9, atol=1e-12)
    ig = A.integrated_gradients(jm, images, steps=64, batch_size=50)
    total, delta, rel = A.completeness(jm, images, ig)
    assert rel.shape == (3,) and np.all(rel <= 0.05), (total, delta, rel)
    coarse = A.integrated_gradients(jm, images, steps=1)  # negative control: 1 trapezoid is far off
    assert A.completeness(jm, images, coarse)[2].max() > rel.max()


def occlusion_reference(jm, x, t, window, stride, baseline):
    """captum's definition by explicit loops over window positions (channels_last, one image)."""
    score = lambda img: float(jm.apply(jm.params, img[None])[0, t])  # noqa: E731
    h, w = x.shape[:2]
    total, count, full = np.zeros((h, w)), np.zeros((h, w)), score(x)
    for i in range(-(-(h - window[0]) // stride[0]) + 1):
        for j in range(-(-(w - window[1]) // stride[1]) + 1):
            sl = (slice(i * stride[0], i * stride[0] + window[0]), slice(j * stride[1], j * stride[1] + window[1]))
            occ = x.copy()
            occ[sl] = baseline
            total[sl] += full - score(occ)
            count[sl] += 1
    return np.repeat((total / count)[..., None], x.shape[-1], axis=-1)


@pytest.mark.parametrize(("window", "stride"), [((3, 3), (2, 2)), ((2, 3), (2, 1)), ((8, 5), (1, 4))])
def test_occlusion_matches_captum_definition(model, images, window, stride):
    jm = twin(model)
    got = A.occlusion(jm, images[:2], target=3, window=window, stride=stride, baseline=0.25)
    for i in range(2):
        np.testing.assert_allclose(got[i], occlusion_reference(jm, images[i], 3, window, stride, 0.25),
                                   rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(A.occlusion(jm, images[:2], target=3, window=window, stride=stride, baseline=0.25,
                                           batch_size=7), got, rtol=1e-10, atol=1e-13)


def test_occlusion_channels_first():
    last, first = small_cnn("channels_last"), small_cnn("channels_first")
    x = np.random.default_rng(4).random((2, 8, 8, 2))
    got = A.occlusion(first, x.transpose(0, 3, 1, 2), target=0, window=3, stride=2)
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1), A.occlusion(last, x, target=0, window=3, stride=2),
                               rtol=1e-10, atol=1e-13)


def test_grad_cam_from_captured_activation_and_tap_gradient(model, images):
    jm = twin(model)
    name = model.layers[2].name  # the second conv, 4x4x5
    _, cap = jm.apply(jm.params, images, capture=True)
    a = np.asarray(cap["outputs"][name])

    def s(tap):
        out = jm.run(jm.params, jm.state, jnp.asarray(images), taps={name: tap})[0][0]
        return out[:, 1].sum()

    g = np.asarray(jax.grad(s)(jnp.zeros_like(a)))
    ref = np.maximum((g.mean(axis=(1, 2), keepdims=True) * a).sum(-1), 0)
    np.testing.assert_allclose(A.grad_cam(jm, images, name, target=1, upsample=False), ref, rtol=1e-10,
                               atol=1e-13)
    up = A.grad_cam(jm, images[0], name, target=1)
    assert up.shape == (8, 8) and np.all(up >= 0)


def test_feature_maps_and_filters(model, images):
    jm = twin(model)
    _, cap = jm.apply(jm.params, images[:1], capture=True)
    maps = A.feature_maps(jm, images[0])
    assert list(maps) == [layer.name for layer in model.layers]
    for name, value in maps.items():
        np.testing.assert_allclose(value, np.asarray(cap["outputs"][name])[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(A.filters(model, model.layers[0].name), model.layers[0].get_weights()[0])


def test_compiled_once_per_shape(model, images):
    jm = twin(model)
    net, _ = _net.as_net(jm)
    A.smoothgrad(jm, images, n=11)
    fn = net._jits[("smoothgrad", "logit", 11, "mean")].whole
    assert fn._cache_size() == 1
    A.smoothgrad(jm, images + 0.01, n=11, noise_level=0.1, seed=5)
    assert fn._cache_size() == 1
    A.smoothgrad(jm, images, target=2, n=11)  # given targets compile once more (no runtime branch) ...
    A.smoothgrad(jm, images, target=[1, 2, 3], n=11, seed=7)  # ... and only once
    assert fn._cache_size() == 2


@pytest.mark.parametrize(("shape", "config"), [
    ((2, 7, 7, 3), {"pool_size": [2, 2], "padding": "valid", "data_format": "channels_last"}),  # cropped edge
    ((2, 8, 7, 3), {"pool_size": [3, 2], "padding": "same", "data_format": "channels_last"}),  # -inf padding
    ((2, 3, 8, 6), {"pool_size": [2, 3], "padding": "valid", "data_format": "channels_first"}),
    ((2, 9, 2), {"pool_size": [2], "padding": "same", "data_format": "channels_last"}),
])
def test_max_pool_gradient_is_reduce_windows(shape, config):
    """The fast max-pool gradient sends each window's cotangent to the cell lax.reduce_window's transpose picks
    (the first maximum in row-major window order): exactly equal, also with many ties (small integers, zeros)."""
    from jax_ref import ops
    from jax_ref.attribution._maxpool import max_pool_stage

    rng = np.random.default_rng(0)
    x = jnp.asarray(np.maximum(rng.integers(-2, 3, shape), 0).astype(np.float64))
    config = dict(config, strides=config["pool_size"])
    fast = max_pool_stage(config)
    plain = lambda h: ops.max_pool(h, tuple(config["pool_size"]), strides=tuple(config["strides"]),  # noqa: E731
                                   padding=config["padding"], data_format=config["data_format"])
    y, vjp = jax.vjp(plain, x)
    y_fast, vjp_fast = jax.vjp(lambda h: fast({}, h), x)
    g = jnp.asarray(rng.standard_normal(y.shape))
    np.testing.assert_array_equal(y_fast, y)
    np.testing.assert_array_equal(jax.jit(vjp_fast)(g)[0], vjp(g)[0])
    assert max_pool_stage(dict(config, strides=[1] * len(shape[1:-1]))) is None  # overlapping: the plain op


@pytest.mark.parametrize(("call", "message"), [
    (lambda m, x: A.saliency(m, x, target=6), "outside the model's classes 0..5"),
    (lambda m, x: A.saliency(m, x, target=-1), "outside"),
    (lambda m, x: A.saliency(m, x, score="logits"), "did you mean 'logit'"),
    (lambda m, x: A.occlusion(m, x, window=9), "larger than the image"),
    (lambda m, x: A.occlusion(m, x, window=2, stride=3), "stride"),
    (lambda m, x: A.smoothgrad(m, x, n=0), "n must be an integer >= 1"),
    (lambda m, x: A.smoothgrad(m, x, noise_level=-0.1), "noise_level"),
    (lambda m, x: A.smoothgrad(m, x, kind="vargard"), "did you mean 'vargrad'"),
    (lambda m, x: A.grad_cam(m, x, "conv2dd"), "did you mean 'conv2d"),
    (lambda m, x: A.grad_cam(m, x, m.layers[-1].name), "no spatial axes"),
    (lambda m, x: A.filters(m, m.layers[1].name), "has no kernel"),
    (lambda m, x: A.saliency(m, x[..., 0, 0]), "must be one image"),
    (lambda m, x: A.integrated_gradients(m, x, baseline=np.zeros(3)), "baseline"),
])
def test_bad_input(model, images, call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(model, images)


def test_kept_call_options_never_pass_a_bad_call_or_a_changed_model(model, images):
    """The per-call fast paths (options kept per call signature, the net and params kept while the JaxModel holds
    the same arrays) give the same errors and see a model changed in place."""
    jm = twin(model)
    A.occlusion(jm, images, window=2, stride=1, batch_size=4)  # kept under (..., 2, 1, ..., 4, ...)
    for bad, message in ((dict(window=True), "window"), (dict(batch_size=True), "batch_size"),
                         (dict(score="logits"), "did you mean 'logit'")):
        with pytest.raises((ValueError, TypeError), match=message):
            A.occlusion(jm, images, **{"window": 2, "stride": 1, "batch_size": 4, **bad})
    A.smoothgrad(jm, images, n=3)  # kept under ("logit", 3, "mean", None): the per-call numbers still checked
    for bad, message in ((dict(noise_level=-0.1), "noise_level"), (dict(noise_level=float("nan")), "noise_level"),
                         (dict(seed=-1), "seed"), (dict(seed=True), "seed"), (dict(n=True), "n must")):
        with pytest.raises((ValueError, TypeError), match=message):
            A.smoothgrad(jm, images, **{"n": 3, **bad})
    before = A.saliency(jm, images, target=1)
    kernel = jm.params[model.layers[-1].name]["kernel"]
    try:
        jm.params[model.layers[-1].name]["kernel"] = 2 * kernel  # in place: the same dicts, another array
        np.testing.assert_allclose(A.saliency(jm, images, target=1), 2 * before, rtol=1e-12, atol=1e-15)
    finally:
        jm.params[model.layers[-1].name]["kernel"] = kernel
    np.testing.assert_array_equal(A.saliency(jm, images, target=1), before)
