"""Two local processes of one JAX job (``jax_ref.launch``, gloo collectives on 127.0.0.1): data-parallel
training equals one process, each process loads only its half of every batch, one process writes the weights;
a process that dies stops the job with a clear error instead of a hang."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import jax_ref
from jax_ref import launch
from jax_ref.train import batch_schedule

HERE = Path(__file__).resolve().parent
WORKER = HERE / "multiprocess_worker.py"
ROOT = HERE.parents[1]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_two_processes_train_as_one(tmp_path):
    launch.launch([WORKER, tmp_path, "train"], processes=2, timeout=120, env=_env(), log_dir=tmp_path / "logs")
    runs = [json.loads((tmp_path / f"process_{i}.json").read_text()) for i in range(2)]
    assert [(r["processes"], r["local_devices"], r["devices"]) for r in runs] == [(2, 1, 2)] * 2
    for r in runs:
        assert r["refused"] == ("jax_ref.train: shard=True splits each batch over 2 devices (2 processes x 1 local "
                                "devices); batch_size=63 must be a multiple of 2"), r["refused"]
    ref, weights = np.load(tmp_path / "reference.npz"), np.load(tmp_path / "weights.npz")
    for r in runs:  # every process sees the global loss, equal to one process'
        np.testing.assert_allclose(r["losses"], ref["losses"], rtol=1e-5)
    assert ref["losses"][-1] < ref["losses"][0]
    assert len(weights.files) == 4
    for name in weights.files:
        np.testing.assert_allclose(weights[name], ref[name], rtol=1e-5, atol=1e-6)
    # each process loaded exactly its half of every batch: process 0 the first 32 rows, process 1 the last 32
    n, batch, steps, seed = runs[0]["schedule"]
    half = batch // 2
    for p, r in enumerate(runs):
        assert r["loaded"] == [int(i) for b in batch_schedule(n, batch, steps, seed=seed)
                               for i in b[p * half:(p + 1) * half]]
    log0, log1 = ((tmp_path / "logs" / f"process_{i}.log").read_text() for i in range(2))
    assert "jax_ref.train (2 devices)" in log0 and "jax_ref.train" not in log1  # one progress bar


@pytest.mark.skipif(os.environ.get("TINYGRAD_LONG_TESTS") != "1", reason="long profile: TINYGRAD_LONG_TESTS=1")
def test_attribution_over_two_processes_of_two_devices_equals_one_process(tmp_path):
    launch.launch([WORKER, tmp_path, "attribution"], processes=2, devices_per_process=2, timeout=300, env=_env(),
                  log_dir=tmp_path / "logs")
    single = {**_env(), "JAX_PLATFORMS": "cpu", "JAX_NUM_PROCESSES": "1", "JAX_PROCESS_ID": "0"}
    (tmp_path / "one").mkdir()
    launch.launch([WORKER, tmp_path / "one", "attribution"], processes=1, timeout=300, env=single)
    ref = np.load(tmp_path / "one" / "maps_0.npz")
    assert int(ref["devices"]) == 1
    for p in range(2):  # every process holds the whole maps, equal to one process'
        maps = np.load(tmp_path / f"maps_{p}.npz")
        assert int(maps["devices"]) == 4
        assert len(ref.files) == 5
        for name in set(ref.files) - {"devices"}:
            np.testing.assert_allclose(maps[name], ref[name], rtol=1e-5, atol=1e-6 * np.abs(ref[name]).max())


def test_a_process_that_dies_stops_the_job_with_a_clear_error(tmp_path):
    with pytest.raises(launch.LaunchError, match=r"process 1 of 2 exited with code 3 .*stopped the other"):
        launch.launch([WORKER, tmp_path, "die"], processes=2, timeout=120, env=_env(), log_dir=tmp_path, grace=2)
    assert not (tmp_path / "process_0_passed_the_barrier").exists()  # process 0 was stopped while it waited


def test_launch_and_initialize_errors(monkeypatch):
    with pytest.raises(ValueError, match="processes must be a positive int; got 0"):
        launch.launch(["x.py"], processes=0)
    with pytest.raises(ValueError, match="argv must name the script"):
        launch.launch([])
    with pytest.raises(launch.LaunchError, match=r"timeout=0.5 s passed with processes \[0\] of 1"):
        launch.launch(["-c", "import time; time.sleep(30)"], processes=1, timeout=0.5, grace=1)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.delenv("JAX_PROCESS_ID", raising=False)
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES is set but JAX_PROCESS_ID is not"):
        launch.initialize()
    monkeypatch.setenv("JAX_NUM_PROCESSES", "1")
    monkeypatch.setenv("JAX_PROCESS_ID", "0")
    assert launch.initialize() is False  # one process: nothing to join


def test_the_command_line_reports_a_failure(tmp_path, capsys):
    script = tmp_path / "fail.py"
    script.write_text("import os\nos._exit(int(os.environ['JAX_PROCESS_ID']) * 5)\n")
    assert launch.main(["--processes", "2", "--timeout", "60", str(script), "--an-argument"]) == 1
    assert "process 1 of 2 exited with code 5" in capsys.readouterr().err


def test_train_refuses_data_given_twice_or_a_loader_without_examples():
    from tinygrad_cnn import nn
    nn.set_random_seed(0)
    twin = jax_ref.from_engine(nn.Sequential([nn.Input(shape=(4,)), nn.Dense(3)]))
    x, y = np.zeros((8, 4), np.float32), np.zeros(8, np.int64)
    fetch = lambda idx: (x[idx], y[idx])  # noqa: E731
    with pytest.raises(ValueError, match="as x and y, or as loader and examples .*y=None"):
        jax_ref.train(twin, x, verbose=False)
    with pytest.raises(ValueError, match="loader needs examples.*got examples=None"):
        jax_ref.train(twin, loader=fetch, verbose=False)
    with pytest.raises(ValueError, match="loader must be a function .* with x and y given"):
        jax_ref.train(twin, x, y, loader=fetch, examples=8, verbose=False)
    with pytest.raises(ValueError, match="batch_size=32 is larger than the 8 examples"):
        jax_ref.train(twin, loader=fetch, examples=8, verbose=False)
