"""Every example runs once, as the notebook generated from its script, in quick mode: every cell executes, at
least one non-empty PNG is written and its path printed. They share one kernel (a namespace reset before each),
which halves their CPU time. The scripts themselves are the notebooks' only source
(jupytext percent format), so running the notebook runs the script's code; the command-line path of the shared
plumbing (``--quick``, ``--out``) is tested on its own below, without running an example twice."""

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notebooks = _load("_notebooks")
SCRIPTS = notebooks.example_scripts()


def test_examples_found():
    assert len(SCRIPTS) >= 10, f"expected the numbered examples and the tour in {EXAMPLES}, found {SCRIPTS}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_is_a_notebook_with_a_story(script):
    text = script.read_text()
    assert text.startswith("# %% [markdown]"), f"{script.name} must open with a markdown cell (its story)"
    nb = notebooks.to_notebook(script)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds.count("markdown") >= 3 and kinds.count("code") >= 3, f"{script.name}: cells {kinds}"
    assert nb.cells[0].source.startswith("#"), f"{script.name}: the first cell should be a markdown heading"
    assert "__file__" not in text and "__doc__" not in text, f"{script.name}: a notebook has no __file__/__doc__"


@pytest.fixture(scope="module")
def kernel():
    """One kernel for all the examples, each run after a namespace reset: a kernel start and the imports (about
    3 s of CPU per notebook) are paid once, about half of what a fresh kernel per example costs."""
    km = notebooks.start_kernel(quick=True)
    yield km
    km.shutdown_kernel(now=True)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_notebook_runs_quick(script, tmp_path, monkeypatch, kernel):
    from nbclient.exceptions import CellExecutionError

    out = tmp_path / "out"
    monkeypatch.setenv("TINYGRAD_EXAMPLES_OUT", str(out))
    nb = notebooks.to_notebook(script)
    try:
        notebooks.execute(nb, quick=True, km=kernel)
    except CellExecutionError as err:
        pytest.fail(f"{script.name} failed as a notebook:\n{str(err)[-4000:]}")
    printed = notebooks.printed_text(nb)
    assert "quick mode" in printed, f"{script.name} did not run in quick mode:\n{printed[-2000:]}"
    pngs = sorted(out.rglob("*.png"))
    assert pngs, f"{script.name} wrote no PNG under {out}:\n{printed[-2000:]}"
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, f"{png} is empty or not a PNG"
        assert str(png) in printed, f"{script.name} did not print {png}"
    shown = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {}))
    assert shown == len(pngs), f"{script.name}: {len(pngs)} figures written but {shown} shown in the notebook"


def test_shared_kernel_starts_each_notebook_with_an_empty_namespace(kernel):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    def notebook(source):
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])

    notebooks.execute(notebook("leaked = 1"), km=kernel)
    with pytest.raises(CellExecutionError, match="NameError"):  # a name from an earlier notebook is not there
        notebooks.execute(notebook("leaked"), km=kernel)


def test_command_line_flags_and_environment(tmp_path, monkeypatch):
    sys.path.insert(0, str(EXAMPLES))
    try:
        common = _load("_common")
    finally:
        sys.path.remove(str(EXAMPLES))
    monkeypatch.delenv(common.QUICK_ENV, raising=False)
    monkeypatch.delenv(common.OUT_ENV, raising=False)
    run = common.Run("/somewhere/07_gradient_check.py", "d", argv=["--quick", "--out", str(tmp_path / "a")])
    assert (run.name, run.quick, run.out) == ("07_gradient_check", True, tmp_path / "a")
    run = common.Run("07_gradient_check", "d", argv=[])
    assert (run.quick, run.out) == (False, Path("out") / "07_gradient_check")
    monkeypatch.setenv(common.QUICK_ENV, "1")
    monkeypatch.setenv(common.OUT_ENV, str(tmp_path))
    run = common.Run("07_gradient_check", "d", argv=[])
    assert (run.quick, run.out) == (True, tmp_path / "07_gradient_check")
    with pytest.raises(SystemExit):
        common.Run("07_gradient_check", "d", argv=["--bogus"])
