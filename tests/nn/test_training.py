"""compile / fit / evaluate / predict: digits accuracy, bit-identical reruns, losses, penalties, constraints."""

import time

import numpy as np
import pytest

from tinygrad_cnn import Tensor, data, nn, optim
from tinygrad_cnn import functional as F


def _cnn(dropout=0.0):
    return nn.Sequential([
        nn.Input((8, 8, 1)), nn.Conv2D(16, 3, padding="same", activation="relu"), nn.MaxPooling2D(),
        nn.Conv2D(32, 3, padding="same", activation="relu"), nn.MaxPooling2D(), nn.Flatten(),
        nn.Dropout(dropout), nn.Dense(10),
    ])


def test_small_cnn_reaches_95_percent_on_digits_quickly():
    x_tr, y_tr, x_te, y_te = data.load_digits()
    nn.set_random_seed(0)
    model = _cnn()
    model.compile(optim.Adam(model.parameters(), learning_rate=1e-2), F.cross_entropy, ["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_tr, y_tr, batch_size=32, epochs=5, seed=0, verbose=0)
    seconds = time.perf_counter() - start
    loss, acc = model.evaluate(x_te, y_te)
    print(f"digits: test accuracy {acc:.4f}, loss {loss:.4f}, training {seconds:.1f} s")
    assert acc >= 0.95
    assert seconds < 30
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert set(history.history) == {"loss", "accuracy"} and history.epoch == [0, 1, 2, 3, 4]


def test_same_seed_and_weights_give_bit_identical_training():
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 96)
    runs = []
    init = None
    for _ in range(2):
        model = _cnn(dropout=0.3)
        if init is None:
            init = model.get_weights()
        model.set_weights(init)
        model.compile("adam", F.cross_entropy)
        hist = model.fit(x, y, batch_size=16, epochs=2, seed=123, verbose=0)
        runs.append((model.get_weights(), hist.history["loss"]))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    # negative control: another seed changes the shuffling and the dropout masks
    model = _cnn(dropout=0.3)
    model.set_weights(init)
    model.compile("adam", F.cross_entropy)
    model.fit(x, y, batch_size=16, epochs=2, seed=124, verbose=0)
    assert not np.array_equal(model.get_weights()[0], runs[0][0][0])


def test_keras_loss_names_have_keras_meaning():
    rng = np.random.default_rng(1)
    model = nn.Sequential([nn.Input((5,)), nn.Dense(4, activation="softmax")])
    x, y = rng.standard_normal((6, 5)).astype(np.float32), rng.integers(0, 4, 6)
    p = model(x).numpy()
    expected = -np.mean(np.log(np.clip(p[np.arange(6), y], 1e-7, 1 - 1e-7)))
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    loss, acc = model.evaluate(x, y, batch_size=4)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(-1) == y))
    model.compile("sgd", "categorical_crossentropy")
    assert model.evaluate(x, np.eye(4, dtype=np.float32)[y]) == pytest.approx(expected, rel=1e-5)
    model.compile("sgd", "mse", ["mae"])
    t = rng.random((6, 4)).astype(np.float32)
    loss, mae = model.evaluate(x, t)
    assert loss == pytest.approx(np.mean((p - t) ** 2), rel=1e-5)
    assert mae == pytest.approx(np.mean(np.abs(p - t)), rel=1e-5)


def test_fit_minimises_loss_plus_penalties_and_applies_constraints():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    dense = nn.Dense(3, kernel_regularizer=nn.regularizers.L2(0.1), kernel_constraint="non_neg")
    model = nn.Sequential([nn.Input((6,)), dense])
    model.compile(optim.SGD(model.parameters(), learning_rate=0.05), F.cross_entropy)
    hist = model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    assert np.all(dense.kernel.numpy() >= 0)
    # one full-batch epoch reports cross-entropy + 0.1 * sum(kernel^2) at the weights it started from
    model2 = nn.Sequential([nn.Input((6,)), nn.Dense(3, kernel_regularizer=nn.regularizers.L2(0.1))])
    model2.set_weights(model.get_weights())
    w = model2.get_weights()[0]
    expected = float(F.cross_entropy(model2(x), y).item()) + 0.1 * np.sum(w ** 2)
    model2.compile(optim.SGD(model2.parameters(), learning_rate=0.0), F.cross_entropy)
    assert model2.fit(x, y, batch_size=32, verbose=0).history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert len(hist.history["loss"]) == 3


def _two_dense(seed=0):
    nn.set_random_seed(seed)
    return nn.Sequential([nn.Input((4,)), nn.Dense(5, activation="tanh"), nn.Dense(3)])


_XY = (np.random.default_rng(5).standard_normal((16, 4)).astype(np.float32), np.arange(16) % 3)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd", optim.Adam])
def test_freezing_a_layer_between_fits_rebuilds_a_named_optimizer(optimizer):
    model = _two_dense()
    first, second = model.layers
    model.compile(optimizer, F.cross_entropy)
    model.fit(*_XY, batch_size=8, epochs=1, seed=0, verbose=0)
    state = model.optimizer.state[2]  # the second layer's kernel
    frozen, before = first.get_weights(), second.get_weights()
    first.trainable = False
    model.fit(*_XY, batch_size=8, epochs=1, seed=1, verbose=0)
    for w, f in zip(first.get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(w, f)  # bit for bit, even under AdamW's decay
    assert all(not np.array_equal(w, b) for w, b in zip(second.get_weights(), before, strict=True))
    # the optimizer now holds only the second layer; its state and the step count carried on
    assert [id(p) for p in model.optimizer.params] == [id(w) for w in second.weights]
    assert model.optimizer.state[0] is state
    assert model.optimizer.count == 4
    first.trainable = True
    model.fit(*_XY, batch_size=8, epochs=1, seed=2, verbose=0)
    assert all(not np.array_equal(w, f) for w, f in zip(first.get_weights(), frozen, strict=True))
    assert [id(p) for p in model.optimizer.params] == [id(p) for p in model.parameters()]
    assert model.optimizer.count == 6
    model.trainable = False
    with pytest.raises(ValueError, match="fit has nothing to train"):
        model.fit(*_XY, verbose=0)


def test_freezing_a_layer_under_an_optimizer_instance_asks_to_compile_again():
    model = _two_dense()
    first = model.layers[0]
    model.compile(optim.Adam(model.parameters()), F.cross_entropy)
    first.trainable = False
    name = first.name
    with pytest.raises(ValueError, match=rf"changed since compile \(frozen: {name}/bias, {name}/kernel\).*"
                                         r"call compile again"):
        model.fit(*_XY, verbose=0)
    model.compile(optim.Adam(model.parameters()), F.cross_entropy)
    frozen = first.get_weights()
    model.fit(*_XY, batch_size=8, verbose=0)
    for w, f in zip(first.get_weights(), frozen, strict=True):
        np.testing.assert_array_equal(w, f)
    first.trainable = True  # an instance over the second layer alone would leave the first one untrained
    with pytest.raises(ValueError, match=rf"\(newly trainable: {name}/bias, {name}/kernel\)"):
        model.fit(*_XY, verbose=0)


def test_predict_is_batched_and_records_no_graph():
    model = nn.Sequential([nn.Input((5,)), nn.Dense(3)])
    x = np.random.default_rng(3).standard_normal((70, 5)).astype(np.float32)
    out = model.predict(x, batch_size=16)
    assert isinstance(out, np.ndarray) and out.shape == (70, 3)
    np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_validation_data_and_history_keys():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((20, 4)).astype(np.float32), rng.integers(0, 2, 20)
    model = nn.Sequential([nn.Input((4,)), nn.Dense(2)])
    model.compile("rmsprop", F.cross_entropy, ["accuracy"])
    hist = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert model.history is hist


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_optimizer_names_come_from_the_one_table(name):
    """compile's names are ``optim.OPTIMIZERS``' (optax' function names), built with the class' default (Keras')
    learning rate."""
    model = nn.Sequential([nn.Input((4,)), nn.Dense(2)])
    model.compile(name.upper(), F.cross_entropy)
    model.fit(np.ones((4, 4), np.float32), np.zeros(4, np.int64), batch_size=4, verbose=0)
    assert type(model.optimizer) is optim.OPTIMIZERS[name]
    assert model.optimizer.learning_rate == {"sgd": 0.01}.get(name, 1e-3)


def test_training_errors_are_clear():
    model = nn.Sequential([nn.Input((4,)), nn.Dense(2)])
    x, y = np.zeros((4, 4), np.float32), np.zeros(4, np.int64)
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y)
    with pytest.raises(ValueError, match=r"loss='sparse_categorical_crossentropi'.*did you mean"):
        model.compile("adam", "sparse_categorical_crossentropi")
    with pytest.raises(ValueError, match=r"optimizer='adan'.*did you mean 'adam'"):
        model.compile("adan", F.cross_entropy)
    model.compile("adam", F.cross_entropy)
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        model.fit(x, y[:3])
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        model.fit(x, y, batch_size=0)
    _ = Tensor
