"""Measuring attribution quality on shapes with known object masks, and the model-randomisation check.

A reference-style CNN is trained with the engine's ``fit`` on
``tinygrad_cnn.data.make_shapes`` (one shape per image, ground-truth mask).
For each method the map of a held-out image (for its true class) is reduced
to ``|a|`` per pixel (max over channels) and scored by:

- mass inside: ``sum_{mask} |a| / sum |a|`` (chance level: the mask's area fraction);
- pointing game: 1 if ``argmax |a|`` falls inside the mask;

both averaged over the held-out set, beside the deletion / insertion areas and captum's infidelity and
sensitivity_max (each with the settings of ``evaluate``). Model-randomisation sanity check
(Adebayo et al. 2018): the same maps from a re-initialised copy of the model
(same architecture, fresh random weights) are compared with the trained
model's by the Spearman rank correlation of ``|a|`` over pixels, averaged over
images; a method that reflects what the model learned must give a clearly
lower correlation than 1 (a control with a tiny weight perturbation stays near 1).
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.stats import rankdata

from jax_ref.attribution import gradients, guided, layers, metrics, paths
from jax_ref.attribution.deep_lift import deep_lift
from jax_ref.attribution.occlusion import occlusion as _occlusion
from jax_ref.attribution.score_cam import score_cam
from jax_ref.attribution.xrai import xrai
from tinygrad_cnn import data, nn, optim, validation
from tinygrad_cnn import functional as F

__all__ = ["METHODS", "attribution_maps", "evaluate", "format_table", "mass_inside", "pointing_game",
           "quality_table", "randomisation_check", "raw_attributions", "shapes_cnn", "spearman", "train_shapes_cnn"]

METHODS = ("saliency", "input_x_gradient", "smoothgrad", "smoothgrad_squared", "vargrad", "integrated_gradients",
           "deep_lift", "gradient_shap", "blur_ig", "guided_backprop", "deconvnet", "occlusion", "grad_cam",
           "guided_grad_cam", "grad_cam_plus_plus", "score_cam", "xrai")
_PLAIN = {"saliency": gradients.saliency, "input_x_gradient": gradients.input_x_gradient,
          "guided_backprop": guided.guided_backprop, "deconvnet": guided.deconvnet}
_CAMS = {"grad_cam": layers.grad_cam, "grad_cam_plus_plus": layers.grad_cam_plus_plus, "score_cam": score_cam}
_XRAI = {"steps": 50, "resize_image": False, "min_size": 8, "dilation_rad": 1, "min_pixel_diff": 8}  # small images
_CHUNK = 2048  # images in flight at once inside the batched methods


def shapes_cnn(size: int = 32, width: int = 8, seed: int = 0):
    """Conv2D(w,3,same,relu), MaxPool 2, Conv2D(2w,3,same,relu), MaxPool 2, Flatten, Dense(8w, relu), Dense(4)."""
    nn.set_random_seed(seed)
    return nn.Sequential([
        nn.Input((size, size, 1)), nn.Conv2D(width, 3, padding="same", activation="relu"), nn.MaxPooling2D(2),
        nn.Conv2D(2 * width, 3, padding="same", activation="relu"), nn.MaxPooling2D(2), nn.Flatten(),
        nn.Dense(8 * width, activation="relu"), nn.Dense(len(data.SHAPE_NAMES))])


def train_shapes_cnn(n_train: int = 1200, size: int = 32, epochs: int = 8, width: int = 8, seed: int = 0,
                     learning_rate: float = 2e-3, verbose: int = 0):
    """Train ``shapes_cnn`` with the engine (Adam, softmax cross-entropy, batch 32); returns ``(model, history)``."""
    x, y, _ = data.make_shapes(n_train, size=size, seed=seed)
    model = shapes_cnn(size, width, seed)
    model.compile(lambda p: optim.Adam(p, learning_rate=learning_rate), loss=F.cross_entropy, metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=epochs, seed=seed, verbose=verbose)
    return model, history


def _last_conv(model) -> str:
    return [layer.name for layer in model.layers if type(layer).__name__.startswith("Conv")][-1]


def raw_attributions(model, x, method: str, target=None) -> np.ndarray:
    """One of ``METHODS``' own (signed) maps with this module's settings, shaped like ``x`` (channels_last), or
    ``(B, H, W)`` for the CAM methods (at the last convolution, upsampled) and XRAI: SmoothGrad n=50, noise 15%;
    integrated gradients 50 steps and DeepLIFT from zeros; GradientSHAP 20 samples from a zero baseline with
    input noise of standard deviation 0.1, seed 0; blur IG from sigma 8 (a fully blurred image at 32 x 32) in
    50 steps; occlusion window 4, stride 2, baseline 0; XRAI with IG of 50 steps and Felzenszwalb at the image's
    own size (``_XRAI``: PAIR's defaults are sized for 224 x 224 images)."""
    method = validation.choice("attribution_maps", "method", method, METHODS)
    if method in _PLAIN:
        return _PLAIN[method](model, x, target)
    if method in _CAMS:
        return _CAMS[method](model, x, _last_conv(model), target)
    if method == "guided_grad_cam":
        return guided.guided_grad_cam(model, x, _last_conv(model), target)
    if method in ("smoothgrad", "smoothgrad_squared", "vargrad"):
        kind = {"smoothgrad": "mean", "smoothgrad_squared": "squared", "vargrad": "vargrad"}[method]
        return gradients.smoothgrad(model, x, target, n=50, noise_level=0.15, kind=kind, batch_size=_CHUNK)
    if method == "integrated_gradients":
        return gradients.integrated_gradients(model, x, target, steps=50, batch_size=_CHUNK)
    if method == "deep_lift":
        return deep_lift(model, x, target)
    if method == "gradient_shap":
        return paths.gradient_shap(model, x, target, n_samples=20, stdevs=0.1, batch_size=_CHUNK)
    if method == "blur_ig":
        return paths.blur_ig(model, x, target, max_sigma=8.0, steps=50, batch_size=_CHUNK)
    if method == "xrai":
        return xrai(model, x, target, batch_size=_CHUNK, **_XRAI)
    return _occlusion(model, x, target, window=4, stride=2, batch_size=_CHUNK)


def attribution_maps(model, x, method: str, target=None) -> np.ndarray:
    """``|a|`` per pixel ``(B, H, W)`` (channels_last ``x``) of ``raw_attributions`` (the max over channels);
    XRAI's gains clamped at 0 instead (a negative region ranks last, not by its size)."""
    if method == "xrai":
        return np.maximum(raw_attributions(model, x, method, target), 0.0)
    a = np.abs(raw_attributions(model, x, method, target))
    return a if a.ndim == x.ndim - 1 else a.max(axis=-1)


def mass_inside(maps, masks) -> np.ndarray:
    """Per image ``sum_{mask} |a| / sum |a|`` (0 for an all-zero map)."""
    a = np.abs(np.asarray(maps, np.float64)).reshape(len(maps), -1)
    m = np.asarray(masks, bool).reshape(len(masks), -1)
    total = a.sum(axis=1)
    return np.where(total > 0, (a * m).sum(axis=1) / np.where(total > 0, total, 1), 0.0)


def pointing_game(maps, masks) -> np.ndarray:
    """Per image 1.0 if the largest ``|a|`` (first in row-major order on ties) lies inside the mask."""
    a = np.abs(np.asarray(maps)).reshape(len(maps), -1)
    m = np.asarray(masks, bool).reshape(len(masks), -1)
    return m[np.arange(len(a)), a.argmax(axis=1)].astype(np.float64)


def spearman(a, b) -> np.ndarray:
    """Per row, the Spearman rank correlation of two ``(B, ...)`` arrays (average ranks on ties; 0 if constant)."""
    ra = rankdata(np.asarray(a).reshape(len(a), -1), axis=1)
    rb = rankdata(np.asarray(b).reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
    return np.where(den > 0, (ra * rb).sum(axis=1) / np.where(den > 0, den, 1), 0.0)


def _raw(model, x, target, name):
    return raw_attributions(model, x, name, target)


def evaluate(model, x, labels, masks, methods=METHODS, seed: int = 0) -> dict:
    """``{method: (mass inside, pointing game, deletion AUC, insertion AUC, infidelity, sensitivity_max)}``,
    means over the images, each for its true class. The curves rank pixels by ``|a|`` (16 steps, baseline 0,
    probability). Infidelity is captum's with ``normalize=True`` (the map rescaled by its best factor, so maps
    of any scale compare; a CAM map is broadcast over the channels), 10 perturbations of standard deviation
    0.003, on the raw signed map; sensitivity_max is captum's, the raw map's largest relative change over 3
    perturbations uniform in [-0.02, 0.02] (lower is better for both); both seeded with ``seed``."""
    out = {}
    for m in methods:
        raw = raw_attributions(model, x, m, labels)
        maps = np.abs(raw) if raw.ndim == x.ndim - 1 else np.abs(raw).max(axis=-1)
        ranks = np.broadcast_to(maps[..., None], x.shape)
        deletion = metrics.deletion_curve(model, x, ranks, labels)[1]
        insertion = metrics.insertion_curve(model, x, ranks, labels)[1]
        attr = np.broadcast_to(raw[..., None], x.shape) if raw.ndim == x.ndim - 1 else raw
        infidelity = metrics.infidelity(model, x, attr, labels, n=10, normalize=True, seed=seed)
        sensitivity = metrics.sensitivity_max(_raw, model, x, labels, n=3, seed=seed, name=m)
        out[m] = tuple(float(np.mean(v)) for v in (mass_inside(maps, masks), pointing_game(maps, masks), deletion,
                                                   insertion, infidelity, sensitivity))
    return out


def randomisation_check(model, x, labels, methods=METHODS, seed: int = 123, perturbation: float = 1e-3) -> dict:
    """``{method: (rho vs re-initialised model, rho vs a slightly perturbed model)}``: mean Spearman
    correlations of ``|a|`` maps (the second is the control, expected near 1)."""
    nn.set_random_seed(seed)
    fresh = nn.Sequential.from_config(model.get_config())  # fresh initialisation drawn after seeding
    near = nn.Sequential.from_config(model.get_config())
    rng = np.random.default_rng(seed)
    near.set_weights([w + perturbation * np.abs(w).mean() * rng.standard_normal(w.shape).astype(w.dtype)
                      for w in model.get_weights()])
    out = {}
    for m in methods:
        trained = attribution_maps(model, x, m, labels)
        out[m] = (float(spearman(trained, attribution_maps(fresh, x, m, labels)).mean()),
                  float(spearman(trained, attribution_maps(near, x, m, labels)).mean()))
    return out


def quality_table(n_train: int = 1200, n_test: int = 200, size: int = 32, epochs: int = 8, width: int = 8,
                  seed: int = 0, methods=METHODS, model=None) -> dict:
    """Train (unless ``model`` is given), then measure every method on ``n_test`` held-out shapes.

    Returns ``{"accuracy", "chance_mass", "rows": [(method, mass inside, pointing, deletion AUC, insertion AUC,
    infidelity, sensitivity_max, rho random, rho control)]}``
    where ``chance_mass`` is the mean mask area fraction (what a uniform map scores).
    """
    if model is None:
        model, _ = train_shapes_cnn(n_train, size, epochs, width, seed)
    x, y, masks = data.make_shapes(n_test, size=size, seed=seed + 10_000)
    accuracy = float((model.predict(x).argmax(axis=-1) == y).mean())
    scores = evaluate(model, x, y, masks, methods, seed=seed)
    sanity = randomisation_check(model, x, y, methods, seed=seed + 1)
    rows = [(m, *scores[m], *sanity[m]) for m in methods]
    return {"accuracy": accuracy, "chance_mass": float(masks.mean()), "rows": rows}


def format_table(result: dict) -> str:
    """A Markdown table of ``quality_table``'s result."""
    lines = [f"held-out accuracy {result['accuracy']:.3f}; a uniform map puts {result['chance_mass']:.3f} of its "
             f"mass inside the mask", "",
             "| method | mass inside mask | pointing game | deletion AUC (lower better) | insertion AUC | "
             "infidelity (lower better) | sensitivity max (lower better) | Spearman vs re-initialised | "
             "Spearman vs perturbed |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {m} | {mass:.3f} | {point:.3f} | {dele:.3f} | {ins:.3f} | {inf:.3g} | {sens:.3f} | {rho:.3f} | "
              f"{ctrl:.3f} |" for m, mass, point, dele, ins, inf, sens, rho, ctrl in result["rows"]]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m jax_ref.attribution.quality [--quick] [--n-test N]
    quick = "--quick" in sys.argv
    kwargs = {"n_train": 300, "n_test": 32, "size": 16, "epochs": 3, "width": 4} if quick else {}
    if "--n-test" in sys.argv:
        kwargs["n_test"] = int(sys.argv[sys.argv.index("--n-test") + 1])
    print(format_table(quality_table(**kwargs)))
