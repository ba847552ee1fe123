# %% [markdown]
# # 02: convolution arithmetic, checked against the real ops
#
# A filter of F taps slides over W input cells in steps of S, after P zeros are
# added around the input. The number of positions it visits is
#
#     O = (W - F + 2P) / S + 1        (rounded down when S does not divide)
#
# With dilation d the filter spans F_eff = d (F - 1) + 1 cells. "valid" adds no
# padding, "same" adds just enough for O = ceil(W / S), "causal" (1-D) puts all
# F_eff - 1 zeros before the sequence. Every number below is computed with the
# formula and then measured on F.conv1d / F.conv2d output shapes.

# %%

import numpy as np
from _common import Run, section, table

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import viz
from tinygrad_cnn.conv_arithmetic import conv_output_size, conv_padding, receptive_fields

run = Run("02_conv_arithmetic", "convolution arithmetic, checked against the real ops")
rng = np.random.default_rng(0)

# %% [markdown]
# ## Output sizes: the formula against the engine

# %%
section("output sizes: formula against the engine")
cases = [  # (W, F, stride, dilation, padding)
    (28, 3, 1, 1, "valid"), (28, 3, 1, 1, "same"), (28, 5, 1, 1, "valid"), (28, 5, 2, 1, "valid"),
    (28, 5, 2, 1, "same"), (7, 3, 2, 1, "valid"), (8, 3, 2, 1, "valid"), (28, 3, 1, 2, "valid"),
    (28, 3, 1, 2, "same"), (28, 3, 2, 2, "same"), (10, 3, 1, 1, 2), (10, 4, 3, 1, (1, 2)),
    (16, 3, 1, 1, "causal"), (16, 3, 1, 4, "causal"),
]
if run.quick:
    cases = cases[::2] + [cases[-1]]
rows = []
for w, k, s, d, pad in cases:
    before, after = conv_padding(w, k, s, pad, d)
    f_eff = d * (k - 1) + 1
    by_hand = (w - f_eff + before + after) // s + 1
    if pad == "causal":  # 1-D only: sequences (batch, W, channels)
        y = F.conv1d(rng.normal(size=(1, w, 1)), rng.normal(size=(k, 1, 1)), strides=s, padding=pad, dilation_rate=d)
        measured = y.shape[1]
    else:
        pad2 = (pad, pad) if isinstance(pad, tuple) else pad  # an explicit (before, after) pair per spatial axis
        y = F.conv2d(rng.normal(size=(1, w, w, 1)), rng.normal(size=(k, k, 1, 1)), strides=s, padding=pad2,
                     dilation_rate=d)
        measured = y.shape[1]
    assert by_hand == measured == conv_output_size(w, k, s, pad, d), (w, k, s, d, pad)
    rows.append([w, k, s, d, repr(pad), f"{before}+{after}", f_eff,
                 f"({w} - {f_eff} + {before + after}) // {s} + 1 = {by_hand}", measured])
table(rows, ["W", "F", "S", "d", "padding", "P", "F_eff", "formula", "engine"])
print("\nW=7 and W=8 with F=3, S=2 both give 3 outputs: the 8th cell is never read by any window.")

# %% [markdown]
# ## Receptive field growth through a stack (one spatial axis)
# A unit of layer i sees R_i input cells: R_i = R_{i-1} + (F_eff_i - 1) * J_i, where J_i is the product of the
# strides before layer i. We measure it too: the gradient of one output cell is nonzero exactly on the input
# cells it can see.

# %%
section("receptive field growth through a stack (one spatial axis)")
stack = [("conv 3", (3, 1, 1)), ("conv 3", (3, 1, 1)), ("pool 2", (2, 2, 1)), ("conv 3", (3, 1, 1)),
         ("conv 3", (3, 1, 1)), ("pool 2", (2, 2, 1)), ("conv 3, d=2", (3, 1, 2))]
fields = receptive_fields([t for _, t in stack])
# Measure it: the gradient of one output cell with respect to the input is nonzero exactly on the cells that
# cell can see (positive kernels and average pooling, so nothing cancels).
w = 64
x = tg.Tensor(rng.random((1, w, 1)), requires_grad=True)
h, measured = x, []
for _, (k, s, d) in stack:
    h = F.avg_pool(h, k, s) if s > 1 else F.conv1d(h, np.ones((k, 1, 1)) / k, dilation_rate=d)
    seed = np.zeros(h.shape)
    seed[0, h.shape[1] // 2, 0] = 1.0
    (g,) = tg.grad(h, [x], grad_output=seed, retain_graph=True)
    support = np.flatnonzero(g.numpy()[0, :, 0])
    measured.append(int(support[-1] - support[0] + 1))
table([[i + 1, name, fields[i], measured[i]] for i, (name, _) in enumerate(stack)],
      ["layer", "", "receptive field (formula)", "measured (gradient support)"])
assert fields == measured
run.save(viz.line_plot({"receptive field": fields}, x=np.arange(1, len(fields) + 1), xlabel="layer",
                       ylabel="input cells seen by one output", title="receptive field growth"),
         "receptive_field.png")

# %% [markdown]
# ## A filter sliding over an input
# The activation map is drawn on the input's grid: each output cell sits at the centre of the window it reads,
# so the response lines up with the edge that caused it.

# %%
section("a filter sliding over an input")
# A 7x7 input: dark on the left, bright on the right. A 3x3 vertical-edge filter responds where they meet.
img = np.zeros((7, 7))
img[:, 4:] = 1.0
edge = np.array([[-1.0, 0.0, 1.0]] * 3)
for stride in (1, 2):
    out = F.conv2d(img[None, :, :, None], edge[:, :, None, None], strides=stride).numpy()[0, :, :, 0]
    np.testing.assert_allclose(out, viz.correlate_valid(img, edge, stride))
    print(f"stride {stride}: output {out.shape[0]}x{out.shape[1]}, row 0 = {out[0]}")
    run.save(viz.conv_sliding(img, edge, position=(1, 1), stride=stride, output=out), f"sliding_stride{stride}.png")
run.done()
