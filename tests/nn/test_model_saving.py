"""Whole models on disk: ``model.save`` / ``nn.load_model`` keep the architecture, the weights, the optimizer
state and the compile arguments; training resumed from a file is bit-identical to training straight through."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from tinygrad_cnn import nn, optim
from tinygrad_cnn.nn import losses

RNG = np.random.default_rng(0)
X = RNG.standard_normal((24, 8, 8, 2)).astype(np.float32)
Y = RNG.integers(0, 3, 24)


def _model():
    nn.set_random_seed(5)
    x = nn.Input((8, 8, 2))
    h = nn.Conv2D(4, 3, padding="same", activation="relu")(x)
    h = nn.BatchNormalization()(nn.Add()([h, nn.Conv2D(4, 1)(x)]))
    h = nn.Dropout(0.25)(nn.Flatten()(nn.MaxPooling2D(2)(h)))
    return nn.Model(x, nn.Dense(3)(h))


def _fit(model, seed):
    model.fit(X, Y, batch_size=8, epochs=1, seed=seed, verbose=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd_instance", "rmsprop"])
def test_resumed_training_is_bit_identical_to_training_straight_through(tmp_path, optimizer):
    def compiled():
        model = _model()
        opt = optim.SGD(model.parameters(), 0.05, momentum=0.9, nesterov=True) if optimizer == "sgd_instance" \
            else optimizer
        model.compile(optimizer=opt, loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    straight = compiled()
    _fit(straight, 1)
    _fit(straight, 2)
    first = compiled()
    _fit(first, 1)
    first.save(tmp_path / "m.keras")
    resumed = nn.load_model(tmp_path / "m.keras")
    assert resumed.compiled and resumed.optimizer.count == first.optimizer.count == 3
    assert type(resumed.optimizer) is type(first.optimizer)
    _fit(resumed, 2)
    for a, b in zip(straight.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.evaluate(X, Y, return_dict=True) == straight.evaluate(X, Y, return_dict=True)
    # negative control: the same weights with a fresh optimizer state drift apart
    fresh = nn.load_model(tmp_path / "m.keras", compile=False)
    assert not fresh.compiled
    fresh.compile(optimizer=optimizer if optimizer != "sgd_instance" else
                  optim.SGD(fresh.parameters(), 0.05, momentum=0.9, nesterov=True),
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    _fit(fresh, 2)
    assert max(np.abs(a - b).max() for a, b in zip(straight.get_weights(), fresh.get_weights(), strict=True)) > 1e-6


def test_a_callable_loss_keeps_the_optimizer_for_the_next_compile(tmp_path):
    from tinygrad_cnn import functional as F

    model = _model()
    model.compile(optimizer="adam", loss=F.cross_entropy)
    _fit(model, 1)
    model.save(tmp_path / "m.keras")
    loaded = nn.load_model(tmp_path / "m.keras")
    assert not loaded.compiled and isinstance(loaded.optimizer, optim.Adam) and loaded.optimizer.count == 3
    loaded.compile(optimizer=loaded.optimizer, loss=F.cross_entropy)
    _fit(loaded, 2)
    _fit(model, 2)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_refuses_what_it_cannot_store_and_keeps_the_old_file(tmp_path, monkeypatch):
    model = _model()
    model.compile(optimizer=optim.Adam(model.parameters(), learning_rate=lambda step: 1e-3), loss="cross_entropy")
    with pytest.raises(ValueError, match="learning_rate=.* cannot be stored .* include_optimizer=False"):
        model.save(tmp_path / "m.keras")
    assert os.listdir(tmp_path) == []
    model.save(tmp_path / "m.keras", include_optimizer=False)
    before = (tmp_path / "m.keras").read_bytes()
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m.keras", overwrite=False, include_optimizer=False)

    def boom(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="injected"):
        _model().save(tmp_path / "m.keras", include_optimizer=False)
    assert (tmp_path / "m.keras").read_bytes() == before and os.listdir(tmp_path) == ["m.keras"]


def test_a_damaged_optimizer_state_is_refused_before_anything_is_built(tmp_path):
    import h5py

    model = _model()
    model.compile(optimizer="adam", loss="cross_entropy")
    _fit(model, 1)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        members = {n: z.read(n) for n in z.namelist()}
    weights = tmp_path / "w.h5"
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "a") as h5:
        del h5["tinygrad_cnn/optimizer/0/mu"]
        h5["tinygrad_cnn/optimizer/0/mu"] = np.zeros(3, np.float32)
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as z:
        for name, value in members.items():
            z.writestr(name, weights.read_bytes() if name == "model.weights.h5" else value)
    with pytest.raises(ValueError, match=r"optimizer state 0 'mu' is float32\(3,\)"):
        nn.load_model(tmp_path / "bad.keras")
    assert nn.load_model(tmp_path / "bad.keras", compile=False).count_params() == model.count_params()


def test_a_legacy_keras_2_h5_file_is_named_as_such(tmp_path):
    import h5py

    with h5py.File(tmp_path / "old.h5", "w") as h5:
        h5.attrs["layer_names"] = [b"dense"]
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match="legacy Keras 2 HDF5 file"):
        model.load_weights(tmp_path / "old.h5")
    (tmp_path / "junk.weights.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="junk.weights.h5.* not a readable HDF5 weights file"):
        model.load_weights(tmp_path / "junk.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_a_keras_archive_cut_anywhere_is_a_clear_error(tmp_path):
    model = _model()
    model.compile(optimizer="adam", loss="cross_entropy")
    _fit(model, 1)
    model.save(tmp_path / "m.keras")
    data = (tmp_path / "m.keras").read_bytes()
    for cut in sorted(set(np.linspace(0, len(data) - 1, 25).astype(int))):
        (tmp_path / "cut.keras").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.keras"):
            nn.load_model(tmp_path / "cut.keras")
