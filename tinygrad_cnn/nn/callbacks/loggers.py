"""Callbacks that report: ``ProgbarLogger`` (what ``verbose`` prints), ``CSVLogger`` and ``TerminateOnNaN``.

Progress, as Keras' ``verbose``: 0 prints nothing; 1 shows a live bar (tqdm) per epoch when standard output is a
terminal, and one line per epoch when it is not (a piped log gets no carriage returns); 2 prints one line per
epoch always. The line: ``Epoch 3/10 - 12/12 - 0.4s - loss: 0.1234 - accuracy: 0.9500 - val_loss: ...`` (values
with four decimals, or four significant digits in exponent form below 1e-3, as Keras formats them).
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time

from tqdm.auto import tqdm

from tinygrad_cnn import validation
from tinygrad_cnn.nn.callbacks.base import Callback

__all__ = ["CSVLogger", "ProgbarLogger", "TerminateOnNaN", "format_logs"]


def _format_value(v) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def format_logs(logs: dict) -> str:
    """``" - loss: 0.1234 - accuracy: 0.9500"`` (Keras' number format)."""
    return "".join(f" - {k}: {_format_value(v)}" for k, v in (logs or {}).items())


class ProgbarLogger(Callback):
    """Keras' progress output for ``fit`` / ``evaluate`` / ``predict`` (see the module docstring); added by ``fit``
    when ``verbose`` is not 0."""

    def __init__(self):
        super().__init__()
        self.verbose = 1
        self._bar = None
        self._in_fit = False

    def set_params(self, params):
        super().set_params(params)
        self.verbose = params.get("verbose", 1)

    def _live(self) -> bool:
        return self.verbose == 1 and sys.stdout.isatty()

    def _start(self, desc: str, total) -> None:
        self._start_time = time.perf_counter()
        self._seen = 0
        self._total = total
        self._desc = desc
        if self.verbose and self._live():
            self._bar = tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True, file=sys.stdout)

    def _update(self, logs) -> None:
        self._seen += 1
        if self._bar is not None:
            self._bar.update(1)
            if logs:
                self._bar.set_postfix({k: _format_value(v) for k, v in logs.items()}, refresh=False)

    def _finish(self, logs) -> None:
        if self._bar is not None:
            self._bar.set_postfix({k: _format_value(v) for k, v in (logs or {}).items()})
            self._bar.close()
            self._bar = None
        elif self.verbose:
            seconds = time.perf_counter() - self._start_time
            print(f"{self._desc} - {self._seen}/{self._total or self._seen} - {seconds:.1f}s{format_logs(logs)}",
                  flush=True)

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def on_train_end(self, logs=None):
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._start(f"Epoch {epoch + 1}/{self.params.get('epochs')}", self.params.get("steps"))

    def on_train_batch_end(self, batch, logs=None):
        self._update(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finish(logs)

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._start("evaluate", self.params.get("steps"))

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit:
            self._update(logs)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs=None):
        self._start("predict", self.params.get("steps"))

    def on_predict_batch_end(self, batch, logs=None):
        self._update(None)

    def on_predict_end(self, logs=None):
        self._finish(None)


class CSVLogger(Callback):
    """``CSVLogger(filename, separator=",", append=False)``: one row per epoch, Keras' layout: an ``epoch`` column
    (0-based), then the first epoch's log names sorted (with a ``val_`` twin of each if there is no ``val_`` name
    yet), ``NA`` where a value is missing; ``append`` keeps an existing file (a header only if it was empty).

    Args:
        filename: the CSV file's path.
        separator: str, default ``","``.
        append: bool, default False.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character; got {separator!r}")
        self.sep = separator
        self.append = validation.boolean("CSVLogger", "append", append)
        self.keys = None
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, encoding="utf-8") as f:
                header = not f.readline()
        self._header = header
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys, delimiter=self.sep)
            if self._header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None and not self._file.closed:
            self._file.close()
        self._writer = None


class TerminateOnNaN(Callback):
    """``TerminateOnNaN(raise_error=False)``: after a batch whose loss is NaN or infinite, stop training (after that
    batch; ``on_train_end`` still runs), or with ``raise_error`` raise a RuntimeError at once.

    Args:
        raise_error: bool, default False.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = validation.boolean("TerminateOnNaN", "raise_error", raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. Terminating "
                                   f"training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
