# %% [markdown]
# # 07: checking gradients with finite differences
#
# Autodiff can be wrong in quiet ways: a vjp with a missing factor still runs and
# still trains, just worse. The test is numerical: nudge an input by +-eps and
# compare (f(x + eps) - f(x - eps)) / (2 eps) with the gradient. We do it by hand,
# learn why it must run in float64, read the checker's report, catch a planted
# bug, and see why kinks (ReLU at 0, ties in max) make finite differences lie.

# %%

import warnings

import numpy as np
from _common import Run, section, table

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import viz
from tinygrad_cnn.function import Function
from tinygrad_cnn.gradcheck import GradcheckWarning, gradcheck

run = Run("07_gradient_check", "checking gradients with finite differences")
rng = np.random.default_rng(0)

# %% [markdown]
# ## Finite differences by hand

# %%
section("finite differences by hand")
# f(x) = sum(tanh(x) * x^2); the engine's gradient against central differences, element by element.
x0 = rng.normal(size=4)


def f(x):
    return (x.tanh() * x * x).sum()


xt = tg.Tensor(x0.copy(), requires_grad=True)
f(xt).backward()
eps = 1e-6
rows = []
for i in range(x0.size):
    plus, minus = x0.copy(), x0.copy()
    plus[i] += eps
    minus[i] -= eps
    numeric = (f(tg.Tensor(plus)).item() - f(tg.Tensor(minus)).item()) / (2 * eps)
    rows.append([i, float(xt.grad[i]), numeric, abs(numeric - xt.grad[i]) / abs(xt.grad[i])])
table(rows, ["i", "autodiff", "central difference", "rel. error"])

# %% [markdown]
# ## Why float64: the error of a central difference against eps
# Truncation error shrinks like eps^2; rounding error grows like (machine eps) / eps. The best eps balances them.
# Both axes are logarithmic: each step along x is a factor of 10^0.5 in eps.

# %%
section("why float64: the error of a central difference against eps")
# Truncation error shrinks like eps^2; rounding error grows like (machine eps) / eps. The best eps
# balances them: ~1e-6 in float64 (error ~1e-11), but ~1e-4 in float32 (error ~1e-5 at best).
eps_grid = np.logspace(-10, -1, 19)
curves = {}
exact = tg.Tensor(x0, requires_grad=True)
f(exact).backward()
for dtype in (np.float64, np.float32):
    errs = []
    for e in eps_grid:
        u = np.zeros_like(x0)
        u[0] = e
        num = (f(tg.Tensor((x0 + u).astype(dtype))).item() - f(tg.Tensor((x0 - u).astype(dtype))).item()) / (2 * e)
        errs.append(abs(num - exact.grad[0]) / abs(exact.grad[0]) + 1e-17)
    curves[np.dtype(dtype).name] = errs
    best = int(np.argmin(errs))
    print(f"{np.dtype(dtype).name}: best eps {eps_grid[best]:.0e} gives rel. error {errs[best]:.1e}; "
          f"at eps = 1e-6 the error is {errs[int(np.argmin(np.abs(eps_grid - 1e-6)))]:.1e}")
run.save(viz.line_plot(curves, x=eps_grid, xlabel="eps (log scale)", ylabel="relative error (log scale)",
                       logy=True, logx=True, title="central difference error vs eps"), "fd_error_vs_eps.png")

# %% [markdown]
# ## The checker's report on a small conv net
# `gradcheck` contracts the output with a seeded random cotangent v (never all ones) and checks every element of
# every input and parameter in float64.

# %%
section("the checker's report on a small conv net")
size = 5 if run.quick else 8
x = rng.normal(size=(2, size, size, 2))
kernel = tg.Tensor(rng.normal(size=(3, 3, 2, 3)) * 0.5)
dense_w = tg.Tensor(rng.normal(size=(3 * (size - 2) ** 2, 4)) * 0.3)
labels = np.array([1, 3])


def net(x):
    h = F.tanh(F.conv2d(x, kernel))
    return F.cross_entropy(F.dense(h.reshape(2, -1), dense_w), labels)


report = gradcheck(net, [x], params={"kernel": kernel, "dense_w": dense_w})
print(report)
assert report.passed

# %% [markdown]
# ## A wrong vjp is caught

# %%
section("a wrong vjp is caught")


class Cube(Function):
    """y = x^3.   vjp: g * 3 x^2."""

    @staticmethod
    def forward(ctx, x):
        return x ** 3

    @staticmethod
    def vjp(ctx, g):
        (x,) = ctx.inputs
        return (g * 3.0 * x * x,)


class BuggyCube(Cube):
    """y = x^3 with a planted bug: the vjp forgets the factor 3."""

    @staticmethod
    def vjp(ctx, g):
        (x,) = ctx.inputs
        return (g * x * x,)


for fn_class in (Cube, BuggyCube):
    r = gradcheck(lambda t, c=fn_class: c.apply(t).sum() * 0.5 + c.apply(t).mean(), [rng.normal(size=(3, 3))])
    t = r["inputs[0]"]
    print(f"{fn_class.__name__:10s}: max rel. error {t.max_rel_error:.1e} -> {t.grade}, passed={r.passed}")
    assert r.passed == (fn_class is Cube)
print("The bug changes every gradient by a factor of 3: the relative error is |1 - 3| / (1 + 3) = 0.5.")

# %% [markdown]
# ## float32 inputs are checked as float64 copies

# %%
section("float32 inputs are checked as float64 copies")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", GradcheckWarning)
    r32 = gradcheck(lambda t: (t.tanh() * t).sum(), [rng.normal(size=5).astype(np.float32)])
for w in caught:
    print(f"warning: {w.message}")
print(f"float32 input, checked in float64: max rel. error {r32.max_rel_error:.1e} ({r32.tensors[0].grade})")

# %% [markdown]
# ## Kinks: where finite differences lie

# %%
section("kinks: where finite differences lie")
# relu has a kink at 0. If an input sits within eps of 0, x + eps and x - eps land on different sides and
# the central difference mixes the two slopes: (relu(x+eps) - relu(x-eps)) / 2eps = 0.65 here,
# while the gradient is 0 or 1. The checker notices that relu's state changed and flags the element.
xk = rng.normal(size=6)
xk[2] = 3e-7  # closer to the kink than eps = 1e-6
rk = gradcheck(lambda t: (F.relu(t) * t.sigmoid()).sum(), [xk])
print(rk)
tk = rk["inputs[0]"]
print(f"\nflagged elements: {tk.kinks}; their error {tk.kink_max_rel_error:.2f} is reported but not graded;")
print(f"the other elements: max rel. error {tk.max_rel_error:.1e} ({tk.grade}).")
assert tk.kinks == [(2,)] and rk.passed
run.done()
