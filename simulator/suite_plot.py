"""The suite's chart (`triskel simulate --suite FILE --plot DIR`): goodput per workload,
one bar per policy, on a log axis so 0.5× and 2× sit equally far from 1×.

A bar that is only a bound (the search passed its ceiling, or missed its lowest probe)
is hatched. matplotlib comes with the `plot` extra and is drawn on the Agg canvas
without pyplot, as in `plots.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from triskel.simulator.suite_table import Columns, Kind, WorkloadRow

_DPI = 120


def plot_suite_goodput(rows: Sequence[WorkloadRow], columns: Columns, path: Path) -> Path:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("plots need matplotlib: pip install 'triskel[plot]'") from error
    policies = columns.policies
    width = 0.8 / len(policies)
    figure = Figure(figsize=(max(6.4, 1.6 * len(rows)), 4.4), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for n, policy in enumerate(policies):
        goodputs = [row.goodputs[policy] for row in rows]
        bars = axes.bar(
            [x + (n - (len(policies) - 1) / 2) * width for x in range(len(rows))],
            [g.value for g in goodputs],
            width,
            label=policy,
            edgecolor="black" if policy == columns.subject else None,
        )
        for bar, goodput in zip(bars, goodputs, strict=True):
            if goodput.kind is not Kind.EXACT:
                bar.set_hatch("//")
    axes.set_yscale("log", base=2)
    axes.axhline(1.0, linestyle="--", color="grey", linewidth=0.8)
    axes.set_xticks(range(len(rows)), [row.workload for row in rows], rotation=15)
    axes.set_ylabel("goodput (× the workload's rate)")
    axes.legend(fontsize="small", ncol=min(4, len(policies)))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
