# %% [markdown]
# # 01: the chain rule, run by hand and by the engine
#
# We build a small expression in which one value feeds several others (fan-out),
# watch the engine's backward pass node by node, draw the graph it recorded,
# and check every gradient against JAX.
#
#     a = x * y
#     b = tanh(a) + x          # x is used twice, a three times
#     f = a * b + 0.5 * exp(a)
#
# The multivariate chain rule says: when a value v feeds several consumers,
# dL/dv is the SUM over the consumers c of dL/dc * dc/dv. Reverse mode applies
# this from the output back to the inputs, visiting each node once.

# %%
import numpy as np
from _common import Run, section

import tinygrad_cnn as tg
from tinygrad_cnn import viz

run = Run("01_chain_rule", "the chain rule, run by hand and by the engine")

# %% [markdown]
# ## The forward pass records a graph
# Every operation on a Tensor that needs a gradient remembers its inputs and its primitive: the graph that
# reverse mode will walk back.

# %%
section("the forward pass records a graph")
x = tg.Tensor(np.float64(0.8), requires_grad=True)
y = tg.Tensor(np.float64(-1.3), requires_grad=True)
a = x * y
b = a.tanh() + x
f = a * b + a.exp() * 0.5
print(f"x = {x.item()}, y = {y.item()}  ->  a = {a.item():.6f}, b = {b.item():.6f}, f = {f.item():.6f}")

# %% [markdown]
# ## The backward pass, node by node
# `tg.trace` walks the same graph `backward()` would, without consuming it, and prints what every node
# receives from its consumers (their sum, where a value fans out) and what it sends to its inputs. The
# constant 0.5 is part of the graph but needs no gradient, so the pass has no step for it.

# %%
section("the backward pass, node by node")
steps = tg.trace(f, names={"x": x, "y": y, "a": a, "b": b, "f": f})
run.save(viz.draw_graph(f, names={"x": x, "y": y, "a": a, "b": b, "f": f}), "graph.png")
# The same backward pass as a page to step through (open it in a browser; in Jupyter it shows inline).
page = viz.explore(f, names={"x": x, "y": y, "a": a, "b": b, "f": f}, path=run.out / "explore.html")
print(f"  wrote {page.path}: open it and press the right arrow to watch x and a collect their paths")

# %% [markdown]
# ## The same sums written out by hand

# %%
section("the same sums written out by hand")
# dL/df = 1. f = a*b + 0.5 e^a, so the paths into a are: through a*b (factor b),
# through e^a (factor 0.5 e^a), and through b = tanh(a) + x (factor a * (1 - tanh(a)^2)).
av, bv, xv, yv = a.item(), b.item(), x.item(), y.item()
df_da = bv + 0.5 * np.exp(av) + av * (1 - np.tanh(av) ** 2)
df_dx = df_da * yv + av      # through a (factor y) and through b (factor 1, times df/db = a)
df_dy = df_da * xv
print(f"df/da = b + 0.5 e^a + a (1 - tanh(a)^2) = {df_da:.10f}")
print(f"df/dx = df/da * y + df/db * 1        = {df_dx:.10f}")
print(f"df/dy = df/da * x                     = {df_dy:.10f}")

# %% [markdown]
# ## backward() agrees with the trace and with JAX
# The same function written with `jax.numpy` and differentiated by `jax.grad`, in float64.

# %%
section("backward() agrees with the trace and with JAX")
f.backward()
traced = {s.name: float(s.grad) for s in steps if s.op == "leaf"}
print(f"engine backward: df/dx = {x.grad.item():.10f}, df/dy = {y.grad.item():.10f}")
print(f"trace:           df/dx = {traced['x']:.10f}, df/dy = {traced['y']:.10f}")

import jax  # noqa: E402  (only the comparison needs JAX)

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402


def f_jax(x, y):
    a = x * y
    b = jnp.tanh(a) + x
    return a * b + 0.5 * jnp.exp(a)


gx, gy = jax.grad(f_jax, argnums=(0, 1))(xv, yv)
print(f"jax.grad:        df/dx = {float(gx):.10f}, df/dy = {float(gy):.10f}")
err = max(abs(float(gx) - x.grad.item()), abs(float(gy) - y.grad.item()), abs(df_dx - x.grad.item()))
print(f"largest difference: {err:.2e}")
assert err < 1e-12, err
run.done()
