# %% [markdown]
# # 12: a residual network with BatchNormalization, trained by the engine and checked against JAX
#
# Every CNN people build since 2016 has residual connections (He et al., "Deep Residual Learning"): a block
# computes `y = relu(F(x) + x)`, its layers learn only the correction `F` to the identity. For the chain rule this
# is the clearest case of a value used twice: `x` reaches `y` through `F` and through the shortcut, so
# `dL/dx = dL/dy (dF/dx + 1)`, the gradients of the two paths add, and the `+ 1` carries the gradient back
# through any depth undiminished.
#
# We build a small ResNet with the Functional API (`nn.Input`, layers called on symbolic tensors, `nn.Model`):
# a stem, three stages of two basic blocks (conv-BN-relu-conv-BN plus the shortcut; a stage halves the image
# and doubles the channels, its first shortcut a strided 1x1 conv with BN), global average pooling and a dense
# layer. We train it on the 8x8 digits with a validation split, report its accuracy and time, check its
# gradients against the JAX twin in training mode (BatchNormalization on batch statistics) and in inference
# mode (on the moving statistics), and see how fusing each conv with its BatchNormalization speeds up
# inference.

# %%
import time

import numpy as np
from _common import Run, section, table

import jax_ref
import tinygrad_cnn as tg
from tinygrad_cnn import data, nn, optim, viz

run = Run("12_resnet", "a small ResNet with BatchNormalization on the digits, checked against JAX")

# %% [markdown]
# ## The network
# `nn.small_resnet` builds it (read its source: twenty lines of Functional API). The convs have no bias, since
# the BatchNormalization after each one has its own shift `beta`. The summary's "Connected to" column shows the
# two inputs of every `Add`, and the receptive field column lists one field per path where a shortcut skips
# convs: the shortcut sees fewer pixels than the residual branch.

# %%
section("the network")
nn.set_random_seed(0)
model = nn.small_resnet(input_shape=(8, 8, 1), classes=10, widths=(16, 32, 64))
model.summary()

# %% [markdown]
# ## Training with a validation split
# The digits: 1,347 training images, 450 test images. `fit` keeps the last 20% of the training arrays for
# validation (before shuffling, as Keras). The matrices of an 8x8 ResNet are small (at most 64 x 576), so a
# second BLAS thread brings more waiting than work; we train on one (`tg.num_threads(1)`). Watch the validation
# accuracy of the first epochs: it lags far behind the training accuracy, because validation runs in inference
# mode on the moving statistics, and with `momentum=0.99` they average the batch statistics of the last ~100
# steps, while the weights, and so the statistics they produce, are still moving fast.

# %%
section("training with a validation split")
x_train, y_train, x_test, y_test = data.load_digits(seed=0)
if run.quick:  # a smoke run: fewer images, one epoch
    x_train, y_train, x_test, y_test = x_train[:320], y_train[:320], x_test[:128], y_test[:128]
epochs = 1 if run.quick else 15
model.compile(optimizer=optim.Adam(model.parameters(), learning_rate=3e-3), loss="cross_entropy",
              metrics=["accuracy"])
with tg.num_threads(1):
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.2, seed=0, verbose=0)
    seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(x_test, y_test)
steps = epochs * -(-int(len(x_train) * 0.8) // 32)
rows = [[e + 1] + [history.history[k][e] for k in history.history] for e in range(epochs)]
table(rows, ["epoch"] + list(history.history))
print(f"\n{epochs} epoch(s), {steps} steps of batch 32: {seconds:.1f} s ({1e3 * seconds / steps:.0f} ms per step, "
      f"validation included); test accuracy {test_accuracy:.4f} on {len(y_test)} images (test loss {test_loss:.4f})")
run.save(viz.training_curves(history, title="small ResNet trained by the engine"), "training_curves.png")

# %% [markdown]
# ## The JAX twin differentiates the same graph
# `compare_gradients` rebuilds the model in JAX (`jax_ref.from_engine`: the same graph, BatchNormalization's
# moving statistics as their own pytree) and compares, in float64, every weight gradient and what every node's
# backward pass sends to each of its inputs; an `Add` has two rows, one per path. In training mode the
# gradient also flows through the batch mean and variance; in inference mode BatchNormalization is an affine
# map of fixed statistics. (The quick mode checks training mode only.)

# %%
section("the JAX twin differentiates the same graph")
rows = []
for training in (True,) if run.quick else (True, False):  # a smoke run checks the training mode only
    report = jax_ref.compare_gradients(model, x_test[:16], y_test[:16], training=training)
    worst = max(report.entries, key=lambda e: e.max_rel_error)
    rows.append(["training" if training else "inference", len(report.entries), report.max_rel_error, worst.name,
                 report.grade])
    assert report.passed, report.table()
table(rows, ["mode", "rows compared", "worst relative error", "at", "grade"])
print("In float64 the two implementations agree to ~10 digits or better; a wrong vjp would fail its row, and the "
      "first failing row names the layer where the error enters.")

# %% [markdown]
# ## Conv + BatchNormalization folded at inference
# At inference BatchNormalization is `gamma (z - mean) / sqrt(var + eps) + beta`, an affine map per channel, and
# `z` is the conv's output: it folds into the conv itself, kernel times `s = gamma / sqrt(var + eps)` per output
# channel, bias `beta - s mean`. The model does this by itself when it runs in inference mode and the conv's
# only reader is the BatchNormalization (`nn.fusion`); calling the layers one by one never folds. Same outputs to
# rounding, one pass over the activations instead of five (subtract, scale, multiply, shift, relu).

# %%
section("conv + BatchNormalization folded at inference")
images = x_test[:256]
fused = model.predict(images, batch_size=256)
with nn.fusion.disabled():  # the reference: every node runs its own layer
    layer_by_layer = model.predict(images, batch_size=256)
print(f"largest difference of the logits, folded vs layer by layer: {np.abs(fused - layer_by_layer).max():.1e}")


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


with tg.num_threads(1):
    repeats = 3 if run.quick else 15
    folded_ms = median_ms(lambda: model(images), repeats)
    with nn.fusion.disabled():
        plain_ms = median_ms(lambda: model(images), repeats)
print(f"inference on {len(images)} images: folded {folded_ms:.1f} ms, layer by layer {plain_ms:.1f} ms "
      f"(x{plain_ms / folded_ms:.2f})")
run.done()
