"""Checkpoint fault injection: a save interrupted at any step leaves the old file intact and no temporary file;
loads never unpickle, reject truncated, corrupt and foreign files with a clear ValueError, and validate every
array before changing any weight.

The save's steps are found by tracing (``sys.setprofile``) every call ``checkpoint.save_weights`` makes; the
test fails if the save starts making a call that is neither injected here nor known to be side-effect free.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile

import numpy as np
import pytest

from tinygrad_cnn import nn
from tinygrad_cnn.nn import checkpoint


def _model(seed=0, filters=4):
    nn.set_random_seed(seed)
    return nn.Sequential([nn.Input((6, 6, 2)), nn.Conv2D(filters, 3, activation="relu"), nn.Flatten(),
                          nn.Dense(3)])


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


# -- which calls does the save make? ---------------------------------------------------------------------------
INJECTED = {"mkstemp", "fdopen", "savez", "write", "flush", "fchmod", "fsync", "replace"}
SIDE_EFFECT_FREE = {"fspath", "dirname", "abspath", "basename", "isdir", "weight_keys", "fileno", "<dictcomp>",
                    "items", "get", "__exit__", "__enter__", "built", "__fspath__", "_savez_dispatcher", "realpath",
                    "exists", "stat", "S_IMODE", "_new_file_mode", "umask", "atomic_write", "<lambda>"}


def _calls_made_by_save(tmp_path) -> set[str]:
    """The names of the calls made by save_weights, atomic_write and the writer save_weights hands it."""
    codes = {checkpoint.save_weights.__code__, checkpoint.atomic_write.__code__}
    seen: set[str] = set()

    def saver(code) -> bool:
        return code in codes or (code.co_name == "<lambda>" and code.co_filename == checkpoint.__file__)

    def profile(frame, event, arg):
        if event == "c_call" and saver(frame.f_code):
            seen.add(getattr(arg, "__name__", repr(arg)))
        elif event == "call" and frame.f_back is not None and saver(frame.f_back.f_code):
            seen.add(frame.f_code.co_name)

    model = _model()
    sys.setprofile(profile)
    try:
        checkpoint.save_weights(model, tmp_path / "traced.npz")
    finally:
        sys.setprofile(None)
    return seen


def test_every_call_the_save_makes_is_injected_or_side_effect_free(tmp_path):
    seen = _calls_made_by_save(tmp_path)
    assert {"mkstemp", "fdopen", "savez", "fchmod", "fsync", "replace"} <= seen, seen
    unknown = seen - INJECTED - SIDE_EFFECT_FREE
    assert not unknown, f"save_weights makes calls this test does not interrupt: {sorted(unknown)}"


# -- fault injection -------------------------------------------------------------------------------------------
class _Injected(OSError):
    pass


def _raiser(exc_type, name):
    def boom(*args, **kwargs):
        raise exc_type(f"{name} failed (injected)")
    return boom


class _FailingFile(io.FileIO):
    """A file whose ``write`` fails on the n-th call (after writing half of that chunk) or whose flush fails."""

    def __init__(self, fd, mode, fail_write_at=None, fail_flush=False, exc_type=_Injected):
        super().__init__(fd, mode.replace("b", ""), closefd=True)
        self.writes, self.fail_write_at, self.fail_flush, self.exc_type = 0, fail_write_at, fail_flush, exc_type

    def write(self, data):
        self.writes += 1
        if self.fail_write_at is not None and self.writes >= self.fail_write_at:
            super().write(bytes(data)[: len(data) // 2])  # a torn write, as a full disk would leave
            raise self.exc_type("write failed (injected)")
        return super().write(data)

    def flush(self):
        if self.fail_flush:
            raise self.exc_type("flush failed (injected)")
        return super().flush()


def _count_writes(tmp_path) -> int:
    counter = {}

    def fdopen(fd, mode="r", *a, **k):
        counter["f"] = _FailingFile(fd, mode)
        return counter["f"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fdopen", fdopen)
        checkpoint.save_weights(_model(), tmp_path / "count.npz")
    os.unlink(tmp_path / "count.npz")
    return counter["f"].writes


def _injections(tmp_path, exc_type):
    """(label, patch function) for every step of the save; each patch makes exactly that step raise."""
    out = [(name, lambda mp, t=target, n=name: mp.setattr(t, n, _raiser(exc_type, n)))
           for target, name in ((tempfile, "mkstemp"), (os, "fdopen"), (np, "savez"), (os, "fchmod"),
                                (os, "fsync"), (os, "replace"))]
    n_writes = _count_writes(tmp_path)
    assert n_writes >= 3
    for k in sorted({1, 2, n_writes // 2, n_writes}):
        out.append((f"write#{k}/{n_writes}", lambda mp, k=k: mp.setattr(
            os, "fdopen", lambda fd, mode="r", *a, **kw: _FailingFile(fd, mode, fail_write_at=k, exc_type=exc_type))))
    out.append(("flush", lambda mp: mp.setattr(
        os, "fdopen", lambda fd, mode="r", *a, **kw: _FailingFile(fd, mode, fail_flush=True, exc_type=exc_type))))
    return out


INJECTION_COUNT = 11  # 6 function steps + 4 write positions + flush (asserted below)


@pytest.mark.parametrize("exc_type", [_Injected, KeyboardInterrupt], ids=["OSError", "KeyboardInterrupt"])
def test_save_interrupted_at_every_step_keeps_the_old_file_and_leaves_no_temp(tmp_path, exc_type):
    path = tmp_path / "w.npz"
    old = _model(seed=1)
    old.save_weights(path)
    before = path.read_bytes()
    injections = _injections(tmp_path, exc_type)
    assert len(injections) == INJECTION_COUNT
    fds = _open_fds()
    for label, patch in injections:
        new = _model(seed=2)
        with pytest.MonkeyPatch.context() as mp:
            patch(mp)
            with pytest.raises(exc_type, match="injected"):
                new.save_weights(path)
        assert path.read_bytes() == before, f"{label}: the old checkpoint changed"
        assert sorted(os.listdir(tmp_path)) == ["w.npz"], f"{label}: left {sorted(os.listdir(tmp_path))}"
        assert _open_fds() == fds, f"{label}: a file descriptor leaked"
        probe = _model(seed=3)
        probe.load_weights(path)
        assert _same(probe.get_weights(), old.get_weights()), label
    # and the save still works once the fault is gone
    new.save_weights(path)
    probe.load_weights(path)
    assert _same(probe.get_weights(), new.get_weights())


def test_failed_first_save_leaves_nothing(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", _raiser(_Injected, "replace"))
        with pytest.raises(_Injected):
            _model().save_weights(tmp_path / "w.npz")
    assert os.listdir(tmp_path) == []


# -- loading ---------------------------------------------------------------------------------------------------
def test_load_reads_with_allow_pickle_false(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    _model().save_weights(path)
    calls = []
    real = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle", "default"))
        return real(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    _model().load_weights(path)
    assert calls == [False]


def _assert_rejected_without_change(model, path, pattern="not a readable .npz weights file"):
    before = model.get_weights()
    with pytest.raises(ValueError, match=pattern):
        model.load_weights(path)
    assert _same(before, model.get_weights())


def test_truncated_at_every_length_is_a_clear_error_and_changes_nothing(tmp_path):
    good = tmp_path / "w.npz"
    _model(seed=1).save_weights(good)
    data = good.read_bytes()
    model = _model(seed=2)
    cuts = sorted(set(np.linspace(0, len(data) - 1, 40).astype(int)) | {len(data) - 1, len(data) - 22})
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        _assert_rejected_without_change(model, bad)


def test_corrupted_bytes_anywhere_are_a_clear_error_and_change_nothing(tmp_path):
    """Flip one byte at many positions: the zip CRC, headers or npy header catch it; the error is always a
    ValueError naming the file, never a stray struct/zlib/unicode exception, and no weight changes."""
    good = tmp_path / "w.npz"
    _model(seed=1).save_weights(good)
    data = bytearray(good.read_bytes())
    model = _model(seed=2)
    before = model.get_weights()
    loaded = 0
    for pos in np.linspace(0, len(data) - 1, 60).astype(int):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        path = tmp_path / "flip.npz"
        path.write_bytes(bytes(bad))
        try:
            model.load_weights(path)
            loaded += 1  # a flip in an unchecked zip field (e.g. a timestamp) may leave a valid file
            model.set_weights(before)
        except ValueError as exc:
            assert "flip.npz" in str(exc)
            assert _same(before, model.get_weights())
    assert loaded < 30


def test_foreign_files_are_clear_errors(tmp_path):
    model = _model()
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    text = tmp_path / "config.json"
    text.write_text('{"layers": []}')
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, arr_0=np.array([{"a": 1}], dtype=object))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    for path in (npy, text, pickled, empty):
        _assert_rejected_without_change(model, path)


def test_another_models_checkpoint_is_rejected_before_any_change(tmp_path):
    """Every array but the last fits: a load that wrote as it went would already have changed the conv."""
    path = tmp_path / "other.npz"
    _model(seed=1).save_weights(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["002_Dense/bias"] = np.zeros(5, np.float32)
    np.savez(path, **arrays)
    _assert_rejected_without_change(_model(seed=2), path, r"weight 'bias': the model expects shape \(3,\)")
    renamed = dict(arrays, **{"002_Dense/bias": np.zeros(3, np.float32)})
    renamed["002_Dense/kernal"] = renamed.pop("002_Dense/kernel")
    np.savez(path, **renamed)
    _assert_rejected_without_change(_model(seed=2), path, r"weight 'kernel': not found")


# -- files as open() makes them ----------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_checkpoint_gets_the_mode_open_would_give(tmp_path, umask):
    old = os.umask(umask)
    try:
        _model().save_weights(tmp_path / "w.npz")
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / "w.npz").st_mode & 0o777
    assert mode == os.stat(tmp_path / "plain").st_mode & 0o777 == 0o666 & ~umask


def test_an_existing_checkpoint_keeps_its_mode(tmp_path):
    path = tmp_path / "w.npz"
    _model().save_weights(path)
    os.chmod(path, 0o640)
    _model(seed=1).save_weights(path)
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_saving_onto_a_symlink_writes_through_to_its_target_atomically(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "w.npz"
    old = _model(seed=1)
    old.save_weights(target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    chain = tmp_path / "chain.npz"
    chain.symlink_to(link)
    new = _model(seed=2)
    with pytest.MonkeyPatch.context() as mp:  # a failure keeps the target intact and the links in place
        mp.setattr(os, "replace", _raiser(_Injected, "replace"))
        with pytest.raises(_Injected):
            new.save_weights(chain)
    probe = _model(seed=3)
    probe.load_weights(target)
    assert _same(probe.get_weights(), old.get_weights())
    new.save_weights(chain)
    assert link.is_symlink() and chain.is_symlink() and os.readlink(chain) == str(link)
    probe.load_weights(target)
    assert _same(probe.get_weights(), new.get_weights())
    assert sorted(os.listdir(tmp_path / "real")) == ["w.npz"]
    dangling = tmp_path / "dangling.npz"  # a link to a file not written yet: the file is created at the target
    dangling.symlink_to(tmp_path / "real" / "first.npz")
    new.save_weights(dangling)
    assert dangling.is_symlink() and (tmp_path / "real" / "first.npz").is_file()
