# %% [markdown]
# # 03: hand-made filters on a real photo, and a "curve detector"
#
# Before any learning, a convolution is just a small weighted window slid over
# the image. With the right weights it finds vertical or horizontal edges,
# blurs, sharpens or embosses. A trained CNN learns such weights itself; its
# first-layer filters often look like these. A filter is also a feature
# detector: it answers strongly where the image looks like the filter and
# weakly elsewhere.

# %%

import numpy as np
from _common import Run, section, table

from tinygrad_cnn import data, viz
from tinygrad_cnn import functional as F

run = Run("03_edge_filters", "hand-made filters on a real photo, and a curve detector")

# %% [markdown]
# ## Five classic 3x3 filters
# All five run at once, as one `conv2d` with a kernel of shape (3, 3, 1 input channel, 5 filters).

# %%
section("five classic 3x3 filters")
FILTERS = {
    "vertical edge": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),      # brighter to the right -> positive
    "horizontal edge": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),    # brighter below -> positive
    "blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0,             # a weighted average
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),            # the centre minus its neighbours
    "emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),              # a diagonal derivative plus the image
}
for name, k in FILTERS.items():
    print(f"{name:16s} sum of weights {k.sum():5.2f}   " + "  ".join(str(row.round(3).tolist()) for row in k))
print("Edge filters sum to 0: flat regions give 0. Blur and sharpen sum to 1: flat regions keep their value.")

photo = data.sample_photo(gray=True, size=120 if run.quick else None)
print(f"\nphoto: {photo.shape[0]}x{photo.shape[1]} gray, values in [0, 1]")
kernel = np.stack(list(FILTERS.values()), axis=-1)[:, :, None, :].astype(np.float32)
maps = F.conv2d(photo[None, :, :, None], kernel, padding="same").numpy()[0]
rows = [[name, float(maps[..., i].min()), float(maps[..., i].max()), float(np.abs(maps[..., i]).mean())]
        for i, name in enumerate(FILTERS)]
table(rows, ["filter", "min", "max", "mean |response|"])
# For display: edge maps as |response| (an edge of either polarity is bright), clipped at the 99th percentile
# so a few strong edges do not wash out the rest; the other maps clipped to the photo's range [0, 1].
shown = [np.minimum(np.abs(m), np.percentile(np.abs(m), 99)) if "edge" in name else np.clip(m, 0, 1)
         for name, m in zip(FILTERS, np.moveaxis(maps, -1, 0), strict=True)]
run.save(viz.image_grid([photo] + shown, titles=["photo"] + [f"{n}" + (" |.|" if "edge" in n else "")
                                                             for n in FILTERS], ncols=3, panel=3.0),
         "photo_filters.png")
run.save(viz.filter_grid(kernel, names=list(FILTERS), values=True,
                         title="the five kernels: weights (red +, blue -, one scale)"), "kernels.png")

# %% [markdown]
# ## A curve detector
# The filter is a curve drawn in a 7x7 window. Its response at a window is the dot product of that window and
# the filter: large where the image holds the same curve, small anywhere else. The figure marks the best window
# on the input and draws the response at the window centres, on the input's grid.

# %%
section("a curve detector")
curve = np.zeros((7, 7))
curve[1, 4:6] = 1
curve[2, 3] = 1
curve[3, 2] = 1
curve[4:6, 1] = 1
canvas = np.zeros((28, 28))
canvas[4:11, 3:10] = curve                         # the same curve, top left
canvas[np.arange(14, 24), np.arange(14, 24)] = 1   # a straight diagonal line, bottom right
canvas[20, 3:12] = 1                               # a horizontal line, bottom left
response = F.conv2d(canvas[None, :, :, None], curve[:, :, None, None]).numpy()[0, :, :, 0]
best = tuple(int(i) for i in np.unravel_index(np.argmax(response), response.shape))
on_line = response[12:18, 12:18].max()
on_flat = response[18:22, 0:8].max()
empty = response[0:5, 15:21].max()
print(f"the filter has {int(curve.sum())} ones; its best possible response is {curve.sum():.0f}")
print(f"on the curve (window at {best}): {response[best]:.0f}")
print(f"on the diagonal line:            {on_line:.0f}")
print(f"on the horizontal line:          {on_flat:.0f}")
print(f"on empty background:             {empty:.0f}")
assert response[best] == curve.sum() and best == (4, 3) and on_line <= 2 and on_flat <= 2
run.save(viz.conv_sliding(canvas, curve, position=best, output=response,
                          title=f"the curve filter's best window: response {response[best]:.0f} of a possible "
                                f"{curve.sum():.0f}"), "curve_detector.png")
run.done()
