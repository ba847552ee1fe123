"""Regenerate the README's gallery: a few small PNGs in docs/images/ (run from anywhere, about a minute).

    python docs/make_images.py

Every image is drawn by tinygrad_cnn.viz from models trained here with the
engine, seeded, so reruns give the same pictures. Kept small (dpi 72, < 150 KB
each) because they are committed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

import jax_ref
import tinygrad_cnn as tg
from jax_ref import attribution as A
from jax_ref.attribution import quality as Q
from tinygrad_cnn import data, nn, optim, viz
from tinygrad_cnn import functional as F

OUT = Path(__file__).resolve().parent / "images"
DPI = 72


def save(fig, name: str) -> None:
    path = viz.save_figure(fig, OUT / name, dpi=DPI)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def digits_cnn():
    nn.set_random_seed(0)
    return nn.Sequential([
        nn.Input((8, 8, 1)),
        nn.Conv2D(16, 3, padding="same", activation="relu"), nn.MaxPooling2D(2),
        nn.Conv2D(32, 3, padding="same", activation="relu"), nn.MaxPooling2D(2),
        nn.Flatten(), nn.Dense(10),
    ], name="digits_cnn")


def explorer_screenshot(name: str = "explorer.png") -> None:
    """The backprop explorer on example 01's expression, at the step where a adds its three paths: a
    screenshot by headless Chromium (Playwright driving the system's browser); skipped, saying so, without."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print(f"skipped {name}: needs chromium and the playwright package (pip install -e '.[browser]')")
        return
    x = tg.Tensor(np.float64(0.8), requires_grad=True)
    y = tg.Tensor(np.float64(-1.3), requires_grad=True)
    a = x * y
    b = a.tanh() + x
    f = a * b + a.exp() * 0.5
    page = viz.explore(f, names={"x": x, "y": y, "a": a, "b": b, "f": f})
    step = 1 + next(k for k, s in enumerate(page.data["steps"]) if page.data["nodes"][s["node"]]["name"] == "a")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1440, "height": 540})
        tab.goto(page.save(Path(tmp) / "explore.html").as_uri())
        for _ in range(step):
            tab.keyboard.press("ArrowRight")
        OUT.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=OUT / name)
        browser.close()
    print(f"wrote {OUT / name} ({(OUT / name).stat().st_size // 1024} KB)")


def main() -> None:
    explorer_screenshot()
    x_train, y_train, x_test, y_test = data.load_digits(seed=0)
    model = digits_cnn()
    model.compile(optim.Adam(model.parameters(), learning_rate=5e-3), F.cross_entropy, ["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=6, validation_data=(x_test, y_test), seed=0,
                        verbose=0)
    save(viz.training_curves(history, title="digits CNN trained by the engine"), "training_curves.png")

    image, label = x_test[0], int(y_test[0])
    first_conv = model.layers[0].name
    save(viz.feature_map_grid(A.feature_maps(model, image), image=image), "feature_maps.png")
    save(viz.filter_grid(A.filters(model, first_conv), title="learned 3x3 filters (first layer)"), "filters.png")
    grads = A.smoothgrad(model, np.repeat(image[None], 50, axis=0), label, n=1, noise_level=0.15, seed=0)
    save(viz.smoothgrad_convergence(image, {n: grads[:n].mean(axis=0) for n in (1, 5, 25, 50)}),
         "smoothgrad_convergence.png")

    result = jax_ref.parity(digits_cnn(), x_train, y_train, optimizer="adam", learning_rate=3e-3, steps=100)
    save(viz.loss_comparison(result.engine_losses, result.jax_losses, labels=("engine", "JAX"),
                             title="the same CNN trained by the engine and by JAX/Optax"), "parity.png")

    shapes_model, _ = Q.train_shapes_cnn(n_train=1000, epochs=6, learning_rate=5e-3)
    x, y, _ = data.make_shapes(8, size=32, seed=10_000)
    k = int(np.flatnonzero(shapes_model.predict(x).argmax(-1) == y)[0])
    img, target = x[k], int(y[k])
    convs = [layer.name for layer in shapes_model.layers if type(layer).__name__ == "Conv2D"]
    maps = {"saliency": A.saliency(shapes_model, img, target),
            "SmoothGrad": A.smoothgrad(shapes_model, img, target, n=50, seed=0),
            "integrated gradients": A.integrated_gradients(shapes_model, img, target),
            "occlusion": A.occlusion(shapes_model, img, target, window=4, stride=2),
            "Grad-CAM": A.grad_cam(shapes_model, img, convs[-1], target)}
    save(viz.method_comparison(img, maps, title=f"why '{data.SHAPE_NAMES[target]}'? five answers"), "methods.png")


if __name__ == "__main__":
    main()
