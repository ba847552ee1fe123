"""Shared plumbing of the example scripts: command-line flags, saving figures, printing sections.

Every script accepts ``--out DIR`` (default ``./out/<script name>/``) and
``--quick`` (smaller data, fewer steps: what the test suite runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class Run:
    """Parsed flags plus helpers: ``run.out`` (a Path), ``run.quick``, ``run.save(fig, name)``."""

    def __init__(self, script: str, description: str, argv=None, default_out=None):
        name = Path(script).stem
        default_out = Path(default_out) if default_out is not None else Path("out") / name
        parser = argparse.ArgumentParser(prog=Path(script).name, description=description)
        parser.add_argument("--out", type=Path, default=default_out,
                            help=f"folder for the figures (default: ./{default_out}/)")
        parser.add_argument("--quick", action="store_true", help="smaller data and fewer steps (a few seconds)")
        args = parser.parse_args(argv)
        self.name, self.out, self.quick = name, args.out, args.quick
        self.written: list[Path] = []
        self._start = time.perf_counter()

    def save(self, fig, filename: str) -> Path:
        """Save ``fig`` as ``<out>/<filename>`` and print the path."""
        from tinygrad_cnn.viz import save_figure

        path = save_figure(fig, self.out / filename)
        self.written.append(path)
        print(f"  wrote {path}")
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
    import os

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
