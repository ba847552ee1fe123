"""Shared plumbing of the examples: command-line flags, saving (and, in a notebook, showing) figures, sections.

Every example is a jupytext percent-format script: ``python examples/NN_name.py`` runs it, and Jupyter opens the
same file as a notebook (``# %% [markdown]`` cells carry the story). As a script it accepts ``--out DIR``
(default ``./out/<name>/``) and ``--quick`` (smaller data, fewer steps: what the test suite runs). A notebook has
no command line, so the same two settings also come from the environment: ``TINYGRAD_EXAMPLES_QUICK=1`` and
``TINYGRAD_EXAMPLES_OUT=DIR`` (figures then go to ``DIR/<name>/``); the flags win when both are given. The quick
mode also asks XLA for quick compiles (``quick_xla_compiles``), which is most of a smoke run's JAX time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

QUICK_ENV = "TINYGRAD_EXAMPLES_QUICK"
OUT_ENV = "TINYGRAD_EXAMPLES_OUT"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (whose command line is the kernel's, not the example's)."""
    return "ipykernel" in sys.modules


class Run:
    """Parsed flags plus helpers: ``run.out`` (a Path), ``run.quick``, ``run.save(fig, name)``.

    ``name`` is the example's name (``"01_chain_rule"``; a path works too, its stem is used). ``argv`` defaults
    to the script's command line, and to no flags in a notebook. The figures go to ``--out``, else
    ``$TINYGRAD_EXAMPLES_OUT/<name>``, else ``default_out``, else ``out/<name>``.
    """

    def __init__(self, name: str, description: str, argv=None, default_out=None):
        name = Path(name).stem
        env_out = os.environ.get(OUT_ENV)  # the flag wins over the environment, which wins over default_out
        default_out = Path(env_out) / name if env_out else Path(default_out or Path("out") / name)
        parser = argparse.ArgumentParser(prog=f"{name}.py", description=description)
        parser.add_argument("--out", type=Path, default=default_out,
                            help=f"folder for the figures (default: ./{default_out}/)")
        parser.add_argument("--quick", action="store_true", help="smaller data and fewer steps (a few seconds)")
        if argv is None and in_notebook():
            argv = []
        args = parser.parse_args(argv)
        self.name, self.out = name, args.out
        self.quick = args.quick or os.environ.get(QUICK_ENV, "").lower() in ("1", "true", "yes")
        if self.quick:  # a smoke run compiles many small JAX functions once each: compile them quickly
            quick_xla_compiles()
        self.written: list[Path] = []
        self._start = time.perf_counter()

    def save(self, fig, filename: str) -> Path:
        """Save ``fig`` as ``<out>/<filename>``, print the path and, in a notebook, show the saved picture.

        Figures are saved at the projector-readable default resolution (``tinygrad_cnn.viz.save_figure``), except
        in quick mode, a smoke run, which saves at 100 dpi (less than half the pixels to encode)."""
        from tinygrad_cnn.viz import save_figure

        path = save_figure(fig, self.out / filename, **({"dpi": 100} if self.quick else {}))
        self.written.append(path)
        print(f"  wrote {path}")
        if in_notebook():
            from IPython.display import Image, display

            display(Image(filename=str(path)))
        return path

    def done(self) -> None:
        """Print what was written and how long it took."""
        print(f"\n{self.name}: {len(self.written)} figure(s) in {self.out}/ "
              f"({time.perf_counter() - self._start:.1f} s{', quick mode' if self.quick else ''})")


def quick_xla_compiles() -> None:
    """Ask XLA for quick, lightly optimised compiles (``--xla_backend_optimization_level=0``).

    For scripts that compile many small JAX functions and run each on little data, compiling dominates the
    run time; this roughly halves it. XLA reads the flag when JAX first computes something, so call this
    before any JAX computation. A user's own ``XLA_FLAGS`` are kept.
    """
    flag = "--xla_backend_optimization_level=0"
    if flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def section(title: str) -> None:
    """Print a section heading."""
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)))


def table(rows, header) -> None:
    """Print rows as an aligned plain-text table."""
    cells = [[str(c) for c in header]] + [[c if isinstance(c, str) else f"{c:.6g}" if isinstance(c, float)
                                           else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))


def flush() -> None:
    sys.stdout.flush()
