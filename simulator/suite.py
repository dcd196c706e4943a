"""`triskel simulate --suite FILE`: every workload × every policy, one table.

suite file ──► per workload: load the trace, search each policy's goodput
               (`run_simulate`: same seed for all, --jobs policies at once;
                from the workload's own rate, up while policies pass, down while
                they miss)
           ──► one Markdown table (stdout): goodput per policy, subject ÷ best peer,
               subject ÷ baseline, geometric means  [--json FILE] [--plot DIR]

The table's maths live in `suite_table` (pure), the file's checks in `suite_config`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triskel.simulator.command import Echo, SimulateOptions, run_simulate
from triskel.simulator.prefix_bound import prefix_hit_bound
from triskel.simulator.report import PolicyRow, to_json
from triskel.simulator.suite_config import Suite, Workload
from triskel.simulator.suite_table import (
    Columns,
    WorkloadRow,
    goodput_of,
    suite_table,
    summary_json,
)
from triskel.traces import load_trace
from triskel.traces.types import Trace


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    suite: Suite
    jobs: int = 1
    limit: int | None = None
    """Caps every workload's requests (a quick run); None keeps the file's limits."""
    seed: int | None = None
    """Overrides the file's seed."""
    json_path: Path | None = None
    plot_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class WorkloadOutcome:
    workload: Workload
    num_requests: int
    duration_s: float
    prefix_hit_bound: float | None
    rows: list[PolicyRow]
    wall_s: float

    def table_row(self) -> WorkloadRow:
        goodputs = {}
        for name, _, search in self.rows:
            assert search is not None  # the suite always searches
            goodputs[name] = goodput_of(search)
        return WorkloadRow(self.workload.name, self.num_requests, goodputs)


def run_suite(options: SuiteOptions, echo: Echo) -> list[WorkloadRow]:
    """Runs the suite, prints per-workload tables and the suite's table, writes outputs."""
    suite = options.suite
    started = time.perf_counter()
    outcomes = [_run_workload(workload, options, echo) for workload in suite.workloads]
    wall_s = time.perf_counter() - started
    columns = Columns(
        subject=suite.subject.name,
        baseline=suite.baseline.name,
        peers=tuple(p.name for p in suite.peers),
    )
    rows = [outcome.table_row() for outcome in outcomes]
    echo("")
    echo(suite_table(rows, columns))
    size = f"{len(rows)} workloads × {len(columns.policies)} policies"
    echo(f"suite {suite.path}: {size} in {wall_s:.0f} s")
    if options.json_path is not None:
        document = _document(options, outcomes, rows, columns, wall_s)
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(document, indent=2) + "\n")
        echo(f"wrote {options.json_path}")
    if options.plot_dir is not None:
        from triskel.simulator.suite_plot import plot_suite_goodput  # matplotlib when asked

        echo(f"wrote {plot_suite_goodput(rows, columns, options.plot_dir / 'suite_goodput.png')}")
    return rows


def _run_workload(workload: Workload, options: SuiteOptions, echo: Echo) -> WorkloadOutcome:
    started = time.perf_counter()
    limit = _limit(workload.limit, options.limit)
    trace = load_trace(workload.trace, limit)
    echo("")
    echo(f"== workload {workload.name} ==")
    search = workload.search
    simulate_options = SimulateOptions(
        trace=trace,
        shape=workload.shape,
        slo=workload.slo,
        policies=options.suite.policies,
        seed=options.suite.seed if options.seed is None else options.seed,
        jobs=options.jobs,
        search_goodput=True,
        goodput_start=search.start,
        goodput_low=search.low,
        goodput_high=search.high,
        goodput_tolerance=search.tolerance,
    )
    rows = run_simulate(simulate_options, echo)
    wall_s = time.perf_counter() - started
    echo(f"workload {workload.name}: {wall_s:.0f} s")
    return WorkloadOutcome(
        workload=workload,
        num_requests=trace.num_requests,
        duration_s=trace.duration_s,
        prefix_hit_bound=_bound(trace),
        rows=rows,
        wall_s=wall_s,
    )


def _limit(from_file: int | None, from_flag: int | None) -> int | None:
    limits = [n for n in (from_file, from_flag) if n is not None]
    return min(limits) if limits else None


def _bound(trace: Trace) -> float | None:
    if not any(r.prefix_block_ids for r in trace.requests):
        return None
    return prefix_hit_bound(trace.requests).hit_ratio


def _document(
    options: SuiteOptions,
    outcomes: Sequence[WorkloadOutcome],
    rows: Sequence[WorkloadRow],
    columns: Columns,
    wall_s: float,
) -> dict[str, Any]:
    return {
        "suite": str(options.suite.path),
        "seed": options.suite.seed if options.seed is None else options.seed,
        "finishedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "loadAverage": list(os.getloadavg()),
            "python": platform.python_version(),
        },
        "jobs": options.jobs,
        "wallS": wall_s,
        "table": summary_json(rows, columns),
        "workloads": [
            {
                "workload": outcome.workload.name,
                "trace": outcome.workload.trace,
                "numRequests": outcome.num_requests,
                "durationS": outcome.duration_s,
                "cluster": outcome.workload.shape.model_dump(),
                "slo": asdict(outcome.workload.slo),
                "search": outcome.workload.search.model_dump(by_alias=True),
                "wallS": outcome.wall_s,
                **to_json(outcome.rows, outcome.prefix_hit_bound),
            }
            for outcome in outcomes
        ],
    }
