# %% [markdown]
# # 11: bring your own Keras model
#
# A Keras 3 `.keras` file is a zip of `config.json` (the architecture) and `model.weights.h5` (the weights).
# `nn.load_model` rebuilds the model in the engine from the same config, layer by layer (the engine's layers take
# Keras' names and arguments), and copies the weights; from then on it is an ordinary engine model. We check that
# it computes what Keras computes (when Keras is installed), that its backward pass agrees with the JAX twin's on
# every parameter and layer input (`jax_ref.compare_gradients`), and then ask which pixels one prediction rests on.
#
#     python examples/11_bring_your_own_keras_model.py my_cnn.keras   # your own file (input: one 8x8 or larger image)
#     python examples/11_bring_your_own_keras_model.py                # makes one: a small CNN trained by Keras
#
# As a notebook it has no command line: it makes its own file (or set `path` below to yours).

# %%

import os
import sys
from pathlib import Path

import numpy as np
from _common import Run, in_notebook, quick_xla_compiles, section, table

os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras (if used) runs on JAX, which the twin needs anyway
argv = [] if in_notebook() else sys.argv[1:]   # a kernel's command line is the kernel's, not ours
path_arg = next((a for a in argv if a.endswith(".keras")), None)
run = Run("11_bring_your_own_keras_model", "bring your own Keras model: load a .keras file, check its gradients "
          "against JAX, and explain one prediction", argv=[a for a in argv if a != path_arg])
quick_xla_compiles()

import jax_ref  # noqa: E402
from jax_ref import attribution as A  # noqa: E402
from tinygrad_cnn import data, nn, viz  # noqa: E402

x_train, y_train, x_test, y_test = data.load_digits(seed=0)

# %% [markdown]
# ## The .keras file
# Without a file of yours, Keras itself trains a small CNN on the digits and saves it as Keras does. Its head is
# global average pooling, the architecture Grad-CAM was made for (after Flatten + Dense the mean gradient of a
# channel can be negative where the channel matters, and Grad-CAM's relu then shows nothing).


# %%
def make_keras_file(path: Path):
    """Train a small CNN on the digits with Keras and save it at ``path``; returns the Keras model."""
    import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Conv2D(16, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.GlobalAveragePooling2D(), L.Dropout(0.2), L.Dense(10),
    ], name="keras_digits_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    n, epochs = (800, 6) if run.quick else (len(x_train), 30)
    model.fit(x_train[:n], y_train[:n], batch_size=32, epochs=epochs, verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


section("the .keras file")
keras_model = None
if path_arg is None:
    path = run.out / "keras_digits_cnn.keras"
    keras_model = make_keras_file(path)
    print(f"no file given: trained a CNN with Keras and saved it as {path}")
else:
    path = Path(path_arg)
model = nn.load_model(path)
model.summary()

# %% [markdown]
# ## Does the engine compute what Keras computes?
# The same images through both; the outputs should agree to float32 rounding. A model with another input shape
# gets random images of that shape (explanations of noise, but every check still runs).

# %%
section("does the engine compute what Keras computes?")
shape = model.input_shape[1:]
if shape == x_test.shape[1:]:
    images, labels = x_test[:32], y_test[:32]
else:
    images = np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype(np.float32)
    labels = None
ours = model.predict(images)
try:
    import keras

    keras_model = keras_model or keras.models.load_model(path)
    theirs = np.asarray(keras_model.predict(images, verbose=0))
    print(f"max |engine - Keras| over {len(images)} images: {np.abs(ours - theirs).max():.2e} "
          f"(outputs up to {np.abs(theirs).max():.1f})")
except ImportError:
    print("Keras is not installed: skipping the comparison with Keras")
if labels is not None:
    print(f"accuracy on these {len(images)} test digits: {(ours.argmax(-1) == labels).mean():.3f}")

# %% [markdown]
# ## Its gradients against the JAX twin
# The twin rebuilds the model in JAX from the engine's layers and weights; both differentiate the same loss (cross
# entropy against the true classes, or the predicted ones for random images) in float64. The grade is per
# parameter and per layer input, so a wrong backward pass names its layer.

# %%
section("its gradients against the JAX twin")
targets = ours.argmax(-1) if labels is None else labels
report = jax_ref.compare_gradients(model, images[:8], targets[:8])
print(report)

# %% [markdown]
# ## Which pixels does one prediction rest on?
# S is the logit of the predicted class. Saliency is dS/dx; SmoothGrad averages dS/dx over noisy copies of the
# image; Grad-CAM weights the last conv layer's channels by their mean gradient and keeps the positive part.

# %%
section("which pixels does one prediction rest on?")
first = 0 if labels is None else int(np.argmax(ours.argmax(-1) == labels))  # the first image it gets right
image, pred = images[first], int(ours[first].argmax())
last_conv = [layer.name for layer in model.layers if type(layer).__name__.startswith("Conv")][-1]
maps = {
    "saliency": A.saliency(model, image, pred),
    "SmoothGrad": A.smoothgrad(model, image, pred, n=16 if run.quick else 50, noise_level=0.15, seed=0),
    f"Grad-CAM ({last_conv})": A.grad_cam(model, image, last_conv, pred),
}
table([[name, float(np.abs(a).max()), float(np.abs(a).mean())] for name, a in maps.items()],
      ["method", "max |a|", "mean |a|"])
if not np.any(maps[f"Grad-CAM ({last_conv})"]):
    print(f"Grad-CAM is zero everywhere: the channels of {last_conv} weighted by their mean gradient sum to a negative "
          f"number at every position, which its relu removes (common when Flatten + Dense follow the layer)")
title = f"{path.name}: why class {pred}" + ("" if labels is None else f" (true class {labels[first]})")
run.save(viz.method_comparison(image, maps, title=title), "explanations.png")
run.done()
