# %% [markdown]
# # 05: pooling and dropout
#
# Pooling summarises each small window of a feature map by one number: its
# maximum, its average, or its L2 norm sqrt(sum x^2). It shrinks the map (fewer
# numbers for the next layers) and makes the features care less about exactly
# where something is. Dropout zeroes random activations while training, so the
# network cannot rely on any single one; at test time it does nothing.

# %%

import numpy as np
from _common import Run, section, table

import tinygrad_cnn as tg
from tinygrad_cnn import data, viz
from tinygrad_cnn import functional as F

run = Run("05_pooling_dropout", "pooling and dropout")
rng = np.random.default_rng(0)

# %% [markdown]
# ## Max, average and L2 pooling of the same feature map

# %%
section("max, average and L2 pooling of the same feature map")
fmap = np.round(rng.random((4, 4)) * 4, 1)
x = fmap[None, :, :, None]
pools = {"max": F.max_pool(x, 2), "average": F.avg_pool(x, 2), "L2": F.lp_pool(x, 2, p=2)}
print("feature map (4x4):")
print(fmap)
for name, y in pools.items():
    print(f"{name:7s} pool 2x2, stride 2 ->", np.array2string(y.numpy()[0, :, :, 0], precision=3).replace("\n", ""))
w = fmap[:2, :2]
print(f"top-left window {w.ravel()}: max {w.max()}, mean {w.mean():.3f}, L2 sqrt(sum x^2) = "
      f"{np.sqrt((w ** 2).sum()):.3f}")
print("L2 lies between the max and the sum: it is dominated by the large entries but hears them all.")

# The same three on a real feature map: the vertical edges of the photo.
photo = data.sample_photo(size=96 if run.quick else 256)
edges = np.abs(F.conv2d(photo[None, :, :, None], np.array([[-1, 0, 1]] * 3, np.float32)[:, :, None, None],
                        padding="same").numpy())
pooled = {name: fn(edges, 4).numpy()[0, :, :, 0] for name, fn in
          (("max", F.max_pool), ("average", F.avg_pool), ("L2", lambda t, k: F.lp_pool(t, k, p=2)))}
run.save(viz.image_grid([edges[0, :, :, 0]] + list(pooled.values()),
                        titles=[f"|vertical edges| {edges.shape[1]}x{edges.shape[2]}"]
                        + [f"{k} pool 4 -> {v.shape[0]}x{v.shape[1]}" for k, v in pooled.items()],
                        ncols=4, cmap="magma", panel=2.6), "pooling.png")

# %% [markdown]
# ## Where the gradient goes
# Max pooling passes each window's gradient to its maximum only (the first one on ties); average pooling spreads
# it evenly; L2 pooling in proportion to x / ||window||.

# %%
section("where the gradient goes")
xt = tg.Tensor(x, requires_grad=True)
for name, fn in (("max", F.max_pool), ("average", F.avg_pool), ("L2", lambda t, k: F.lp_pool(t, k, p=2))):
    (g,) = tg.grad(fn(xt, 2).sum(), [xt])
    print(f"{name:7s} d(sum of pooled)/d(map), top-left window: {g.numpy()[0, :2, :2, 0].ravel().round(3)}")

# %% [markdown]
# ## Translation robustness: shift the input, compare the features

# %%
section("translation robustness: shift the input, compare the features")
# A shape image, shifted right by 1..3 pixels. We compare the edge features before pooling, after 2x2 and 4x4
# max pooling, and after global max pooling: relative change ||f(shifted) - f(x)|| / ||f(x)||.
images, labels, _ = data.make_shapes(4 if run.quick else 16, size=32, seed=1, noise=0.05)
kernel = np.stack([np.array([[-1, 0, 1]] * 3), np.array([[-1, 0, 1]] * 3).T], -1)[:, :, None, :].astype(np.float32)


def features(img):
    conv = F.relu(F.conv2d(img, kernel, padding="same"))
    return {"conv map": conv, "max pool 2": F.max_pool(conv, 2), "max pool 4": F.max_pool(conv, 4),
            "global max": F.global_max_pool(conv)}


base = features(images)
rows = []
for shift in (1, 2, 3):
    moved = features(np.roll(images, shift, axis=2))
    rows.append([shift] + [float(np.linalg.norm(moved[k].numpy() - base[k].numpy()) / np.linalg.norm(base[k].numpy()))
                           for k in base])
table(rows, ["shift (px)"] + list(base))
print("The conv map moves with the image (large change); pooling absorbs small shifts; a global max")
print("barely changes: it ignores position (np.roll wraps around, so the shape stays whole).")
run.save(viz.line_plot({k: [r[i + 1] for r in rows] for i, k in enumerate(base)}, x=[1, 2, 3],
                       xlabel="shift (pixels)", ylabel="relative change of the features",
                       title="translation robustness"), "translation.png")

# %% [markdown]
# ## Dropout: training versus test time
# Inverted dropout keeps each unit with probability 1 - rate and divides the survivors by 1 - rate, so the
# expected activation is unchanged and nothing needs rescaling at test time. The two panels share one colour
# scale: a kept unit (2), a test-time unit (1) and a dropped one (0) each have their own colour.

# %%
section("dropout: training versus test time")
h = np.ones((4, 10), np.float32)
train = F.dropout(h, rate=0.5, training=True, seed=0).numpy()
test = F.dropout(h, rate=0.5, training=False).numpy()
print("training (rate 0.5, seed 0):")
print(train)
print(f"test: identity -> all ones: {bool((test == 1).all())}")
samples = 200 if run.quick else 2000
many = np.stack([F.dropout(np.ones(1000, np.float32), 0.5, True, seed=s).numpy() for s in range(samples // 100)])
print(f"mean over {many.size} dropped-out units: {many.mean():.4f} (expected 1), "
      f"fraction zeroed {np.mean(many == 0):.3f} (expected 0.5)")
again = F.dropout(h, rate=0.5, training=True, seed=0).numpy()
print(f"same seed, same mask: {bool((again == train).all())}")
xt = tg.Tensor(h, requires_grad=True)
(g,) = tg.grad(F.dropout(xt, 0.5, training=True, seed=0).sum(), [xt])
print(f"gradient flows only through the kept units, scaled by 2: {np.array_equal(g.numpy(), train)}")
run.save(viz.image_grid([train, test], titles=["training: mask x 1/(1-rate)", "test: identity"], ncols=2,
                        cmap="viridis", panel=3.0, colorbar=True,
                        suptitle="dropout of a (4, 10) array of ones, rate 0.5 (one colour scale)"), "dropout.png")
run.done()
