"""The examples as Jupyter notebooks, generated from the scripts (the scripts are the only source).

Every example is a jupytext percent-format script: ``# %%`` starts a code cell, ``# %% [markdown]`` a cell of
story. Jupyter with jupytext opens the ``.py`` files as notebooks directly; this writes ``.ipynb`` copies for
tools that want one (they are not committed, so they cannot drift from the scripts):

    python examples/_notebooks.py                  # examples/*.ipynb, next to the scripts
    python examples/_notebooks.py --execute        # ... with their outputs (add --quick for the quick mode)

The test suite (tests/examples/test_examples.py) builds and executes the same notebooks with nbclient.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
KERNEL = "python3"


def example_scripts() -> list[Path]:
    """The example scripts (``NN_name.py`` and ``tour.py``; files starting with ``_`` are plumbing)."""
    return sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))


def to_notebook(script: Path):
    """The notebook of one percent-format script (an ``nbformat.NotebookNode``, no outputs yet)."""
    import jupytext

    nb = jupytext.read(script, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    return nb


def _environment(quick: bool) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    if quick:
        env["TINYGRAD_EXAMPLES_QUICK"] = "1"
    return env


def start_kernel(quick: bool = False):
    """A kernel (a started ``jupyter_client.KernelManager``) that ``execute(nb, km=...)`` runs several notebooks
    in, one after the other: each skips the kernel start and the imports an earlier one already paid for. Its
    working folder is ``examples/``; ``quick`` as in ``execute``. Shut it down with ``km.shutdown_kernel()``."""
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name=KERNEL)
    km.start_kernel(cwd=str(EXAMPLES_DIR), env=_environment(quick))
    return km


def execute(nb, timeout: int = 600, quick: bool = False, km=None):
    """Run every cell of ``nb`` in a fresh kernel whose working folder is ``examples/`` (so ``_common`` imports);
    ``quick`` sets the examples' quick mode through the environment. With ``km`` (``start_kernel``, whose own
    ``quick`` then holds), run it in that kernel instead, after ``%reset -f`` (an empty namespace: a name the
    notebook does not define itself is still an error; imported modules stay loaded) and with the kernel's
    ``TINYGRAD_EXAMPLES_OUT`` set to this process's. Returns ``nb`` with its outputs; a failing cell raises
    ``nbclient.exceptions.CellExecutionError`` with the traceback."""
    import nbformat
    from nbclient import NotebookClient

    if km is None:
        client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL,
                                resources={"metadata": {"path": str(EXAMPLES_DIR)}})
        client.execute(env=_environment(quick))
        return nb
    out = os.environ.get("TINYGRAD_EXAMPLES_OUT")
    environ = "__import__('os').environ"  # no name left behind for the notebook to lean on
    reset = f"%reset -f\n{environ}.pop('TINYGRAD_EXAMPLES_OUT', None)\n" + (
        f"{environ}['TINYGRAD_EXAMPLES_OUT'] = {out!r}" if out else "")
    nb.cells.insert(0, nbformat.v4.new_code_cell(reset))
    try:
        NotebookClient(nb, timeout=timeout, km=km).execute()
    finally:
        del nb.cells[0]
    return nb


def printed_text(nb) -> str:
    """Everything the notebook's cells printed (their stdout streams), in order."""
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream"
                   and out.get("name") == "stdout")


def main(argv=None) -> None:
    import nbformat

    parser = argparse.ArgumentParser(description="Write the examples as .ipynb notebooks next to the scripts.")
    parser.add_argument("--execute", action="store_true", help="run each notebook and keep its outputs")
    parser.add_argument("--quick", action="store_true", help="with --execute: the examples' quick mode")
    args = parser.parse_args(argv)
    for script in example_scripts():
        nb = to_notebook(script)
        if args.execute:
            execute(nb, quick=args.quick)
        path = script.with_suffix(".ipynb")
        nbformat.write(nb, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
