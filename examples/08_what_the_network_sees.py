# %% [markdown]
# # 08: what the network sees
# Feature maps, filters, occlusion, saliency, SmoothGrad, integrated gradients, Grad-CAM.
#
# A trained CNN is not a black box: we can read every layer's output, look at
# the filters it learned, and ask which pixels its decision depends on. We do
# it twice: on the 8x8 digits and on 32x32 synthetic shapes, whose object
# masks are known, so we can also measure whether an explanation points at the
# object. Every map comes from `jax_ref.attribution` (the JAX twin of the engine
# model, jit-compiled and batched) as a raw array; `tinygrad_cnn.viz` draws it.
# An explanation is only worth reading for a model that is right: we explain an
# image the model classifies correctly, and every title says what it predicted.

# %%

import numpy as np
from _common import Run, quick_xla_compiles, section, table

from jax_ref import attribution as A
from jax_ref.attribution import quality as Q
from tinygrad_cnn import data, nn, optim, viz
from tinygrad_cnn import functional as F

run = Run("08_what_the_network_sees", "what the network sees: feature maps, filters and attribution")
# This script compiles about a dozen small JAX functions per model and runs each on little data, so compiling
# costs more than computing: we trade some run-time speed for faster compiles (results are unchanged).
quick_xla_compiles()


# %% [markdown]
# ## Every view of one image
# `explain` draws, for one trained model, the feature maps and filters, five attribution methods side by side,
# SmoothGrad as the number of samples grows and as the noise grows. Signed maps (integrated gradients,
# occlusion) use a diverging colour map with 0 at white; absolute maps a sequential one from 0; each map is
# shown beside the image with the image's outline, never blended over it.

# %%
def conv_layers(model):
    return [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]


def explain(tag, model, images, labels, class_names, window, stride, extra_figures=True):
    """Every picture for the first image of ``images`` that the trained model classifies correctly (files
    prefixed with ``tag``); returns the attribution maps of the whole batch, each image explained for its true
    class ``labels``."""
    convs = conv_layers(model)
    all_logits = model.predict(images)
    right = np.flatnonzero(all_logits.argmax(-1) == labels)
    k = int(right[0]) if right.size else 0
    image, label, logits = images[k], int(labels[k]), all_logits[k]
    pred = int(logits.argmax())
    said = f"the model says {class_names[pred]}" + ("" if pred == label else " (wrong)")
    print(f"image {k} (the first the model gets right) is a {class_names[label]}; {said} "
          f"(logit {logits[pred]:.2f}, next best {np.sort(logits)[-2]:.2f})")

    # 1. Feature maps: each layer's output for this image. Averaged over channels they show how the picture is
    # turned into coarser and coarser maps (pooling halves the size); channel by channel they show what each
    # filter of one layer responds to.
    maps = A.feature_maps(model, image)
    table([[name, "x".join(map(str, a.shape)), float(a.mean()), float((a > 0).mean())] for name, a in maps.items()],
          ["layer", "output shape", "mean", "fraction > 0"])
    run.save(viz.feature_map_grid(maps, image=image), f"{tag}_feature_maps.png")
    run.save(viz.feature_map_grid(maps, layer=convs[0]), f"{tag}_channels_{convs[0]}.png")

    # 2. Filters: the first layer's kernels are small images (3x3 here) one can read as edge or blob detectors.
    run.save(viz.filter_grid(A.filters(model, convs[0]), title=f"{tag}: learned {convs[0]} filters"),
             f"{tag}_filters.png")

    # 3. Attribution, for the whole batch at once (one compiled function per method). The score S is the logit
    # of the target class (before softmax).
    #    saliency       dS/dx: how the score changes per pixel, to first order
    #    SmoothGrad     the mean of dS/dx over 50 copies x + eps, eps ~ N(0, sigma^2), sigma = 15% of the value range
    #    integrated g.  (x - 0) * the average of dS/dx along the straight path from a black image to x
    #    occlusion      S(x) - S(x with a window blanked), averaged over the windows covering the cell
    #    Grad-CAM       relu(sum_c alpha_c A_c) at the last conv layer, alpha_c = mean of dS/dA_c
    found = {
        "saliency": A.saliency(model, images, labels),
        "smoothgrad": A.smoothgrad(model, images, labels, n=50, noise_level=0.15, seed=0),
        "integrated_gradients": A.integrated_gradients(model, images, labels, steps=50),
        "occlusion": A.occlusion(model, images, labels, window=window, stride=stride),
        "grad_cam": A.grad_cam(model, images, convs[-1], labels),
    }
    first = {name: v[k] for name, v in found.items()}
    # Completeness: integrated gradients add up to S(x) - S(baseline). We check it with the engine's own forward.
    black = model.predict(np.zeros_like(images[:1]))[0, label]
    print(f"integrated gradients of image {k} sum to {first['integrated_gradients'].sum():.4f}; "
          f"S(x) - S(black) = {logits[label] - black:.4f} (the completeness property, up to the trapezoid rule)")
    run.save(viz.method_comparison(image, dict(zip(["saliency", "SmoothGrad", "integrated gradients", "occlusion",
                                                    "Grad-CAM"], first.values(), strict=True)),
                                   title=f"{tag}: why '{class_names[label]}'? ({said})"), f"{tag}_methods.png")
    if extra_figures:  # saliency and occlusion on their own, larger, with a colour bar
        run.save(viz.attribution_heatmap(image, first["saliency"], title=f"{tag}: saliency |dS/dx|"),
                 f"{tag}_saliency.png")
        run.save(viz.occlusion_map(image, first["occlusion"],
                                   title=f"{tag}: occlusion, window {window}, stride {stride}"), f"{tag}_occlusion.png")

    # 4. SmoothGrad as the number of samples grows. One call with n=1 on N copies of the image gives N gradients
    # at N independent noisy copies; the mean of the first n of them is SmoothGrad with n samples. The noise in
    # the mean shrinks like 1/sqrt(n), so n grows by factors (10 here): each panel says how much the map changed
    # from the previous one, and the change shrinks as the noise averages out.
    counts = (1, 4, 16, 64) if run.quick else (1, 10, 100, 1000)
    g = A.smoothgrad(model, np.repeat(image[None], counts[-1], axis=0), label, n=1, noise_level=0.15, seed=0)
    steps = {n: g[:n].mean(axis=0) for n in counts}
    run.save(viz.smoothgrad_convergence(image, steps), f"{tag}_smoothgrad_convergence.png")
    changes = [viz.relative_change(steps[b], steps[a]) for a, b in zip(counts[:-1], counts[1:], strict=True)]
    print("SmoothGrad, change from the previous n: " + ", ".join(f"n={n}: {100 * c:.0f}%"
                                                                   for n, c in zip(counts[1:], changes, strict=True)))
    copies = np.repeat(image[None], 50, axis=0)
    # ... and as the noise grows: 0 is the plain gradient; a lot of noise blurs the map.
    levels = (0.0, 0.05, 0.1, 0.2, 0.3)
    sweep = {s: A.smoothgrad(model, copies, label, n=1, noise_level=s, seed=1).mean(axis=0) for s in levels}
    run.save(viz.noise_sweep(image, sweep), f"{tag}_noise_sweep.png")
    corr = [float(np.corrcoef(np.abs(sweep[s]).ravel(), np.abs(first["saliency"]).ravel())[0, 1]) for s in levels]
    print("correlation of |SmoothGrad| with |saliency| as the noise grows: "
          + ", ".join(f"{100 * s:.0f}%: {c:.2f}" for s, c in zip(levels, corr, strict=True)))
    return found


# %% [markdown]
# ## Digits: train the CNN with the engine

# %%
section("digits: train the CNN with the engine")
x_train, y_train, x_test, y_test = data.load_digits(seed=0)
if run.quick:
    x_train, y_train = x_train[:300], y_train[:300]
nn.set_random_seed(0)
digits_model = nn.Sequential([
    nn.Input((8, 8, 1)),
    nn.Conv2D(16, 3, padding="same", activation="relu"), nn.MaxPooling2D(2),
    nn.Conv2D(32, 3, padding="same", activation="relu"), nn.MaxPooling2D(2),
    nn.Flatten(), nn.Dense(10),
], name="digits_cnn")
digits_model.compile(optim.Adam(digits_model.parameters(), learning_rate=5e-3), F.cross_entropy, ["accuracy"])
digits_model.fit(x_train, y_train, batch_size=32, epochs=2 if run.quick else 6, seed=0, verbose=0)
_, acc = digits_model.evaluate(x_test, y_test)
print(f"test accuracy {acc:.3f}")

# %% [markdown]
# ## Digits: one test image, every view
# (Skipped in quick mode: each method compiles once per model, which takes a while.)

# %%
if not run.quick:  # --quick explains the shapes only: each method compiles once per model, which takes a while
    section("digits: one test image, every view")
    explain("digits", digits_model, x_test[:16], y_test[:16], [str(d) for d in range(10)], window=2, stride=1,
            extra_figures=False)

# %% [markdown]
# ## Digits: what a filter or a class responds to
# Activation maximisation asks the question the other way round: which input makes one channel (or one class
# score) as large as possible? `A.activation_maximization` climbs the gradient from a small random image, all
# channels of a layer at once, with an L2 and a total-variation penalty, a random one-pixel jitter and a light
# blur every few steps so that the answer is a pattern and not high-frequency noise. A conv channel is scored at
# the centre unit (`unit="center"`: its receptive field's preferred pattern), a class by its logit. Each row
# shares one symmetric colour scale (red positive, blue negative, white 0); channels are sorted by the
# activation they reach, each title gives the channel (or class) and that activation.
# (Skipped in quick mode, like the section above.)


# %%
def preferred_inputs(model, rows, per_row=16):
    """One row per ``(layer, unit)``: the preferred inputs of its channels, strongest first."""
    from tinygrad_cnn.viz._base import hide_unused, new_figure

    fig, axes = new_figure(len(rows), per_row, panel=1.0)
    for r, (layer, unit) in enumerate(rows):
        images, act = A.activation_maximization(model, layer, steps=200, learning_rate=0.05, l2=1e-2, tv=5e-2,
                                                unit=unit, init_scale=0.5, seed=0)
        order = np.argsort(-act)[:per_row]
        lim = np.abs(images[order]).max()
        for ax, k in zip(axes[r], order, strict=False):
            ax.imshow(images[k, :, :, 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"{k}: {act[k]:.1f}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(layer, fontsize=8)
        hide_unused(axes[r], len(order))
    fig.suptitle("preferred inputs (activation maximisation): first conv, last conv, classes")
    return fig


if not run.quick:
    section("digits: preferred inputs of the first and last conv layers and of the classes")
    convs = conv_layers(digits_model)
    run.save(preferred_inputs(digits_model, [(convs[0], "center"), (convs[-1], "center"),
                                             (digits_model.layers[-1].name, "mean")]),
             "digits_preferred_inputs.png")


# %% [markdown]
# ## Shapes: train the CNN on squares, discs, triangles and crosses
# `make_shapes` draws one shape per image at a random place and size on a noisy background, with its mask. The
# model is trained long enough to be right on most held-out images (its accuracy is printed), since explaining a
# model that guesses explains nothing.

# %%
section("shapes: train the CNN on squares, discs, triangles and crosses")
size = 16 if run.quick else 32
shapes_model, history = Q.train_shapes_cnn(n_train=300 if run.quick else 1600, size=size,
                                           epochs=3 if run.quick else 8, width=4 if run.quick else 8,
                                           learning_rate=5e-3)
x_eval, y_eval, _ = data.make_shapes(64 if run.quick else 400, size=size, seed=20_000)  # never trained on
held_acc = float((shapes_model.predict(x_eval).argmax(-1) == y_eval).mean())
print(f"train accuracy {history.history['accuracy'][-1]:.3f}, held-out accuracy {held_acc:.3f} "
      f"({len(y_eval)} new images)")
x_held, y_held, masks = data.make_shapes(16 if run.quick else 32, size=size, seed=10_000)  # the ones we explain
run.save(viz.image_grid(list(x_held[:8]) + list(masks[:8]), ncols=8, panel=1.2,
                        titles=[data.SHAPE_NAMES[c] for c in y_held[:8]] + ["mask"] * 8), "shapes_data.png")

# %% [markdown]
# ## Shapes: one held-out image, every view

# %%
section("shapes: one held-out image, every view")
found = explain("shapes", shapes_model, x_held, y_held, data.SHAPE_NAMES, window=4, stride=2)

# %% [markdown]
# ## Shapes: does the explanation point at the object?
# The masks say where the object is. Mass inside: the fraction of sum |a| that lies inside the mask (a uniform
# map scores the mask's area). Pointing game: is the largest |a| inside the mask? Averaged over held-out images,
# each explained for its true class.

# %%
section("shapes: does the explanation point at the object?")
rows = []
for method, maps in found.items():
    a = np.abs(maps).max(axis=-1) if maps.ndim == 4 else np.abs(maps)  # |a| per pixel (max over channels)
    rows.append([method, float(Q.mass_inside(a, masks).mean()), float(Q.pointing_game(a, masks).mean())])
table(rows, ["method", "mass inside mask", "pointing game"])
print(f"a uniform map would put {masks.mean():.3f} of its mass inside the mask; "
      "`python -m jax_ref.attribution.quality` adds the model-randomisation sanity check.")
run.done()
