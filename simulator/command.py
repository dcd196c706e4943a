"""`triskel simulate`: load a trace and policies, run each, print and save the comparison.

trace ──► prefix-hit bound (one infinite cache)
  └────► per policy: simulate at the given rate scale ──► metrics
                     [--goodput: search the rate scale where attainment ≥ target]
──► Markdown table (stdout), [--json FILE], [--plot DIR: attainment vs rate, TTFT CDF]
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from triskel.common.routing_api import RoutingSettings, SloSpec
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.goodput import GoodputResult, Probe, find_goodput
from triskel.simulator.metrics import SloTargets, arrival_rate, summarize
from triskel.simulator.prefix_bound import pooled_lru_hit_ratio, prefix_hit_bound
from triskel.simulator.prompts import PromptCache
from triskel.simulator.records import RunResult
from triskel.simulator.report import PolicyRow, comparison_table, to_json
from triskel.simulator.run import probe_attainment, prompt_cache, simulate
from triskel.traces.types import Trace

ROUND_ROBIN = "round-robin"
Echo = Callable[[str], None]


class SimulateError(ValueError):
    """A bad input; the message names the file or option and the field."""


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    routing: RoutingSettings


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    trace: Trace
    shape: ClusterShape
    slo: SloTargets
    policies: Sequence[Policy]
    rate_scale: float = 1.0
    seed: int = 0
    # Policies simulated at once, each in its own process (runs are CPU-bound Python).
    jobs: int = 1
    search_goodput: bool = False
    # The search's first probe (None: `rate_scale`, whose run is made anyway), and the
    # lowest it may go.
    goodput_start: float | None = None
    goodput_low: float = 0.125
    goodput_high: float = 64.0
    goodput_tolerance: float = 0.05
    json_path: Path | None = None
    plot_dir: Path | None = None

    def __post_init__(self) -> None:
        names = [policy.name for policy in self.policies]
        if len(set(names)) != len(names):
            # Results are keyed by name: the second would overwrite the first.
            raise SimulateError(f"--policy: two policies share a name in {names}; rename one")


def load_policy(spec: str) -> Policy:
    """`round-robin`, or a YAML file: a `triskel up` file (its `routing:`) or a bare
    routing section. The policy is named after the file."""
    if spec == ROUND_ROBIN:
        return Policy(ROUND_ROBIN, RoutingSettings())
    path = Path(spec)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SimulateError(f"--policy {spec}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SimulateError(f"--policy {spec}: not valid YAML: {error}") from None
    if isinstance(data, dict) and "routing" in data:
        data = data["routing"]
    if not isinstance(data, dict):
        raise SimulateError(f"--policy {spec}: expected a mapping with plugins and profiles")
    try:
        routing = RoutingSettings.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SimulateError(f"--policy {spec}: routing.{where}: {first['msg']}") from None
    return Policy(path.stem, routing)


def run_simulate(options: SimulateOptions, echo: Echo) -> list[PolicyRow]:
    """Runs every policy on the same trace and seed; prints the table; writes outputs."""
    trace = options.trace
    has_prefixes = any(r.prefix_block_ids for r in trace.requests)
    bound = prefix_hit_bound(trace.requests).hit_ratio if has_prefixes else None
    capacity = options.shape.total_kv_capacity_tokens()
    pooled = pooled_lru_hit_ratio(trace.requests, capacity).hit_ratio if has_prefixes else None
    echo(
        f"trace {trace.name}: {trace.num_requests} requests over {trace.duration_s:.0f} s"
        + ("" if bound is None else f", prefix-hit bound {bound:.1%}")
    )
    if pooled is not None:
        echo(
            f"one LRU cache pooling the cluster's {capacity:,} KV tokens (GPU and host tiers) "
            f"would hit {pooled:.1%} "
            "(what the cache capacity allows any policy)"
        )
    rows: list[PolicyRow] = []
    runs: dict[str, RunResult] = {}
    searches: dict[str, GoodputResult] = {}
    for policy, (result, search) in zip(
        options.policies, _run_policies(options, echo), strict=True
    ):
        runs[policy.name] = result
        if search is not None:
            searches[policy.name] = search
        rows.append((policy.name, summarize(result, options.slo), search))
    echo("")
    echo(comparison_table(rows, bound))
    if options.json_path is not None:
        document: dict[str, Any] = {
            "trace": trace.name,
            "rateScale": options.rate_scale,
            "seed": options.seed,
            "kvCapacityTokens": capacity,
            "pooledLruHitRatio": pooled,
            **to_json(rows, bound),
        }
        options.json_path.write_text(json.dumps(document, indent=2) + "\n")
        echo(f"wrote {options.json_path}")
    if options.plot_dir is not None:
        _plot(options, runs, searches, echo)
    return rows


def _run_policies(
    options: SimulateOptions, echo: Echo
) -> list[tuple[RunResult, GoodputResult | None]]:
    """Every policy's run (and search), in policy order."""
    if options.jobs == 1 or len(options.policies) == 1:
        # Every run of every policy replays the same prompts: build each once.
        prompts = prompt_cache(options.shape)
        return [_run_policy(policy, options, echo, prompts) for policy in options.policies]
    # Workers print nothing (their echo would interleave); progress is reported here.
    # Each policy's runs share the prompts they build in their worker process.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.jobs, mp_context=context) as pool:
        futures = [
            pool.submit(_run_policy, policy, options, _silent) for policy in options.policies
        ]
        results = []
        for policy, future in zip(options.policies, futures, strict=True):
            result, search = future.result()
            echo(f"  {policy.name}: simulated in {result.wall_s:.1f} s")
            if search is not None:
                echo(f"  {policy.name}: goodput search, {len(search.probes)} probes")
            results.append((result, search))
    return results


def _silent(_: str) -> None:
    pass


def _run_policy(
    policy: Policy, options: SimulateOptions, echo: Echo, prompts: PromptCache | None = None
) -> tuple[RunResult, GoodputResult | None]:
    routing = _with_slo(policy.routing, options.slo)
    shared_prompts = prompt_cache(options.shape) if prompts is None else prompts

    def run_at(rate_scale: float) -> RunResult:
        return simulate(
            options.trace,
            options.shape,
            routing,
            options.seed,
            rate_scale,
            policy=policy.name,
            prompts=shared_prompts,
        )

    result = run_at(options.rate_scale)
    echo(f"  {policy.name}: simulated in {result.wall_s:.1f} s")
    if not options.search_goodput:
        return result, None

    def probe_at(rate_scale: float) -> Probe:
        if rate_scale == options.rate_scale:  # that run is already done
            metrics = summarize(result, options.slo)
            return Probe(rate_scale, metrics.slo_attainment, metrics.request_rate_per_s)
        attainment = probe_attainment(
            options.trace,
            options.shape,
            routing,
            options.slo,
            options.seed,
            rate_scale,
            prompts=shared_prompts,
        )
        arrivals_s = [r.arrival_s / rate_scale for r in options.trace.requests]
        return Probe(
            rate_scale, attainment.value, arrival_rate(arrivals_s), attainment.is_upper_bound
        )

    search = find_goodput(
        probe_at,
        target=options.slo.attainment_target,
        low=options.goodput_low,
        high=options.goodput_high,
        tolerance=options.goodput_tolerance,
        start=options.rate_scale if options.goodput_start is None else options.goodput_start,
    )
    echo(f"  {policy.name}: goodput search, {len(search.probes)} probes")
    return result, search


def _with_slo(routing: RoutingSettings, slo: SloTargets) -> RoutingSettings:
    """The SLO-aware plugins aim at the SLO the run is judged by."""
    spec = SloSpec(ttft_ms=slo.ttft_s * 1000, tpot_ms=slo.tpot_s * 1000)
    return routing.model_copy(update={"slo": spec})


def _plot(
    options: SimulateOptions,
    runs: dict[str, RunResult],
    searches: dict[str, GoodputResult],
    echo: Echo,
) -> None:
    from triskel.simulator import plots  # matplotlib only when asked for

    assert options.plot_dir is not None
    options.plot_dir.mkdir(parents=True, exist_ok=True)
    written = [plots.plot_ttft_cdf(runs, options.plot_dir / "ttft_cdf.png", options.slo)]
    if searches:
        written.append(
            plots.plot_attainment_vs_rate(
                searches,
                options.slo.attainment_target,
                options.plot_dir / "attainment_vs_rate.png",
            )
        )
    for path in written:
        echo(f"wrote {path}")
