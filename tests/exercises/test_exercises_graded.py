"""The exercises' graders can pass and can fail: every check passes on the reference solutions
(tests/exercise_solutions/) and fails on the students' stubs (exercises/), and a wrong answer is reported by
element and by how much."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"
SOLUTIONS = ROOT / "tests" / "exercise_solutions"
TASKS = sorted(p.stem for p in EXERCISES.glob("task*.py"))


def _grade(solutions: Path | None) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_EXERCISES_SOLUTIONS"}
    if solutions is not None:
        env["TINYGRAD_EXERCISES_SOLUTIONS"] = str(solutions)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "pytest", str(EXERCISES), "-q", "-rN", "-p", "no:xdist",
                           "-p", "no:hypothesispytest"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?)", summary)}
    return proc.returncode, counts, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_every_task_has_a_stub_a_test_and_a_solution():
    assert len(TASKS) == 9, TASKS
    for task in TASKS:
        assert (EXERCISES / f"test_{task}.py").is_file(), f"no test for {task}"
        assert (SOLUTIONS / f"{task}.py").is_file(), f"no reference solution for {task}"
        assert "NotImplementedError" in (EXERCISES / f"{task}.py").read_text(), f"{task}: the stub must raise"


def test_reference_solutions_pass_every_check():
    code, counts, out = _grade(SOLUTIONS)
    assert code == 0 and counts.get("passed", 0) >= 40 and "failed" not in counts, out


def test_stubs_fail_every_check():
    code, counts, out = _grade(None)
    failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
    assert code == 1 and "passed" not in counts and failed >= 40, out
    assert "NotImplementedError" in out


def test_a_wrong_answer_names_the_element_and_the_error():
    sys.path.insert(0, str(EXERCISES))
    try:
        from grading import assert_close
    finally:
        sys.path.remove(str(EXERCISES))
    want = np.arange(12.0).reshape(3, 4)
    got = want.copy()
    got[1, 2] += 0.5
    with pytest.raises(pytest.fail.Exception, match=r"dx: 1 of 12 elements wrong; first at index \(1, 2\): got 6.5, "
                                                    r"expected 6 \(off by 0.5"):
        assert_close("dx", got, want)
    with pytest.raises(pytest.fail.Exception, match=r"dx: shape \(4, 3\), expected \(3, 4\)"):
        assert_close("dx", want.T, want)
    with pytest.raises(pytest.fail.Exception, match="returned None"):
        assert_close("dx", None, want)
    assert_close("dx", want + 1e-12, want)
