"""`triskel simulate --autoscale POLICIES`: scaling policies compared on one trace."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError

from triskel.cli.command_support import fail

if TYPE_CHECKING:
    from triskel.simulator.metrics import SloTargets


def simulate_autoscale(
    *,
    trace_path: str,
    limit: int | None,
    burst: list[str] | None,
    autoscale: str,
    routing_specs: list[str],
    unified: int,
    prefill: int,
    decode: int,
    profile: str,
    kv_capacity_tokens: int | None,
    load_report_ms: float,
    slo: SloTargets,
    min_replicas: int,
    max_replicas: int,
    seed: int,
    jobs: int,
    json_path: Path | None,
    plot: Path | None,
    search_static: bool,
    ep: int,
    rate_scale: float,
    role_switch_s: float | None,
) -> None:
    """Replay the trace (with any `--burst`) under each scaling policy; exit 2 on bad flags."""
    from triskel.simulator.autoscale_command import AutoscaleOptions, run_autoscale
    from triskel.simulator.cluster import ClusterShape
    from triskel.simulator.command import SimulateError, load_policy
    from triskel.traces import TraceError, load_trace
    from triskel.traces.burst import with_bursts

    if len(routing_specs) != 1:
        raise fail(
            "--autoscale: give one routing --policy (the policies compared are scaling ones)"
        )
    given = unified > 0 or prefill > 0 or decode > 0
    try:
        loaded = load_trace(trace_path, limit).scaled(rate_scale)
        windows = [_burst_window(text) for text in burst or ()]
        if windows:  # in the replayed (rate-scaled) time
            try:
                loaded = with_bursts(loaded, windows, seed=seed)
            except ValueError as error:  # "burst: …", said of the flag
                raise ValueError(f"--{error}") from None
        counts = (
            {"num_unified": unified, "num_prefill": prefill, "num_decode": decode}
            if given
            else {"num_prefill": 1, "num_decode": 1}
        )
        shape = ClusterShape(
            profile=profile,
            kv_capacity_tokens=kv_capacity_tokens,
            load_report_interval_ms=load_report_ms,
            **counts,
        )
        options = AutoscaleOptions(
            trace=loaded,
            shape=shape,
            slo=slo,
            policies=[name.strip() for name in autoscale.split(",") if name.strip()],
            routing=load_policy(routing_specs[0]).routing,
            start=shape if given else None,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            seed=seed,
            jobs=jobs,
            json_path=json_path,
            plot_dir=plot,
            search_static=search_static,
            ep=ep,
            burst_windows=tuple(sorted((start_s, end_s) for start_s, end_s, _ in windows)),
            role_switch_s=role_switch_s,
        )
        run_autoscale(options, typer.echo)
    except (TraceError, SimulateError) as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        raise fail(f"cluster: {error.errors()[0]['msg']}") from None
    except ValueError as error:  # a policy that cannot run this graph, a bad burst
        raise fail(str(error)) from None


def _burst_window(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        start, end, factor = (float(part) for part in parts)
    except ValueError:
        raise ValueError(f"--burst: expected START,END,FACTOR, got {text!r}") from None
    if not all(math.isfinite(value) for value in (start, end, factor)):
        raise ValueError(f"--burst: START, END and FACTOR must be finite numbers, got {text!r}")
    return start, end, factor
