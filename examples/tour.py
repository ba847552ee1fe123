# %% [markdown]
# # tour: the whole project in one run (well under two minutes on a 2-core laptop)
#
# 1. train a small CNN on handwritten digits with the engine (NumPy, our own backward pass);
# 2. differentiate the same model with JAX and compare every gradient, layer by layer;
# 3. look inside the trained network: feature maps, filters, saliency, SmoothGrad, occlusion.
#
# The figures go to ./tour_output/ (--out DIR to change it; --quick for a few-second smoke run).

# %%

import time

import numpy as np
from _common import Run, section, table

import jax_ref
from jax_ref import attribution as A
from tinygrad_cnn import data, nn, optim, viz
from tinygrad_cnn import functional as F

run = Run("tour", "the whole project in one run", default_out="tour_output")
timings = {}

# %% [markdown]
# ## 1. Train a CNN with the engine
# 1,797 scikit-learn digits, 8x8 grey images in [0, 1], shaped (n, 8, 8, 1): channels last, as Keras. A fifth of
# the training digits is split off as a validation set to watch during training; the test set is used once, at
# the end.

# %%
section("1. train a CNN with the engine")
x_train, y_train, x_test, y_test = data.load_digits(seed=0)
if run.quick:
    x_train, y_train, x_test, y_test = x_train[:320], y_train[:320], x_test[:128], y_test[:128]
n_val = len(x_train) // 5  # the split is already shuffled: its last fifth is a random validation set
x_train, y_train, x_val, y_val = x_train[:-n_val], y_train[:-n_val], x_train[-n_val:], y_train[-n_val:]
nn.set_random_seed(0)  # initial weights from a seed: every run prints the same numbers
model = nn.Sequential([
    nn.Input((8, 8, 1)),
    nn.Conv2D(16, 3, padding="same", activation="relu"),  # 16 filters of 3x3, output 8x8x16
    nn.MaxPooling2D(2),                                    # 4x4x16
    nn.Conv2D(32, 3, padding="same", activation="relu"),  # 4x4x32
    nn.MaxPooling2D(2),                                    # 2x2x32
    nn.Flatten(),                                          # 128
    nn.Dense(10),                                          # one logit per digit
], name="digits_cnn")
model.summary()
model.compile(optimizer=optim.Adam(model.parameters(), learning_rate=5e-3), loss=F.cross_entropy,
              metrics=["accuracy"])
start = time.perf_counter()
history = model.fit(x_train, y_train, batch_size=32, epochs=2 if run.quick else 6,
                    validation_data=(x_val, y_val), seed=0)
timings["training (engine)"] = time.perf_counter() - start
loss, accuracy = model.evaluate(x_test, y_test)
print(f"test accuracy {accuracy:.4f} ({len(y_test)} held-out digits), test loss {loss:.4f}, "
      f"trained in {timings['training (engine)']:.1f} s")
run.save(viz.training_curves(history, title="digits CNN trained by the engine"), "01_training_curves.png")

# Step through one backward pass of this CNN's loss in the browser: the page collapses it to layers (click one).
logits, names = viz.layer_names(model, x_test[:4])  # runs the layers one by one, naming what each recorded
loss4 = F.cross_entropy(logits, y_test[:4])
page = viz.explore(loss4, names={**names, "loss": loss4}, path=run.out / "08_backward_explorer.html")
print(f"  wrote {page.path} ({len(page.data['nodes'])} nodes, {len(page.data['steps'])} backward steps)")

# %% [markdown]
# ## 2. Check every gradient against JAX
# The twin is rebuilt from the model's own config and weights; both sides differentiate the loss in float64.
# One row per weight and per layer input (the gradient that layer's backward pass hands to the layer before).

# %%
section("2. check every gradient against JAX")
start = time.perf_counter()
report = jax_ref.compare_gradients(model, x_test[:64], y_test[:64])
timings["gradient check (JAX)"] = time.perf_counter() - start
print(report)

# %% [markdown]
# ## 3. Look inside the trained network

# %%
section("3. look inside the trained network")
idx = int(np.flatnonzero(model.predict(x_test).argmax(-1) == y_test)[0])  # the first test digit it reads right
image, label = x_test[idx], int(y_test[idx])
print(f"test image {idx}: a {label}")
start = time.perf_counter()
first_conv = model.layers[0].name  # "conv2d": layers are named like Keras' (class name in snake case)
maps = A.feature_maps(model, image)  # every layer's output for this image, by layer name
run.save(viz.feature_map_grid(maps, image=image), "02_feature_maps.png")
run.save(viz.feature_map_grid(maps, layer=first_conv), "03_feature_maps_channels.png")
run.save(viz.filter_grid(A.filters(model, first_conv), title=f"the 16 learned 3x3 filters of {first_conv}"),
         "04_filters.png")
sal = A.saliency(model, image, label)  # d logit_label / d image
run.save(viz.attribution_heatmap(image, sal, title=f"saliency: |d logit[{label}] / d pixel|"), "05_saliency.png")
# SmoothGrad: the mean gradient over noisy copies x + eps, eps ~ N(0, sigma^2), sigma = 15% of the image's range.
# One call with n=1 on 50 copies gives 50 single-noise gradients; the mean of the first n is SmoothGrad with n.
grads = A.smoothgrad(model, np.repeat(image[None], 50, axis=0), label, n=1, noise_level=0.15, seed=0)
smooth = {n: grads[:n].mean(axis=0) for n in (1, 5, 25, 50)}
run.save(viz.smoothgrad_convergence(image, smooth), "06_smoothgrad.png")
occ = A.occlusion(model, image, label, window=2, stride=1)  # score drop when a 2x2 patch is set to 0 (black)
run.save(viz.occlusion_map(image, occ, title="occlusion: 2x2 window, stride 1"), "07_occlusion.png")
timings["attribution and figures"] = time.perf_counter() - start
table([[k, v] for k, v in timings.items()], ["part", "seconds"])

# %% [markdown]
# ## What was written, and how to read it

# %%
section("what was written")
for path in run.written:
    print(f"  {path}  ({path.stat().st_size // 1024} KB)")
print(f"""
How to read them. 01: loss falls and accuracy rises on the training batches (solid) and on the validation
digits (dashed); the two staying close means the model is not memorising. The table above: every weight's gradient
and every layer's backward pass from the engine agrees with JAX's (relative error ~1e-10 in float64); a bug
would show as a failing row. 02: the digit passing through the network, each layer's output averaged over its
channels; pooling halves the size, so deeper maps are coarser and say more about "what" than "where". 03: the
16 channels of the first convolution one by one, each a filter's response map. 04: those 16 filters (red
positive, blue negative weights): mostly small edge and stroke detectors. 05: saliency, how strongly each
pixel moves the score of class {label}: a noisy but quick first answer. 06: SmoothGrad averages that
gradient over noisy copies; with n = 1 it is as noisy as saliency, by n = 25-50 it settles. 07: occlusion
blacks out 2x2 patches and measures how much the score drops (red: the patch was evidence for {label}; blue: it
spoke against it). More: examples/08_what_the_network_sees.py.""")
run.done()
