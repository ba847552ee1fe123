"""benchmarks/run_all.py: one quick run on the smallest workload gives the table with every column and finite
ratios; a framework that cannot be imported is skipped with a note, not a failure; the harness pieces (the
competing process, the thread environment, the GEMM floor of a Conv1D model) do what they say."""

from __future__ import annotations

import json
import math
import os
import sys
import time

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import _harness  # noqa: E402
import _report  # noqa: E402
import run_all  # noqa: E402


def _cells(markdown: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    lines = markdown.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return [c.strip() for c in lines[i].strip("|").split("|")], rows


def test_quick_run_of_one_workload(tmp_path):
    report = run_all.main(["--quick", "--workloads", "mnist1d", "--threads", "default", "--no-load", "--no-memory",
                           "--out", str(tmp_path)])
    text = (tmp_path / "results.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["workload"] == "mnist1d"
    assert (tmp_path / "scaling.png").stat().st_size > 0  # two batch sizes: a scaling panel
    header, rows = _cells(text, "| workload |")
    assert header == _report.COLUMNS
    assert [r[1] for r in rows] == ["batch 8", "batch 16"]  # the scaling batches of --quick
    (run,) = report["runs"]
    assert "error" not in run, run
    skipped = {fw for fw in ("torch", "jax") if any(fw in note for note in report["notes"])}
    for row, result in zip(rows, run["results"].values(), strict=True):
        cells = dict(zip(header, row, strict=True))
        assert set(result["ms"]) == {"engine", "torch", "jax", "floor"} - skipped
        for column, fw in _report.RATIOS.items():
            if fw in skipped:
                assert cells[column] == "-" and cells[f"{_report.LABELS[fw]} ms"] == "-"
                continue
            median, minimum = (float(v.strip("()")) for v in cells[column].split())
            assert math.isfinite(median) and median > 0 and math.isfinite(minimum) and minimum > 0
        assert float(cells["agree"]) < 1e-4  # the same weights and batch: the first losses agree


def test_a_missing_framework_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    keep, notes = run_all.available(["engine", "torch", "floor"])
    assert keep == ["engine", "floor"]
    assert len(notes) == 1 and "torch not importable" in notes[0]
    r = {"ms": {"engine": 2.0, "floor": 1.0}, "min_ms": {"engine": 1.0, "floor": 1.0}}
    assert _report.ratio(r, "torch") is None and _report.ratio(r, "floor") == (2.0, 1.0)


def test_bad_thread_setting_is_refused(capsys):
    with pytest.raises(SystemExit):
        run_all.main(["--threads", "0"])
    assert "'0' is neither 'default' nor a positive int" in capsys.readouterr().err


def test_competing_load_spins_and_is_killed():
    with _harness.competing_load(seconds=30) as proc:
        time.sleep(0.3)
        with open(f"/proc/{proc.pid}/stat") as f:
            user_ticks = int(f.read().rsplit(")", 1)[1].split()[11])
        assert proc.poll() is None
    assert user_ticks > 0  # it was burning CPU, not sleeping
    assert proc.poll() is not None  # and it is gone once the block is left


def test_threads_env():
    one = _harness.threads_env(1, {"XLA_FLAGS": "--xla_dump_to=/tmp/x"})
    assert one["OMP_NUM_THREADS"] == one["OPENBLAS_NUM_THREADS"] == one["MKL_NUM_THREADS"] == "1"
    assert one["XLA_FLAGS"].startswith("--xla_dump_to=/tmp/x ") and "--xla_cpu_multi_thread_eigen=false" in one[
        "XLA_FLAGS"]
    two = _harness.threads_env(2, {})
    assert two["OPENBLAS_NUM_THREADS"] == "2" and "XLA_FLAGS" not in two


def test_floor_gemms_of_the_conv1d_model():
    import mnist1d_cnn
    from bench_train_step import step_gemms

    gemms = step_gemms(mnist1d_cnn.engine_model(), 4)
    names = [g[0] for g in gemms]
    conv1, conv2 = names[0].split()[0], names[2].split()[0]
    # 42 -> 19 positions, K = 5 x 1; the first layer reads the model input: no input-gradient GEMM
    assert gemms[0][1:] == ((4 * 19, 5), (5, 25), False)
    assert f"{conv1} input gradient" not in names
    # 19 -> 10 positions, K = 3 x 25, with its input gradient
    assert gemms[2][1:] == ((4 * 10, 75), (75, 25), False)
    assert (f"{conv2} input gradient", (40, 25), (25, 75), False) in gemms
    assert len(gemms) == 4 * 3 - 1 and len(step_gemms(mnist1d_cnn.engine_model(), 4, forward_only=True)) == 4


def test_every_framework_starts_from_the_same_weights():
    import bench_train_step
    import numpy as np
    from _workloads import _same_weights

    # the negative control: the reference CNN's maker draws its kernels from the initializers' global state
    fresh = [bench_train_step.engine_model().get_weights() for _ in range(2)]
    assert not all(np.array_equal(a, b) for a, b in zip(*fresh, strict=True))
    first, second = (_same_weights(bench_train_step.engine_model).get_weights() for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
