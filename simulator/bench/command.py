"""`triskel bench`: replay a trace against a running router; print and save the report.

trace ──► the model (--model, or the router's only one)
      ──► open-loop replay, progress bar on stderr ──► client-side RunResult
      ──► the Markdown table `triskel simulate` prints (stdout), [--json FILE]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triskel.simulator.bench.plan import plan_requests
from triskel.simulator.bench.progress import progress_bar
from triskel.simulator.bench.run import (
    DEFAULT_TIMEOUT_S,
    BenchRun,
    choose_model,
    open_target,
    replay_trace,
)
from triskel.simulator.bench.target import TargetError, parse_target_url
from triskel.simulator.metrics import RunMetrics, SloTargets, summarize
from triskel.simulator.prefix_bound import prefix_hit_bound
from triskel.simulator.report import comparison_table, to_json
from triskel.traces.types import Trace

Echo = Callable[[str], None]
# Distinct failure reasons printed; the JSON file keeps them all.
_MAX_REASONS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class BenchOptions:
    url: str
    trace: Trace
    slo: SloTargets
    rate_scale: float = 1.0
    model: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Another set of prompts with the same sharing (a router whose caches are warm).
    salt: str = ""
    json_path: Path | None = None
    show_progress: bool = True


async def run_bench(options: BenchOptions, echo: Echo) -> RunMetrics:
    """Replays the trace, prints the table, writes the JSON; TargetError before any send."""
    address = parse_target_url(options.url)
    trace = options.trace
    if trace.num_requests == 0:
        raise TargetError(f"trace {trace.name}: no requests to replay")
    has_prefixes = any(r.prefix_block_ids for r in trace.requests)
    bound = prefix_hit_bound(trace.requests).hit_ratio if has_prefixes else None
    echo(
        f"trace {trace.name}: {trace.num_requests} requests over {trace.duration_s:.0f} s"
        + ("" if bound is None else f", prefix-hit bound {bound:.1%}")
    )
    target = open_target(address)
    try:
        model = await choose_model(target, options.model, options.url)
        requests = plan_requests(trace, options.rate_scale, options.salt)
        echo(f"  replaying against {options.url}, model {model}, rate scale {options.rate_scale:g}")
        with progress_bar(len(requests), "  bench", options.show_progress) as on_done:
            run = await replay_trace(
                target,
                model,
                requests,
                label=options.url,
                rate_scale=options.rate_scale,
                timeout_s=options.timeout_s,
                on_done=on_done,
            )
    finally:
        await target.close()
    metrics = summarize(run.result, options.slo)
    _report_run(run, metrics, echo)
    row = (options.url, metrics, None)
    echo(comparison_table([row], bound))
    if options.json_path is not None:
        document: dict[str, Any] = {
            "trace": trace.name,
            "target": options.url,
            "model": run.model,
            "rateScale": options.rate_scale,
            "failures": dict(run.failures.most_common()),
            **to_json([row], bound),
        }
        options.json_path.write_text(json.dumps(document, indent=2) + "\n")
        echo(f"wrote {options.json_path}")
    return metrics


def _report_run(run: BenchRun, metrics: RunMetrics, echo: Echo) -> None:
    echo(
        f"  replayed in {run.result.wall_s:.1f} s: {metrics.num_finished} finished, "
        f"{metrics.num_failed} failed"
    )
    for reason, count in run.failures.most_common(_MAX_REASONS_SHOWN):
        echo(f"    {count} × {reason}")
    # The client sees neither instance busy times nor KV moves: the table's columns
    # for them read "–" and 0.
    echo("  (load imbalance and KV moved are not visible to a client)")
    echo("")
