# %% [markdown]
# # 04: activation functions, their derivatives, and the vanishing gradient
#
# After every convolution a CNN applies a nonlinearity; without one, a stack of
# layers would collapse into a single linear map. We compare ReLU, softplus,
# sigmoid and tanh, take their derivatives with the engine (not by hand), see
# that the derivative of softplus is exactly the logistic sigmoid, and then
# watch the gradient shrink layer after layer in a deep sigmoid network while a
# ReLU network keeps it alive.

# %%

import numpy as np
from _common import Run, section, table

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import viz

run = Run("04_activations", "activation functions, their derivatives, and the vanishing gradient")
ACTIVATIONS = {"relu": F.relu, "softplus": F.softplus, "sigmoid": F.sigmoid, "tanh": F.tanh}

# %% [markdown]
# ## Values and derivatives, computed by the engine

# %%
section("values and derivatives, computed by the engine")
xs = np.linspace(-6.0, 6.0, 241)
values, slopes = {}, {}
for name, fn in ACTIVATIONS.items():
    x = tg.Tensor(xs, requires_grad=True)
    y = fn(x)
    (dy,) = tg.grad(y.sum(), [x])
    values[name], slopes[name] = y.numpy(), dy.numpy()
probe = [-4.0, -1.0, 0.0, 1.0, 4.0]
idx = [int(np.argmin(np.abs(xs - p))) for p in probe]
table([[name] + [f"{values[name][i]:.4f} / {slopes[name][i]:.4f}" for i in idx] for name in ACTIVATIONS],
      ["f(x) / f'(x)"] + [f"x = {p:g}" for p in probe])
print("relu'(0) = 0 by convention (the kink gets the left slope), as in JAX.")
print("sigmoid saturates: its slope is at most 0.25 (at x = 0) and ~0.018 at |x| = 4;")
print("tanh's slope peaks at 1, but it also vanishes for large |x|.")

# %% [markdown]
# ## softplus' is the logistic function

# %%
section("softplus' is the logistic function")
gap = np.abs(slopes["softplus"] - 1.0 / (1.0 + np.exp(-xs))).max()
print(f"max |d softplus/dx - 1/(1 + e^-x)| over x in [-6, 6]: {gap:.2e}")
assert gap < 1e-12
big = F.softplus(tg.Tensor(np.array([-1000.0, 1000.0]))).numpy()
print(f"softplus(-1000), softplus(1000) = {big[0]:.3g}, {big[1]:.6g}  (computed as logaddexp(x, 0), no overflow)")
run.save(viz.line_plot(values, xlabel="x", ylabel="f(x)", title="activations", x=xs), "activations.png")
run.save(viz.line_plot(slopes, xlabel="x", ylabel="f'(x)", title="derivatives (from the engine)", x=xs),
         "derivatives.png")

# %% [markdown]
# ## The vanishing gradient: gradient norm per layer
# A stack of dense layers h_{k+1} = act(h_k W_k + b_k). Backprop multiplies the cotangent by act'(.) and W_k^T
# at every layer; with sigmoid, act' <= 1/4, so the gradient reaching the first layers is a product of many
# small factors. ReLU passes a slope of exactly 1 wherever it is active.

# %%
section("the vanishing gradient: gradient norm per layer")
depth, width, batch = (8, 32, 32) if run.quick else (16, 64, 128)
rng = np.random.default_rng(0)
x0 = rng.normal(size=(batch, width))
cotangent = rng.normal(size=(batch, width))
norms = {}
for name, act, scale in (("sigmoid", F.sigmoid, 1.0), ("relu", F.relu, 2.0)):
    # Glorot-style init for sigmoid (variance 1/width), He init for ReLU (variance 2/width)
    kernels = [tg.Tensor(rng.normal(size=(width, width)) * np.sqrt(scale / width), requires_grad=True)
               for _ in range(depth)]
    biases = [tg.Tensor(np.zeros(width), requires_grad=True) for _ in range(depth)]
    h = tg.Tensor(x0)
    for w, b in zip(kernels, biases, strict=True):
        h = act(F.dense(h, w, b))
    grads = tg.grad(h, kernels, grad_output=cotangent)
    norms[name] = [float(np.linalg.norm(g.numpy())) for g in grads]
rows = [[k + 1, norms["sigmoid"][k], norms["relu"][k]] for k in range(depth)]
table(rows, ["layer", "|dL/dW| sigmoid", "|dL/dW| relu"])
shrink = norms["sigmoid"][0] / norms["sigmoid"][-1]
print(f"\nsigmoid: the first layer's gradient is {shrink:.1e} times the last layer's;")
print(f"relu:    the ratio is {norms['relu'][0] / norms['relu'][-1]:.2f}.")
print("The early sigmoid layers barely learn: this is the vanishing gradient problem.")
run.save(viz.line_plot(norms, xlabel="layer (1 = closest to the input)", ylabel="gradient norm", logy=True,
                       title=f"gradient norm per layer, {depth} dense layers", x=np.arange(1, depth + 1)),
         "vanishing_gradient.png")
run.done()
