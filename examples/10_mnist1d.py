# %% [markdown]
# # 10: MNIST-1D, a published benchmark, with the engine's Conv1D
#
# MNIST-1D (Greydanus & Kobak, ICML 2024) turns ten 1-D digit templates into length-40 sequences through random
# padding, translation, shear, scaling and noise. It is tiny, yet it separates model families that all score
# 99% on MNIST: the paper's table gives logistic regression 32%, an MLP 68%, a CNN 94%, a GRU 91% and a human
# expert 96% test accuracy. The `mnist1d` package generates the data offline, with the paper's settings
# (5,000 sequences, 4,000 for training and 1,000 for testing, seed 42).
#
# We train the paper's CNN with the engine, with the paper's setup (Adam, learning rate 1e-2, no weight decay,
# batch 100, 8,000 steps), print its test accuracy beside the paper's table, and draw its 1-D filters and the
# saliency of its decisions over the sequence.

# %%
import numpy as np
from _common import Run, section, table

from jax_ref import attribution as A
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, optim, viz

run = Run("10_mnist1d", "MNIST-1D with the engine's Conv1D, beside the paper's table")

# %% [markdown]
# ## The data
# Sequences of 40 values, one channel: shaped (n, 40, 1), channels last.

# %%
section("the data")
from mnist1d.data import get_dataset_args, make_dataset  # noqa: E402

args = get_dataset_args()
if run.quick:  # fewer sequences (the same generator): a smoke run
    args.num_samples = 500
dataset = make_dataset(args)
x_train, y_train = dataset["x"][..., None].astype(np.float32), dataset["y"].astype(np.int64)
x_test, y_test = dataset["x_test"][..., None].astype(np.float32), dataset["y_test"].astype(np.int64)
print(f"train {x_train.shape}, test {x_test.shape}; classes {np.bincount(y_train).tolist()}")
run.save(viz.line_plot({f"digit {y_train[i]}": x_train[i, :, 0] for i in range(4)}, xlabel="position",
                       ylabel="value", title="four MNIST-1D training sequences"), "sequences.png")

# %% [markdown]
# ## The paper's CNN
# Three 1-D convolutions (25 channels; kernel 5 then 3 and 3; stride 2; PyTorch's `padding=1`) with ReLU, then
# one linear layer: 40 -> 19 -> 10 -> 5 positions, 125 features, 10 logits. The first layer's padding is one zero
# at each end of every sequence, added to the data, before a `"valid"` convolution; for the next two, Keras'
# `"same"` gives the same sizes (19 -> 10 -> 5), padding exactly as PyTorch in the second layer and one position
# later in the third. PyTorch's default initialisation (uniform in +-1/sqrt(fan_in) for kernels and biases) is
# `VarianceScaling(1/3, "fan_in", "uniform")` for the kernels.

# %%
section("the paper's CNN")
x_train, x_test = (np.pad(x, ((0, 0), (1, 1), (0, 0))) for x in (x_train, x_test))  # padding=1 of the first conv


def torch_like(fan_in):
    """PyTorch's default initialisation: kernel and bias uniform in +-1/sqrt(fan_in)."""
    return {"kernel_initializer": nn.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"),
            "bias_initializer": nn.initializers.RandomUniform(-fan_in ** -0.5, fan_in ** -0.5)}


nn.set_random_seed(42)
model = nn.Sequential([
    nn.Input((42, 1)),
    nn.Conv1D(25, 5, strides=2, padding="valid", activation="relu", **torch_like(5 * 1)),
    nn.Conv1D(25, 3, strides=2, padding="same", activation="relu", **torch_like(3 * 25)),
    nn.Conv1D(25, 3, strides=2, padding="same", activation="relu", **torch_like(3 * 25)),
    nn.Flatten(),
    nn.Dense(10, **torch_like(125)),
], name="mnist1d_cnn")
model.summary()

# %% [markdown]
# ## Training: Adam, learning rate 1e-2, batch 100, 8,000 steps
# 4,000 training sequences in batches of 100 are 40 steps per epoch, so 200 epochs are the paper's 8,000 steps.

# %%
section("training")
epochs = 4 if run.quick else 200
model.compile(optimizer=optim.Adam(model.parameters(), learning_rate=1e-2), loss=F.cross_entropy,
              metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=100, epochs=epochs, seed=42, verbose=0)
steps = epochs * int(np.ceil(len(x_train) / 100))
print(f"{steps} steps; final training loss {history.history['loss'][-1]:.4f}, "
      f"training accuracy {history.history['accuracy'][-1]:.3f}")
run.save(viz.training_curves(history, title=f"MNIST-1D CNN trained by the engine, {steps} steps"),
         "training_curves.png")

# %% [markdown]
# ## Test accuracy beside the paper's table

# %%
section("test accuracy beside the paper's table")
_, accuracy = model.evaluate(x_test, y_test)
table([["logistic regression (paper)", "32%"], ["MLP (paper)", "68%"], ["CNN (paper)", "94%"],
       ["GRU (paper)", "91%"], ["human expert (paper)", "96%"],
       ["CNN, this engine" + (" (quick mode: a smoke run)" if run.quick else ""), f"{100 * accuracy:.1f}%"]],
      ["model", "MNIST-1D test accuracy"])

# %% [markdown]
# ## What the network looks at
# The first layer's 25 filters are 5-tap patterns (red positive, blue negative, one scale). Saliency, the
# gradient of the true class' logit with respect to each input value, says where along the sequence a small
# change would move the decision most.

# %%
section("filters and saliency")
run.save(viz.filter_grid(A.filters(model, model.layers[0].name), title="the 25 learned 5-tap filters of the first "
                         "convolution"), "filters.png")
pred = model.predict(x_test[:6]).argmax(-1)
sal = A.saliency(model, x_test[:6], y_test[:6])
run.save(viz.sequence_saliency(x_test[:6, 1:-1, 0], sal[:, 1:-1, 0],  # without the two pad zeros
                               titles=[f"digit {t}, predicted {p}" for t, p in zip(y_test[:6], pred, strict=True)]),
         "saliency.png")
run.done()
