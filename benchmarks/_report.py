"""``run_all.py``'s report: the markdown tables, the JSON and the scaling plot, from the figures it gathered.

Timing cells are ``median (minimum)`` in ms per step; ratio cells are the ratio of the medians with the ratio of
the minima in brackets. A framework that did not run shows ``-``.
"""

from __future__ import annotations

import json
import math
import os

LABELS = {"engine": "engine", "torch": "PyTorch", "jax": "jax.jit", "floor": "GEMM floor"}
COLUMNS = (["workload", "setting", "condition"] + [f"{LABELS[f]} ms" for f in LABELS]
           + ["engine/floor", "engine/PyTorch", "engine/jax", "agree"])
RATIOS = {"engine/floor": "floor", "engine/PyTorch": "torch", "engine/jax": "jax"}


def _ms(r: dict, fw: str) -> str:
    return f"{r['ms'][fw]:.1f} ({r['min_ms'][fw]:.1f})" if fw in r["ms"] else "-"


def ratio(r: dict, fw: str) -> tuple[float, float] | None:
    """engine / ``fw`` of the medians and of the minima, or None when either did not run."""
    if fw not in r["ms"] or "engine" not in r["ms"]:
        return None
    return r["ms"]["engine"] / r["ms"][fw], r["min_ms"]["engine"] / r["min_ms"][fw]


def timing_rows(report: dict) -> list[list[str]]:
    """One row per (workload, setting, condition), in :data:`COLUMNS` order."""
    rows = []
    for run in report["runs"]:
        if "error" in run:
            rows.append([run["workload"], "-", run["condition"]] + ["failed: " + run["error"]]
                        + ["-"] * (len(COLUMNS) - 4))
            continue
        for setting, r in run["results"].items():
            label = f"batch {setting}" if run["kind"] != "gradcheck" else setting
            cells = [_ms(r, fw) for fw in LABELS]
            for fw in RATIOS.values():
                q = ratio(r, fw)
                cells.append("-" if q is None else f"{q[0]:.2f} ({q[1]:.2f})")
            cells.append("-" if r["agreement"] is None else f"{r['agreement']:.0e}")
            rows.append([run["workload"], label, run["condition"]] + cells)
    return rows


def memory_rows(report: dict) -> list[list[str]]:
    """One row per (workload, setting): peak RSS (its rise during the steps) per framework, engine tracemalloc."""
    table: dict = {}
    for m in report["memory"]:
        row = table.setdefault((m["workload"], m["setting"]), {})
        row[m["framework"]] = m
    rows = []
    for (workload, setting), per in table.items():
        cells = []
        for fw in ("engine", "torch", "jax"):
            m = per.get(fw)
            if m is None or "skipped" in m:
                cells.append("-")
            elif "error" in m:
                cells.append("failed")
            else:
                rise = "" if m["step_rise_mb"] is None else f" (+{m['step_rise_mb']:.0f})"
                cells.append(f"{m['peak_rss_mb']:.0f}{rise}")
        traced = per.get("engine", {}).get("tracemalloc_peak_mb")
        cells.append("-" if traced is None else f"{traced:.1f}")
        rows.append([workload, setting] + cells)
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def markdown(report: dict) -> str:
    """The whole report as markdown: the machine, the conditions, the timing table, the memory table, notes."""
    machine = report["machine"]
    v = machine["versions"]
    blas = {}
    for run in report["runs"]:
        blas.setdefault(run["condition"], run.get("machine", {}).get("blas", "?"))
    out = ["# Every workload side by side", ""]
    if report["quick"]:
        out += ["**Quick run** (`--quick`: tiny batches, 2 repeats): a smoke test of the harness, not figures.", ""]
    out += [f"Machine: {machine['cpu']}, {machine['cpus']} CPUs; numpy {v['numpy']}, torch {v['torch']}, "
            f"jax {v['jax']}; Python {machine['python']}; started {report['started']}.",
            f"1-minute load average: {machine['load_1min']:.1f} before, {report['load_1min_after']:.1f} after.", "",
            "Conditions (each workload in a fresh process per condition; frameworks interleaved step by step; "
            "\"under load\": with one CPU-bound process that this script starts beside whatever else runs):"]
    for c in report["conditions"]:
        load = c.get("load_1min", [math.nan, math.nan])
        out.append(f"- **{c['label']}**: BLAS {blas.get(c['label'], '?')}; 1-min load {load[0]:.1f} -> {load[1]:.1f}")
    out += ["", f"Cells: median (minimum) ms of {report['repeats']} steps after warm-up; ratios: of the medians "
            "(of the minima). `agree`: largest difference of another framework's first loss (training) or output "
            "(inference) from the engine's.", "", _table(COLUMNS, timing_rows(report))]
    if report["memory"]:
        out += ["", "Memory, default threads, each framework alone in a fresh process: peak RSS in MB (its rise "
                "during the steps); the engine's tracemalloc peak of one step (its working set, buffers included).",
                "", _table(["workload", "setting", "engine MB", "PyTorch MB", "jax.jit MB", "engine tracemalloc MB"],
                           memory_rows(report))]
    if report["notes"]:
        out += [""] + [f"Note: {n}" for n in report["notes"]]
    return "\n".join(out) + "\n"


def scaling_figure(report: dict):
    """Time per training step against the batch size (default threads, no load), one panel per training
    workload, log-log, with a dashed line of slope 1 through the engine's first point. None if nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = report["conditions"][0]["label"] if report["conditions"] else None
    runs = [r for r in report["runs"] if r["kind"] == "train" and r["condition"] == first and "results" in r
            and len(r["results"]) > 1]
    if not runs:
        return None
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(runs), figsize=(max(4.2 * len(runs), 7.0), 4.8), squeeze=False)
    styles = {"engine": ("C0", "o"), "torch": ("C1", "s"), "jax": ("C2", "^"), "floor": ("C7", "v")}
    for ax, run in zip(axes[0], runs, strict=True):
        batches = sorted(run["results"], key=int)
        xs = [int(b) for b in batches]
        for fw, (color, marker) in styles.items():
            if all(fw in run["results"][b]["ms"] for b in batches):
                ax.plot(xs, [run["results"][b]["ms"][fw] for b in batches], color=color, marker=marker,
                        label=LABELS[fw])
        if "engine" in run["results"][batches[0]]["ms"]:
            t0 = run["results"][batches[0]]["ms"]["engine"]
            ax.plot(xs, [t0 * x / xs[0] for x in xs], "k--", lw=1,
                    label="slope 1 through the engine's first point\n(linear scaling: shown, not claimed)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("batch size (examples)")
        ax.set_ylabel("time per training step (ms)")
        ax.set_title(run["workload"])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), frameon=False)
    load = report["conditions"][0].get("load_1min", [math.nan, math.nan])
    fig.suptitle(f"time per training step against batch size: {first}, no competing process started "
                 f"(machine's 1-min load {load[0]:.1f} -> {load[1]:.1f})")
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


def write(report: dict, out_dir: str) -> str:
    """Write ``results.md``, ``results.json`` and ``scaling.png`` (when there is a batch sweep) into ``out_dir``;
    return the markdown."""
    os.makedirs(out_dir, exist_ok=True)
    text = markdown(report)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    fig = scaling_figure(report)
    if fig is not None:
        import matplotlib.pyplot as plt

        fig.savefig(os.path.join(out_dir, "scaling.png"), dpi=110)
        plt.close(fig)
    return text
