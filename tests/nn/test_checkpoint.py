"""Checkpoints: atomic .npz saves (fault injection), validated loads, clear errors on bad files."""

import os

import numpy as np
import pytest

from tinygrad_cnn import nn


def _model(filters=4):
    return nn.Sequential([nn.Input((6, 6, 2)), nn.Conv2D(filters, 3, activation="relu"), nn.Flatten(),
                          nn.Dense(3)])


def _files(directory):
    return sorted(os.listdir(directory))


def test_round_trip_restores_outputs(tmp_path):
    a, b = _model(), _model()
    path = tmp_path / "w.npz"
    a.save_weights(path)
    assert _files(tmp_path) == ["w.npz"]
    with np.load(path, allow_pickle=False) as f:
        assert f.files == ["000_Conv2D/kernel", "000_Conv2D/bias", "002_Dense/kernel", "002_Dense/bias"]
    b.load_weights(path)
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


@pytest.mark.parametrize("target", ["savez", "replace"])
def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, target):
    path = tmp_path / "w.npz"
    old = _model()
    old.save_weights(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        if target == "savez":  # write some bytes first, as a crash mid-write would
            args[0].write(b"PK partial")
        raise OSError("disk full (injected)")

    if target == "savez":
        monkeypatch.setattr(np, "savez", boom)
    else:
        monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="injected"):
        _model().save_weights(path)
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["w.npz"]


def test_load_validates_everything_before_changing_anything(tmp_path):
    path = tmp_path / "w.npz"
    _model(filters=4).save_weights(path)
    other = _model(filters=5)
    before = other.get_weights()
    with pytest.raises(ValueError, match=r"layer 'conv2d.*' \(Conv2D\) weight 'kernel': the model expects shape "
                                         r"\(3, 3, 2, 5\), the file has \(3, 3, 2, 4\)"):
        other.load_weights(path)
    for a, b in zip(before, other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_rejects_wrong_dtype_missing_and_extra_arrays(tmp_path):
    model = _model()
    keys = ["000_Conv2D/kernel", "000_Conv2D/bias", "002_Dense/kernel", "002_Dense/bias"]
    arrays = dict(zip(keys, model.get_weights(), strict=True))
    bad = dict(arrays, **{"002_Dense/bias": arrays["002_Dense/bias"].astype(np.float64)})
    np.savez(tmp_path / "dtype.npz", **bad)
    with pytest.raises(ValueError, match=r"layer 'dense.*' \(Dense\) weight 'bias': the model expects dtype float32"):
        model.load_weights(tmp_path / "dtype.npz")
    missing = {k: v for k, v in arrays.items() if k != "002_Dense/kernel"}
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ValueError, match=r"layer 'dense.*' \(Dense\) weight 'kernel': not found"):
        model.load_weights(tmp_path / "missing.npz")
    np.savez(tmp_path / "extra.npz", **arrays, extra=np.zeros(2))
    with pytest.raises(ValueError, match=r"does not have, e.g. 'extra'"):
        model.load_weights(tmp_path / "extra.npz")


def test_truncated_or_foreign_files_are_clear_errors(tmp_path):
    model = _model()
    good = tmp_path / "w.npz"
    model.save_weights(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a checkpoint at all")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, arr_0=np.array([{"a": 1}], dtype=object))
    for path in (truncated, garbage, pickled):
        with pytest.raises(ValueError, match="not a readable .npz weights file"):
            model.load_weights(path)
    with pytest.raises(FileNotFoundError):
        model.load_weights(tmp_path / "nope.npz")


def test_positional_keras_order_arrays_load(tmp_path):
    model, other = _model(), _model()
    np.savez(tmp_path / "keras.npz", *model.get_weights())
    other.load_weights(tmp_path / "keras.npz")
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
