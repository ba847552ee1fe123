"""Weights on disk as ``.npz``: atomic saves, validated loads, no pickle.

``save_weights`` writes every weight under the key ``"{index:03d}_{LayerClass}/{weight}"``
(e.g. ``"000_Conv2D/kernel"``) to a temporary file in the destination's
directory, flushes it to disk and renames it over the destination with
``os.replace`` (atomic on POSIX and Windows): an existing checkpoint survives
any failure during the save, and the temporary file is removed on failure.
The saved file behaves as one written with ``open()``: its mode follows the
umask (an existing file keeps its own), and saving onto a symlink writes
through the link to its target (``atomic_write``, shared by every saver).

``load_weights`` reads with ``allow_pickle=False`` and checks every array's
name, shape and dtype against the model *before* changing anything; the first
mismatch raises a ``ValueError`` naming the layer. A file whose keys are
``arr_0, arr_1, ...`` (``np.savez(path, *keras_model.get_weights())``) is read
positionally in Keras' order. A truncated or non-npz file is a ``ValueError``.
"""

from __future__ import annotations

import os
import stat
import tempfile

import numpy as np

__all__ = ["atomic_write", "load_weights", "save_weights", "weight_keys"]


def weight_keys(model) -> list[tuple[str, object, str, object]]:
    """``(key, layer, weight name, Tensor)`` for every weight, in Keras order."""
    out = []
    for i, layer in enumerate(model.layers):
        for wname, t in zip(layer.weight_names, layer.weights, strict=True):
            out.append((f"{i:03d}_{type(layer).__name__}/{wname}", layer, wname, t))
    return out


def save_weights(model, path) -> None:
    """Write the model's weights to ``path`` (.npz) atomically (see the module docstring)."""
    if not model.built:
        raise ValueError(f"save_weights: the model {model.name!r} is not built; there are no weights to save")
    arrays = {key: t.data for key, _, _, t in weight_keys(model)}
    atomic_write(path, lambda f: np.savez(f, **arrays), "save_weights", "weights.npz")


def _new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 without the bits of the process' umask."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write, where: str, example: str) -> None:
    """Write a file as ``write(binary file)`` does, atomically: to a temporary file in the destination's directory,
    flushed and fsynced, then renamed over the destination with ``os.replace``; on any failure (an exception or
    KeyboardInterrupt at any step) the destination is untouched and the temporary file is removed.

    The result behaves as a file written with ``open()``: a new file gets ``0o666 & ~umask``, an existing one keeps
    its mode, and a symlink is written through (its target is replaced, atomically; the link stays a link).
    ``where`` names the caller in errors and ``example`` is a file name suggested when ``path`` is a directory.
    """
    path = os.fspath(path)
    target = os.path.realpath(path)  # a symlink (or a chain of them) is written through to its final target
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{where}: the directory {directory!r} of {path!r} does not exist")
    if os.path.isdir(target):
        raise IsADirectoryError(f"{where}: {path!r} is a directory; give a file name such as {example!r}")
    mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.exists(target) else _new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory)
    try:
        try:
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)  # fdopen failed: the descriptor is still ours to close
            raise
        with f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), mode)  # mkstemp made it 0600
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read(path: str) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array (no context manager, nothing to close)
            raise ValueError(f"not an .npz archive (np.load gave a {type(data).__name__})")
        with data:
            return {k: data[k] for k in data.files}
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as exc:  # noqa: BLE001  (zipfile, zlib, struct, npy-header and pickle refusals all mean "bad file")
        raise ValueError(f"load_weights: {path!r} is not a readable .npz weights file (truncated, corrupt or "
                         f"another format): {type(exc).__name__}: {exc}") from exc


def load_weights(model, path) -> None:
    """Load weights saved by ``save_weights`` (or Keras-ordered ``arr_i`` arrays) into ``model``."""
    path = os.fspath(path)
    if not model.built:
        raise ValueError(f"load_weights: build the model {model.name!r} before loading weights into it")
    arrays = _read(path)
    slots = weight_keys(model)
    positional = bool(arrays) and all(k == f"arr_{i}" for i, k in enumerate(arrays))
    if positional:
        arrays = {key: arrays[f"arr_{i}"] for i, (key, _, _, _) in enumerate(slots) if f"arr_{i}" in arrays} | {
            f"arr_{i}": a for i, a in enumerate(arrays.values()) if i >= len(slots)}
    for key, layer, wname, t in slots:
        where = f"load_weights: layer {layer.name!r} ({type(layer).__name__}) weight {wname!r}"
        if key not in arrays:
            raise ValueError(f"{where}: not found in {path!r} (expected key {key!r}; the file has "
                             f"{sorted(arrays)[:6]}{'...' if len(arrays) > 6 else ''})")
        a = arrays[key]
        if a.shape != t.shape:
            raise ValueError(f"{where}: the model expects shape {t.shape}, the file has {a.shape}")
        if a.dtype != t.dtype:
            raise ValueError(f"{where}: the model expects dtype {t.dtype}, the file has {a.dtype}")
    extra = sorted(set(arrays) - {key for key, _, _, _ in slots})
    if extra:
        raise ValueError(f"load_weights: {path!r} holds {len(extra)} array(s) the model does not have, e.g. "
                         f"{extra[0]!r} (the model has {len(slots)} weights)")
    for key, _, _, t in slots:
        t.copy_(arrays[key])
