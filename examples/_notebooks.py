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


def execute(nb, timeout: int = 600, quick: bool = False):
    """Run every cell of ``nb`` in a fresh kernel whose working folder is ``examples/`` (so ``_common`` imports);
    ``quick`` sets the examples' quick mode through the environment. Returns ``nb`` with its outputs; a failing
    cell raises ``nbclient.exceptions.CellExecutionError`` with the traceback."""
    from nbclient import NotebookClient

    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    if quick:
        env["TINYGRAD_EXAMPLES_QUICK"] = "1"
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(EXAMPLES_DIR)}})
    client.execute(env=env)
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
