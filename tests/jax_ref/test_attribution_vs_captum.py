"""``jax_ref.attribution`` against captum 0.8 on the same weights: every method captum also has.

Two float64 engine CNNs on 8x8x1 digits (a Sequential ``Conv2D(relu) -> MaxPooling2D -> Conv2D(relu) -> Flatten
-> Dense`` and a graph model whose second conv is a residual branch, ``ReLU(pool + conv(pool))``) are copied
into a float64 PyTorch module built here (kernels ``HWIO -> OIHW``, the dense kernel's rows permuted from the
engine's ``(h, w, c)`` flatten order to PyTorch's ``(c, h, w)``; images NHWC -> NCHW), and each method's map on
four digits with per-image targets is compared with captum's by ``jax_ref._report.compare_arrays`` (the
project's elementwise relative error, elements far below the map's scale judged against ``sqrt(eps) * scale``).
Where a method is random (SmoothGrad, noise tunnels, infidelity, sensitivity_max) captum is fed our noise, drawn
as our docstrings define it, in captum's sample layout (``repeat_interleave``: image-major), through its own
``perturb_func`` argument or, for ``NoiseTunnel``, in place of ``torch.normal``. ``pytest -s`` prints each
case's worst relative error (the table of the doc). The argument mapping and every
documented difference are in docs/attribution_vs_captum.md. Negative control, per case: captum on a copy with
one first-layer weight and one dense column moved by 0.05 must disagree (and, once, the unpermuted dense kernel).

Local only: torch and captum are not in pyproject's dev extras (captum's metadata pins ``numpy<2``, which would
downgrade CI's NumPy; install it with ``pip install --no-deps captum``), so this module skips without them.
"""

from __future__ import annotations

from unittest import mock

import jax
import numpy as np
import pytest

from jax_ref import attribution as A
from jax_ref._report import compare_arrays
from tinygrad_cnn import data, nn

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
from captum import attr as C  # noqa: E402
from captum import metrics as CM  # noqa: E402

F64 = "float64"
# float64 against float64: two correct programs differ by rounding only (measured worst 7e-13: elements far
# below a map's scale are judged against sqrt(eps) * scale, so summation order shows there)
RTOL = 1e-11
# captum rounds through float32 here: IG's step sizes (``torch.tensor(step_sizes).float()``) and occlusion's
# result (``single_attrib.float() / weight``); one float32 rounding, ``eps32 = 2**-23``
RTOL_F32 = float(np.finfo(np.float32).eps)
F32_CASES = ("integrated_gradients", "occlusion", "noise_tunnel(integrated_gradients)")
# the weight-perturbed control must be off by far more (its maps move by percents)
CONTROL = 1e-3
X = data.load_digits()[0][:4].astype(np.float64)  # every digit spans [0, 1] exactly: the same sigma per image
T = np.array([0, 3, 7, 9])
N, LEVEL, SEED = 4, 0.15, 3  # noise samples, SmoothGrad's noise_level, seed
CAM = {False: "c2", True: "res_relu"}  # our name for the node captum hooks as ``net.r2``
# captum warns that it sets requires_grad on the inputs and hooks the ReLUs: what it is asked to do
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:captum")


def engine_cnn(residual: bool):
    """The float64 engine model, nonzero biases (so a lost bias cannot hide)."""
    nn.set_random_seed(0)
    kw = {"dtype": F64, "padding": "same"}
    inp = nn.Input((8, 8, 1))
    if residual:
        h = nn.MaxPooling2D(2, name="pool")(nn.Conv2D(4, 3, activation="relu", name="c1", **kw)(inp))
        h = nn.ReLU(dtype=F64, name="res_relu")(nn.Add(name="add")([h, nn.Conv2D(4, 3, name="c2", **kw)(h)]))
        model = nn.Model(inp, nn.Dense(10, dtype=F64, name="head")(nn.Flatten(name="flat")(h)))
    else:
        model = nn.Sequential([inp, nn.Conv2D(4, 3, activation="relu", name="c1", **kw),
                               nn.MaxPooling2D(2, name="pool"), nn.Conv2D(6, 3, activation="relu", name="c2", **kw),
                               nn.Flatten(name="flat"), nn.Dense(10, dtype=F64, name="head")])
    rng = np.random.default_rng(1)
    model.set_weights([w + (0.1 * rng.standard_normal(w.shape) if w.ndim == 1 else 0) for w in model.get_weights()])
    return model


class TorchCNN(torch.nn.Module):
    """The engine CNN in PyTorch (NCHW). Every ReLU is its own ``nn.ReLU`` module: captum's guided backprop and
    deconvnet hook those modules, and its layer methods hook ``r2`` (our ``CAM`` node)."""

    def __init__(self, c2: int, residual: bool):
        super().__init__()
        self.residual = residual
        self.c1, self.r1, self.pool = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
        self.c2, self.r2 = torch.nn.Conv2d(4, c2, 3, padding=1), torch.nn.ReLU()
        self.head = torch.nn.Linear(16 * c2, 10)

    def forward(self, x):
        h = self.pool(self.r1(self.c1(x)))
        z = self.c2(h)
        return self.head(self.r2(h + z if self.residual else z).flatten(1))


def torch_copy(model, residual: bool, perturb: float = 0.0, permute: bool = True):
    """A float64 ``TorchCNN`` with ``model``'s weights; ``perturb`` is added to one first-layer kernel entry and to
    the dense weights of the first flattened feature, and ``permute=False`` leaves the dense kernel in the
    engine's flatten order (both for the negative controls)."""
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weight_names}
    k2 = weights["c2"][0]
    net = TorchCNN(k2.shape[-1], residual).double()
    with torch.no_grad():
        for name in ("c1", "c2"):
            kernel, bias = weights[name]
            getattr(net, name).weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            getattr(net, name).bias.copy_(torch.from_numpy(bias))
        kernel, bias = weights["head"]
        if permute:  # rows (h, w, c) -> (c, h, w)
            kernel = kernel.reshape(4, 4, k2.shape[-1], -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
        net.head.weight.copy_(torch.from_numpy(kernel.T.copy()))
        net.head.bias.copy_(torch.from_numpy(bias))
        net.c1.weight[0, 0, 1, 1] += perturb  # moves every activation
        net.head.weight[:, 0] += perturb  # and every layer gradient
    return net.eval()


def nchw(a):
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 1)))


def nhwc(t):
    """captum's result in our layout: NCHW -> NHWC (a ``(B, 1, H, W)`` CAM -> ``(B, H, W, 1)``), vectors as they are."""
    a = t.detach().numpy()
    return np.moveaxis(a, 1, -1) if a.ndim == 4 else a


def captum_layout(noise):
    """Our ``(n, B, ...)`` noise (sample-major) in captum's ``(B * n, C, H, W)`` (``repeat_interleave``)."""
    n, b = noise.shape[:2]
    return nchw(np.swapaxes(np.asarray(noise), 0, 1).reshape((b * n,) + noise.shape[2:]))


def our_normal(level):
    """``sigma * normal(PRNGKey(SEED), (N, B) + image shape)``: SmoothGrad's noise, ``sigma = level`` (every
    image spans 1)."""
    return level * jax.random.normal(jax.random.PRNGKey(SEED), (N,) + X.shape, np.float64)


def fake_torch_normal(level):
    """Stands in for ``torch.normal(0, stdev_expanded)`` inside captum's NoiseTunnel: checks captum asked for our
    sigma everywhere and returns our noise."""
    noise = captum_layout(our_normal(level))

    def normal(mean, std):
        assert mean == 0 and std.shape == noise.shape and torch.all(std == level)
        return noise.clone()
    return mock.patch.object(torch, "normal", normal)


def tunnel(algorithm, kind, **kw):
    def run(net, xt, tt):
        with fake_torch_normal(LEVEL):
            return C.NoiseTunnel(algorithm(net)).attribute(xt, nt_type=kind, nt_samples=N, stdevs=LEVEL, target=tt,
                                                           **kw)
    return run


def infidelity_perturb(inputs):
    """captum ``perturb_func``: our ``noise_scale * normal(PRNGKey(SEED), (N, B) + image shape)``, ``x - I``."""
    noise = captum_layout(0.003 * jax.random.normal(jax.random.PRNGKey(SEED), (N,) + X.shape, np.float64))
    return noise, inputs - noise


def sensitivity_perturb(inputs, radius):
    """captum ``perturb_func``: our ``uniform(PRNGKey(SEED), (N, B) + image shape, -radius, radius)``, ``x + d``."""
    return inputs + captum_layout(jax.random.uniform(jax.random.PRNGKey(SEED), (N,) + X.shape, np.float64,
                                                     -radius, radius))


def trapezoid(steps: int) -> float:
    """captum's ``riemann_trapezoid`` with ``n_steps = steps + 1`` is ours times this: it evaluates our ``steps +
    1`` points ``a_k = k / steps`` but weighs them ``1 / (steps + 1)`` (half at both ends), weights that sum to
    ``steps / (steps + 1)`` instead of 1 (``approximation_methods.riemann_builders``)."""
    return steps / (steps + 1)


def upsampled_grad_cam(net, xt, tt):
    """captum's Grad-CAM as ours: ``LayerGradCam(relu_attributions=True)`` then ``LayerAttribution.interpolate``
    to the image size, bilinear (``F.interpolate``, ``align_corners=False``)."""
    cam = C.LayerGradCam(net, net.r2).attribute(xt, tt, relu_attributions=True)
    return C.LayerAttribution.interpolate(cam, tuple(xt.shape[2:]), interpolate_mode="bilinear")


BASE = np.full_like(X, 0.25)
# name -> (ours(model, x, targets, cam node), captum(net, x NCHW, targets)); both from the same X and T
CASES = {
    "saliency": (lambda m, x, t, L: A.saliency(m, x, t),
                 lambda net, x, t: C.Saliency(net).attribute(x, target=t, abs=False)),
    "saliency abs": (lambda m, x, t, L: np.abs(A.saliency(m, x, t)),
                     lambda net, x, t: C.Saliency(net).attribute(x, target=t)),
    "input_x_gradient": (lambda m, x, t, L: A.input_x_gradient(m, x, t),
                         lambda net, x, t: C.InputXGradient(net).attribute(x, target=t)),
    "integrated_gradients steps=32": (
        lambda m, x, t, L: A.integrated_gradients(m, x, t, baseline=BASE, steps=32) * trapezoid(32),
        lambda net, x, t: C.IntegratedGradients(net).attribute(x, nchw(BASE), target=t, n_steps=33,
                                                               method="riemann_trapezoid")),
    "guided_backprop": (lambda m, x, t, L: A.guided_backprop(m, x, t),
                        lambda net, x, t: C.GuidedBackprop(net).attribute(x, target=t)),
    "deconvnet": (lambda m, x, t, L: A.deconvnet(m, x, t),
                  lambda net, x, t: C.Deconvolution(net).attribute(x, target=t)),
    "grad_cam": (lambda m, x, t, L: A.grad_cam(m, x, L, t)[..., None],
                 upsampled_grad_cam),
    "grad_cam upsample=False": (
        lambda m, x, t, L: A.grad_cam(m, x, L, t, upsample=False)[..., None],
        lambda net, x, t: C.LayerGradCam(net, net.r2).attribute(x, t, relu_attributions=True)),
    "guided_grad_cam": (lambda m, x, t, L: A.guided_grad_cam(m, x, L, t),
                        lambda net, x, t: C.GuidedGradCam(net, net.r2).attribute(x, t, interpolate_mode="bilinear")),
    "occlusion window=3 stride=2 baseline=0.5": (
        lambda m, x, t, L: A.occlusion(m, x, t, window=3, stride=2, baseline=0.5),
        lambda net, x, t: C.Occlusion(net).attribute(x, sliding_window_shapes=(1, 3, 3), strides=(1, 2, 2),
                                                     baselines=0.5, target=t)),
    "layer_activation": (lambda m, x, t, L: A.layer_activation(m, x, L),
                         lambda net, x, t: C.LayerActivation(net, net.r2).attribute(x)),
    "layer_gradient": (lambda m, x, t, L: A.layer_gradient(m, x, L, t),
                       lambda net, x, t: C.LayerGradientXActivation(net, net.r2, multiply_by_inputs=False).attribute(
                           x, t)),
    **{f"smoothgrad {kind}": (
        lambda m, x, t, L, kind=kind: A.smoothgrad(m, x, t, n=N, noise_level=LEVEL, kind=kind, seed=SEED),
        tunnel(C.Saliency, theirs, abs=False)) for kind, theirs in (("mean", "smoothgrad"), ("vargrad", "vargrad"))},
    "noise_tunnel(saliency) squared": (  # noise_tunnel: the same noise as smoothgrad, one compile for any kind
        lambda m, x, t, L: A.noise_tunnel(A.saliency, m, x, t, n=N, noise_level=LEVEL, kind="squared", seed=SEED),
        tunnel(C.Saliency, "smoothgrad_sq", abs=False)),
    "noise_tunnel(integrated_gradients) vargrad": (
        lambda m, x, t, L: A.noise_tunnel(A.integrated_gradients, m, x, t, n=N, noise_level=LEVEL, kind="vargrad",
                                          seed=SEED, steps=8) * trapezoid(8) ** 2,
        tunnel(C.IntegratedGradients, "vargrad", n_steps=9, method="riemann_trapezoid")),
    **{f"infidelity normalize={norm}": (
        lambda m, x, t, L, norm=norm: A.infidelity(m, x, A.saliency(m, x, t), t, n=N, seed=SEED, normalize=norm),
        lambda net, x, t, norm=norm: CM.infidelity(net, infidelity_perturb, x, C.Saliency(net).attribute(
            x, target=t, abs=False), target=t, n_perturb_samples=N, normalize=norm))
       for norm in (False, True)},
    "sensitivity_max(saliency)": (
        lambda m, x, t, L: A.sensitivity_max(A.saliency, m, x, t, n=N, radius=0.02, seed=SEED),
        lambda net, x, t: CM.sensitivity_max(C.Saliency(net).attribute, x, sensitivity_perturb, perturb_radius=0.02,
                                             n_perturb_samples=N, target=t, abs=False)),
}
# the graph model runs the same code on another walk: the cases where the walk, a graph node or a ReLU layer counts
GRAPH_CASES = ("saliency", "guided_backprop", "guided_grad_cam", "layer_gradient")


@pytest.fixture(scope="module", name="models")
def models_fixture():
    out = {}
    for residual in (False, True):
        model = engine_cnn(residual)
        out[residual] = (model, torch_copy(model, residual), torch_copy(model, residual, perturb=0.05))
    return out


@pytest.mark.parametrize("residual,case", [(False, c) for c in CASES] + [(True, c) for c in GRAPH_CASES],
                         ids=lambda v: {False: "sequential", True: "residual"}.get(v, v) if isinstance(v, bool) else v)
def test_matches_captum(models, residual, case):
    model, net, moved = models[residual]
    ours_fn, theirs_fn = CASES[case]
    ours = ours_fn(model, X, T, CAM[residual])
    theirs = nhwc(theirs_fn(net, nchw(X), torch.from_numpy(T)))
    entry = compare_arrays(case, "captum", ours, theirs)
    assert entry.max_rel_error <= (RTOL_F32 if case.startswith(F32_CASES) else RTOL), entry
    control = compare_arrays(case, "captum, moved weight", ours, nhwc(theirs_fn(moved, nchw(X), torch.from_numpy(T))))
    assert control.max_rel_error > CONTROL, control
    print(f"\nTABLE {'residual' if residual else 'sequential'} | {case} | {entry.max_rel_error:.1e} | control "
          f"{control.max_rel_error:.1e}")


def test_flatten_order_matters(models):
    """The dense kernel's rows must be permuted to PyTorch's (c, h, w) flatten order: without it, no agreement."""
    model = models[False][0]
    unpermuted = torch_copy(model, False, permute=False)
    wrong = C.Saliency(unpermuted).attribute(nchw(X), target=torch.from_numpy(T), abs=False)
    assert compare_arrays("saliency", "unpermuted", A.saliency(model, X, T), nhwc(wrong)).max_rel_error > 0.1


def test_documented_differences(models):
    """captum's defaults that differ from ours, as docs/attribution_vs_captum.md says: GuidedGradCam resizes with
    ``nearest``; Occlusion answers in float32 (riemann_trapezoid's weight sum is checked by ``trapezoid`` above:
    without that factor the IG case fails)."""
    model, net, _ = models[False]
    xt, tt = nchw(X), torch.from_numpy(T)
    nearest = nhwc(C.GuidedGradCam(net, net.r2).attribute(xt, tt))
    assert compare_arrays("ggc", "nearest", A.guided_grad_cam(model, X, "c2", T), nearest).max_rel_error > 0.1
    occ = C.Occlusion(net).attribute(xt, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), target=tt)
    assert occ.dtype == torch.float32
