"""Graph models against Keras 3 itself (JAX backend): a residual block with BatchNormalization, a two-input
model and a U-Net (Concatenate, UpSampling2D nearest and bilinear), the same functional model built in both,
Keras' weights copied into the engine by layer name; outputs in inference and training mode, the moving
statistics after a training forward, the weight gradients in both modes (Keras' through ``jax.grad`` of its
``stateless_call``) and three plain SGD steps in training mode (weights and moving statistics). (The twin is
checked against the engine on graph models in tests/jax_ref/test_graph_twin.py.)"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another test imported keras with another backend
    pytest.skip("keras was imported with a non-JAX backend", allow_module_level=True)

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import nn, optim  # noqa: E402
from tinygrad_cnn.losses import cross_entropy  # noqa: E402

jax.config.update("jax_enable_x64", True)  # Keras' float64 layers compute in float64 only with x64 on
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
R = np.random.default_rng(0)
F64 = dict(dtype="float64")
Z = dict(kernel_initializer="zeros", **F64)  # no per-shape compile of a random initializer (set below)


def residual_block(L, Input, Model):  # noqa: N803 (the namespace: nn or keras.layers)
    """Conv-BN-ReLU-Conv-BN plus a 1x1 projection shortcut, ReLU, global average pooling, Dense."""
    x = Input(shape=(6, 6, 3), name="x", **F64)
    h = L.ReLU(name="r1", **F64)(L.BatchNormalization(momentum=0.9, name="bn1", **F64)(
        L.Conv2D(4, 3, padding="same", name="c1", **Z)(x)))
    h = L.BatchNormalization(momentum=0.9, name="bn2", **F64)(L.Conv2D(4, 3, padding="same", name="c2", **Z)(h))
    h = L.ReLU(name="r2", **F64)(L.Add(name="add", **F64)([h, L.Conv2D(4, 1, name="proj", **Z)(x)]))
    return Model(x, L.Dense(3, name="logits", **Z)(L.GlobalAveragePooling2D(name="gap", **F64)(h)))


def two_inputs(L, Input, Model):  # noqa: N803
    """A vector and an image, a BatchNormalization on the image branch, merged by Multiply, Subtract and
    Concatenate, LayerNormalization, Dense."""
    a, b = Input(shape=(5,), name="a", **F64), Input(shape=(4, 4, 2), name="b", **F64)
    ha = L.Dense(6, activation="tanh", name="da", **Z)(a)
    hb = L.BatchNormalization(name="bnb", **F64)(L.Dense(6, name="db", **Z)(L.Flatten(name="flat", **F64)(b)))
    m = L.Concatenate(name="cat", **F64)([L.Multiply(name="mul", **F64)([ha, hb]),
                                          L.Subtract(name="sub", **F64)([ha, hb])])
    return Model([a, b], L.Dense(3, name="out", **Z)(L.LayerNormalization(name="ln", **F64)(m)))


def unet(L, Input, Model):  # noqa: N803
    """A two-level U-Net: encoder convs and max-pooling down to 2x2, back up by UpSampling2D (bilinear, then
    nearest), each level's encoder output concatenated to the upsampled decoder (the skip connections), a
    BatchNormalization in the decoder, a 1x1 conv to 3 class maps, global average pooling as the logits."""
    x = Input(shape=(8, 8, 2), name="x", **F64)
    e1 = L.Conv2D(3, 3, padding="same", activation="relu", name="e1", **Z)(x)
    e2 = L.Conv2D(4, 3, padding="same", activation="relu", name="e2", **Z)(L.MaxPooling2D(2, name="p1", **F64)(e1))
    b = L.Conv2D(4, 3, padding="same", activation="tanh", name="b", **Z)(L.MaxPooling2D(2, name="p2", **F64)(e2))
    u2 = L.UpSampling2D(2, interpolation="bilinear", name="u2", **F64)(b)
    d2 = L.Conv2D(4, 3, padding="same", activation="relu", name="d2", **Z)(
        L.Concatenate(name="cat2", **F64)([u2, e2]))
    u1 = L.UpSampling2D(2, name="u1", **F64)(d2)
    d1 = L.Conv2D(3, 3, padding="same", name="d1", **Z)(L.Concatenate(axis=-1, name="cat1", **F64)([e1, u1]))
    d1 = L.ReLU(name="r1", **F64)(L.BatchNormalization(momentum=0.9, name="bn1", **F64)(d1))
    return Model(x, L.GlobalAveragePooling2D(name="gap", **F64)(L.Conv2D(3, 1, name="classes", **Z)(d1)))


CASES = {"residual_block_bn": (residual_block, [(6, 6, 3)]), "two_inputs": (two_inputs, [(5,), (4, 4, 2)]),
         "unet_concatenate_upsampling": (unet, [(8, 8, 2)])}


def _pair(build):
    theirs = build(keras.layers, keras.Input, keras.Model)
    for layer in theirs.layers:  # random weights and statistics away from their initial values
        weights = []
        for w in layer.weights:
            kind = w.path.split("/")[-1]
            shape = tuple(w.shape)
            weights.append(R.uniform(0.5, 2.0, shape) if kind in ("moving_variance", "gamma") else
                           R.normal(0, 0.4 if kind == "kernel" else 0.2, shape))
        if weights:
            layer.set_weights(weights)
    ours = build(nn, nn.Input, nn.Model)
    for layer in theirs.layers:
        if layer.weights:
            ours.get_layer(layer.name).set_weights(layer.get_weights())  # Keras' weight order is ours
    return ours, theirs


def _inputs(shapes, n=8):
    xs = [R.normal(1.0, 2.0, (n,) + s) for s in shapes]
    return xs if len(xs) > 1 else xs[0]


def _keras_step(theirs, training):
    """Keras' ``(loss, (output, updated statistics)), weight gradients`` of ``(trainable, non_trainable, x,
    labels)``, by ``jax.grad`` of its ``stateless_call`` (compiled once per mode)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")

    def f(trainable, non_trainable, x, labels):
        y, updated = theirs.stateless_call(trainable, non_trainable, x, training=training)
        return loss_fn(labels, y), (y, updated)

    return jax.jit(jax.value_and_grad(f, has_aux=True))


def _engine_slot(ours, variable):
    layer, weight = variable.path.split("/")[-2:]
    engine_layer = ours.get_layer(layer)
    return engine_layer.weights[engine_layer.weight_names.index(weight)]


@pytest.mark.parametrize("case", list(CASES))
def test_outputs_statistics_gradients_and_sgd_match_keras(case):
    build, shapes = CASES[case]
    ours, theirs = _pair(build)
    x = _inputs(shapes)
    labels = R.integers(0, 3, 8)
    worst = {}

    def close(what, a, b, tol=1e-6, scale=None):
        """|a - b| <= tol * scale (default: max |b|); Keras' float64 layers carry float32 rounding (see
        test_normalization), so a gradient that is exactly 0 (a conv bias before a BatchNormalization in
        training) comes out of Keras as 1e-8 noise: gradients are measured against the largest gradient."""
        a, b = np.asarray(a), np.asarray(b)
        scale = max(float(np.max(np.abs(b))), 1e-12) if scale is None else scale
        worst[what] = max(worst.get(what, 0.0), float(np.max(np.abs(a - b))) / scale)
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale, err_msg=what)

    trainable = [v.value for v in theirs.trainable_variables]
    non_trainable = [v.value for v in theirs.non_trainable_variables]
    slots = [_engine_slot(ours, v) for v in theirs.trainable_variables]
    state_slots = [_engine_slot(ours, v) for v in theirs.non_trainable_variables]
    steps = {training: _keras_step(theirs, training) for training in (False, True)}
    for training in (False, True):  # the inference pass first: it must leave the statistics as they are
        mode = "training" if training else "inference"
        (loss, (y, updated)), grads = steps[training](trainable, non_trainable, x, labels)
        out = ours(x, training=training)
        close(f"{mode} output", out.data, y)
        engine_loss = cross_entropy(out, labels)
        close("loss", engine_loss.item(), loss)
        scale = max(float(np.max(np.abs(g))) for g in grads)
        for g, want in zip(tg.grad(engine_loss, slots), grads, strict=True):
            close(f"gradient ({mode})", g.data, want, scale=scale)
        for slot, new in zip(state_slots, updated, strict=True):
            close(f"moving statistics after a forward ({mode})", slot.data, new)
    # three plain SGD steps in training mode, on both sides from the same weights and statistics (one training
    # forward each so far)
    non_trainable = updated
    opt = optim.SGD(ours.parameters(), learning_rate=0.1)
    for _ in range(3):
        xb, yb = _inputs(shapes), R.integers(0, 3, 8)
        (_, (_, non_trainable)), grads = steps[True](trainable, non_trainable, xb, yb)
        trainable = [w - 0.1 * g for w, g in zip(trainable, grads, strict=True)]
        opt.zero_grad()
        cross_entropy(ours(xb, training=True), yb).backward()
        opt.step()
    scale = max(float(np.max(np.abs(w))) for w in trainable)
    for slot, want in zip(slots, trainable, strict=True):
        close("weights after 3 SGD steps", slot.data, want, scale=scale)
    for slot, want in zip(state_slots, non_trainable, strict=True):
        close("moving statistics after 3 SGD steps", slot.data, want)
    print(case, ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
