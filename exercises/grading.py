"""What the exercise tests share: which implementation to grade, and comparisons that say what is wrong.

``load("task3_conv2d_im2col")`` imports your file ``exercises/task3_conv2d_im2col.py``. With the environment
variable ``TINYGRAD_EXERCISES_SOLUTIONS`` set to a folder, the file of the same name in that folder is graded
instead (the project's CI points it at the reference solutions, to prove every test can pass).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

SOLUTIONS_ENV = "TINYGRAD_EXERCISES_SOLUTIONS"
HERE = Path(__file__).resolve().parent


def load(name: str):
    """The module ``name`` from ``exercises/`` (or from ``$TINYGRAD_EXERCISES_SOLUTIONS``)."""
    folder = Path(os.environ.get(SOLUTIONS_ENV) or HERE)
    path = folder / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no {name}.py in {folder}")
    spec = importlib.util.spec_from_file_location(f"graded_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_close(what: str, got, expected, rtol: float = 1e-7, atol: float = 1e-10) -> None:
    """Fail with a message naming ``what``, the first wrong element, its value, the expected value and by how
    much it is off, unless ``|got - expected| <= atol + rtol * |expected|`` everywhere."""
    if got is None:
        pytest.fail(f"{what}: your function returned None (did you forget a return?)", pytrace=False)
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        pytest.fail(f"{what}: shape {got.shape}, expected {expected.shape}", pytrace=False)
    if not np.all(np.isfinite(got)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0])
        pytest.fail(f"{what}: element {idx} is {got[idx]} (not finite); expected {expected[idx]:.6g}", pytrace=False)
    off = np.abs(got - expected)
    bad = off > atol + rtol * np.abs(expected)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        worst = np.unravel_index(int(np.argmax(np.where(bad, off, -1.0))), got.shape)
        worst = tuple(int(i) for i in worst)
        where = "" if got.ndim == 0 else f" at index {first}"
        also = "" if worst == first else (f"; worst at {worst}: {got[worst]:.6g} instead of {expected[worst]:.6g}"
                                          f" (off by {off[worst]:.3g})")
        pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} elements wrong; first{where}: got {got[first]:.6g}, "
                    f"expected {expected[first]:.6g} (off by {off[first]:.3g}, tolerance "
                    f"{atol + rtol * abs(expected[first]):.2g}){also}", pytrace=False)
