"""Memory: repeated training steps keep the number of live Tensors and graph nodes and the traced memory
flat; optimizers hold arrays, never graph nodes. Determinism: the same seed gives bit-identical init,
dropout masks, fit (shuffling + dropout) and SmoothGrad noise, within a process and across processes."""

from __future__ import annotations

import gc
import hashlib
import json
import subprocess
import sys
import textwrap
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import functional as F
from tinygrad_cnn import nn, optim
from tinygrad_cnn.function import Context

X = np.random.default_rng(0).standard_normal((16, 8, 8, 1)).astype(np.float32)
Y = np.random.default_rng(1).integers(0, 3, 16)


def _model(seed=0):
    nn.set_random_seed(seed)
    return nn.Sequential([nn.Input((8, 8, 1)), nn.Conv2D(4, 3, activation="relu", kernel_regularizer="l2"),
                          nn.MaxPooling2D(2), nn.Dropout(0.25), nn.Flatten(), nn.Dense(3)])


def _live(*classes) -> tuple[int, ...]:
    """How many objects of each class are alive (one collection and one heap walk for all of them)."""
    gc.collect()
    counts = dict.fromkeys(classes, 0)
    for o in gc.get_objects():
        if type(o) in counts:
            counts[type(o)] += 1
    return tuple(counts[c] for c in classes)


def _steps(model, opt, n):
    for i in range(n):
        idx = slice((i % 4) * 4, (i % 4) * 4 + 4)
        model.train_step(X[idx], Y[idx], opt)


OPTIMIZERS = {"sgd-momentum": lambda p: optim.SGD(p, 0.01, momentum=0.9), "adam": optim.Adam,
              "adamw": optim.AdamW, "rmsprop": lambda p: optim.RMSprop(p, 1e-3)}


def growth_figures() -> dict:
    """Live Tensors and Contexts around 20 training steps per optimizer, the traced memory grown over 40 steps
    (after warm-up) and the Contexts left by no-grad inference. Run in a fresh interpreter (``fresh_process``):
    with the rest of the suite's imports in the heap, each garbage collection and heap walk costs seconds."""
    figures = {"live": {}}
    for name, make_opt in OPTIMIZERS.items():
        model = _model()
        model.compile(make_opt(model.parameters()), F.cross_entropy)
        opt = model._make_optimizer()
        _steps(model, opt, 3)  # warm-up: optimizer state, grads, caches
        before = _live(tg.Tensor, Context)
        _steps(model, opt, 20)
        figures["live"][name] = [before, _live(tg.Tensor, Context)]
    model = _model()
    model.compile("adam", F.cross_entropy)
    opt = model._make_optimizer()
    _steps(model, opt, 3)
    gc.collect()
    tracemalloc.start()
    try:
        _steps(model, opt, 2)
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        _steps(model, opt, 40)
        gc.collect()
        figures["traced_growth"] = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    model = _model()
    with tg.no_grad():
        model(X)
    (contexts,) = _live(Context)
    with tg.no_grad():
        for _ in range(5):
            y = model(X)
    figures["no_grad"] = {"recorded": y._ctx is not None, "contexts": [contexts, _live(Context)[0]]}
    return figures


@pytest.fixture(scope="module")
def fresh_process() -> dict:
    code = f"import json, runpy; print(json.dumps(runpy.run_path({__file__!r})['growth_figures']()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_training_steps_do_not_grow_live_tensors_or_graph_nodes(fresh_process, name):
    before, after = fresh_process["live"][name]
    assert after == before, f"{name}: live (Tensors, Contexts) went from {before} to {after} over 20 steps"


def test_training_steps_do_not_grow_traced_memory(fresh_process):
    growth = fresh_process["traced_growth"]
    assert growth < 64 * 1024, f"traced memory grew by {growth} bytes over 40 steps"


def test_graph_is_freed_by_reference_counting_alone_and_optimizer_holds_no_graph():
    """After backward + step, the loss and every intermediate die as soon as the last name goes (no cycle
    needs the garbage collector), and the optimizer state is plain arrays."""
    model = _model()
    opt = optim.Adam(model.parameters())
    gc.disable()
    try:
        out = model(X[:4], training=True)
        loss = F.cross_entropy(out, Y[:4]) + sum(model.losses)
        refs = [weakref.ref(loss), weakref.ref(out)]
        loss.backward()
        opt.step()
        del loss, out
        assert all(r() is None for r in refs)
    finally:
        gc.enable()
    for p, state in zip(opt.params, opt.state, strict=True):
        assert p.is_leaf and isinstance(p.grad, np.ndarray)
        assert all(type(v) is np.ndarray for v in state.values())


def test_no_grad_inference_records_nothing(fresh_process):
    figures = fresh_process["no_grad"]
    assert not figures["recorded"] and figures["contexts"][1] == figures["contexts"][0], figures


# -- determinism ---------------------------------------------------------------------------------------------
def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _train(seed, fit_seed):
    model = _model(seed)
    model.compile("sgd", F.cross_entropy)
    history = model.fit(X, Y, batch_size=4, epochs=2, seed=fit_seed, verbose=0)
    return model.get_weights(), history.history["loss"]


def test_same_seed_same_init_and_different_seed_different_init():
    assert _digest(_model(5).get_weights()) == _digest(_model(5).get_weights())
    assert _digest(_model(5).get_weights()) != _digest(_model(6).get_weights())
    a = nn.Dense(4, kernel_initializer=nn.initializers.HeNormal(seed=3))
    b = nn.Dense(4, kernel_initializer=nn.initializers.HeNormal(seed=3))
    a.build((None, 5))
    b.build((None, 5))
    np.testing.assert_array_equal(a.kernel.data, b.kernel.data)


def test_same_seed_same_dropout_mask():
    x = np.ones((64, 32), np.float32)
    masks = [F.dropout(x, 0.5, True, seed=s).data for s in (7, 7, 8)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])
    layers = [nn.Dropout(0.5, seed=11) for _ in range(2)]
    np.testing.assert_array_equal(layers[0](x, training=True).data, layers[1](x, training=True).data)


def test_fit_is_bit_identical_for_the_same_seeds():
    w1, loss1 = _train(0, 42)
    w2, loss2 = _train(0, 42)
    assert _digest(w1) == _digest(w2) and loss1 == loss2
    w3, _ = _train(0, 43)  # another shuffle and other dropout masks: different weights
    assert _digest(w1) != _digest(w3)


_SCRIPT = textwrap.dedent("""
    import hashlib, numpy as np
    from tinygrad_cnn import functional as F, nn
    X = np.random.default_rng(0).standard_normal((16, 8, 8, 1)).astype(np.float32)
    Y = np.random.default_rng(1).integers(0, 3, 16)
    nn.set_random_seed(0)
    model = nn.Sequential([nn.Input((8, 8, 1)), nn.Conv2D(4, 3, activation="relu", kernel_regularizer="l2"),
                           nn.MaxPooling2D(2), nn.Dropout(0.25), nn.Flatten(), nn.Dense(3)])
    model.compile("sgd", F.cross_entropy)
    model.fit(X, Y, batch_size=4, epochs=2, seed=42, verbose=0)
    h = hashlib.sha256()
    for a in model.get_weights():
        h.update(np.ascontiguousarray(a).tobytes())
    print(h.hexdigest())
""")


def test_fit_is_bit_identical_across_processes():
    runs = [subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)]
    assert runs[0] == runs[1] == _digest(_train(0, 42)[0])


def test_smoothgrad_noise_is_bit_identical_for_the_same_seed():
    attribution = pytest.importorskip("jax_ref.attribution")
    model = nn.Sequential([nn.Input((6, 6, 1)), nn.Conv2D(2, 3, activation="tanh"), nn.Flatten(), nn.Dense(3)])
    image = X[0, :6, :6]
    a = attribution.smoothgrad(model, image, n=4, seed=0, kind="vargrad")
    b = attribution.smoothgrad(model, image, n=4, seed=0, kind="vargrad")
    c = attribution.smoothgrad(model, image, n=4, seed=1, kind="vargrad")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
