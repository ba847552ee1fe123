# %% [markdown]
# # 06: training a Keras-style CNN on handwritten digits, and checking its gradients against JAX
#
# scikit-learn's digits are 1,797 tiny 8x8 grey images of the digits 0-9. We
# build a small CNN layer by layer (the same names and arguments as Keras),
# print its summary, train it with compile/fit (a progress bar per epoch),
# watch it on a validation set split off the training data, plot the training
# curves, measure test accuracy once at the end, and finally ask the JAX twin
# to differentiate the very same model: every weight's gradient and every
# layer's backward pass must agree with the engine's to many digits.

# %%

import numpy as np
from _common import Run, section, table

import jax_ref
from tinygrad_cnn import data, nn, optim, viz
from tinygrad_cnn import functional as F

run = Run("06_train_digits", "a Keras-style CNN on digits, its gradients checked against JAX")

# %% [markdown]
# ## The data
# Three sets: the model learns from the training set; the validation set, split off the training data, is what
# we watch while training (and would tune on); the test set is looked at once, at the end, so its accuracy is an
# honest estimate for new digits.

# %%
section("the data")
# Images come as (n, 8, 8, 1) float32 in [0, 1] (channels last, as Keras); labels are ints 0..9.
x_train, y_train, x_test, y_test = data.load_digits(test_fraction=0.25, seed=0)
if run.quick:  # a slice of the data: enough to see the loss fall
    x_train, y_train, x_test, y_test = x_train[:320], y_train[:320], x_test[:128], y_test[:128]
n_val = len(x_train) // 5  # the split is already shuffled: its last fifth is a random validation set
x_train, y_train, x_val, y_val = x_train[:-n_val], y_train[:-n_val], x_train[-n_val:], y_train[-n_val:]
print(f"train {x_train.shape} {x_train.dtype}, validation {x_val.shape}, test {x_test.shape}; "
      f"classes {np.bincount(y_train).tolist()}")
run.save(viz.image_grid(x_train[:16], titles=[f"label {c}" for c in y_train[:16]], ncols=8, panel=1.1),
         "digits.png")

# %% [markdown]
# ## The model
# conv -> relu -> pool, twice, then one dense layer to 10 logits.

# %%
section("the model")
# conv -> relu -> pool, twice, then one dense layer to 10 logits. 'same' padding keeps 8x8, each pool halves it.
# The last layer has no softmax: the loss F.cross_entropy works on logits (log-softmax inside, stable).
nn.set_random_seed(0)  # the initial weights are drawn from this seed: reruns give the same numbers
model = nn.Sequential([
    nn.Input((8, 8, 1)),
    nn.Conv2D(16, 3, padding="same", activation="relu"),
    nn.MaxPooling2D(2),
    nn.Conv2D(32, 3, padding="same", activation="relu"),
    nn.MaxPooling2D(2),
    nn.Flatten(),
    nn.Dropout(0.2),
    nn.Dense(10),
], name="digits_cnn")
model.summary()
print("The receptive field column: how many input pixels one unit of that layer can see.")

# %% [markdown]
# ## Training with compile / fit

# %%
section("training with compile / fit")
# Adam with optax's update rule; fit shuffles with `seed`, draws dropout masks from it too, and shows a bar.
epochs = 2 if run.quick else 8
model.compile(optimizer=optim.Adam(model.parameters(), learning_rate=5e-3), loss=F.cross_entropy,
              metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_data=(x_val, y_val), seed=0)
rows = [[e + 1] + [history.history[k][e] for k in history.history] for e in range(epochs)]
table(rows, ["epoch"] + list(history.history))
run.save(viz.training_curves(history, title="digits CNN trained by the engine"), "training_curves.png")

# %% [markdown]
# ## Test accuracy, measured once

# %%
section("test accuracy")
loss, accuracy = model.evaluate(x_test, y_test)
pred = model.predict(x_test).argmax(axis=-1)
print(f"test loss {loss:.4f}, test accuracy {accuracy:.4f} ({int((pred == y_test).sum())}/{len(y_test)} right)")
confusion = np.zeros((10, 10), int)
np.add.at(confusion, (y_test, pred), 1)
print("confusion matrix (rows: true digit, columns: predicted):")
print(confusion)
wrong = np.flatnonzero(pred != y_test)[:8]
if wrong.size:
    run.save(viz.image_grid(x_test[wrong], titles=[f"{t} read as {p}" for t, p in zip(y_test[wrong], pred[wrong],
                                                                                        strict=True)],
                            ncols=min(8, wrong.size), panel=1.3, suptitle="mistakes"), "mistakes.png")

# %% [markdown]
# ## The JAX twin differentiates the same model
# `jax_ref.from_engine` rebuilds the model from its config and weights; `compare_gradients` differentiates
# loss(model(x), y) both ways in float64 and compares every weight gradient and every layer's input gradient.

# %%
section("the JAX twin differentiates the same model")
report = jax_ref.compare_gradients(model, x_test[:64], y_test[:64])
print(report)
print(f"\nLargest relative disagreement: {report.max_rel_error:.1e} ({report.grade}). In float64 the two "
      "implementations agree to ~10 digits;\na wrong vjp would show up as a failing row, and the first failing "
      "row names the layer where the error enters.")
run.done()
