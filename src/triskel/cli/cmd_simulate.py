"""`triskel simulate`: replay a trace on a simulated cluster. This module compares
routing policies; a suite file (simulate_suite.py) and `--autoscale`
(simulate_autoscale.py) hand over to their own modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from triskel.cli.command_support import fail
from triskel.cli.replay_flags import JsonPath, RateScale, TpotMs, TraceLimit, TtftMs
from triskel.cli.simulate_autoscale import simulate_autoscale
from triskel.cli.simulate_suite import simulate_suite
from triskel.router.scheduling.types import LOAD_REPORT_INTERVAL_MS


def simulate(
    ctx: typer.Context,
    trace: Annotated[
        str | None,
        typer.Option(
            "--trace", help="a .jsonl (Mooncake) or .csv (Azure) trace, or synthetic:FILE"
        ),
    ] = None,
    suite: Annotated[
        Path | None,
        typer.Option(
            "--suite",
            help="a benchmark suite (bench/suite.yaml): workloads x policies, one goodput table",
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="round-robin or a YAML routing file (repeat to compare)"),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option("--compare", help="several policies, comma-separated (as --policy)"),
    ] = None,
    limit: TraceLimit = None,
    rate_scale: RateScale = 1.0,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="policies simulated at once (processes)")
    ] = 1,
    unified: Annotated[int, typer.Option("--unified", min=0, help="unified instances")] = 0,
    prefill: Annotated[int, typer.Option("--prefill", min=0, help="prefill instances")] = 0,
    decode: Annotated[int, typer.Option("--decode", min=0, help="decode instances")] = 0,
    profile: Annotated[str, typer.Option("--profile", help="latency profile")] = (
        "llama-3.1-8b-h100"
    ),
    kv_capacity_tokens: Annotated[
        int | None,
        typer.Option("--kv-capacity-tokens", min=1, help="KV tokens per instance (what-if)"),
    ] = None,
    host_kv_tokens: Annotated[
        int,
        typer.Option(
            "--host-kv-tokens", min=0, help="host-memory KV tier per instance, tokens (0: none)"
        ),
    ] = 0,
    load_report_ms: Annotated[
        float,
        typer.Option(
            "--load-report-ms",
            min=0,
            help="how often workers report their load to the router (0: picks read it at once)",
        ),
    ] = LOAD_REPORT_INTERVAL_MS,
    ttft_ms: TtftMs = 2000.0,
    tpot_ms: TpotMs = 100.0,
    attainment: Annotated[
        float, typer.Option("--attainment", min=0.01, max=1.0, help="goodput target")
    ] = 0.9,
    goodput: Annotated[
        bool, typer.Option("--goodput", help="search each policy's goodput (many runs)")
    ] = False,
    goodput_low: Annotated[
        float,
        typer.Option(
            "--goodput-low",
            min=0.0001,
            max=64,
            help="lowest rate probed (the search starts at --rate-scale)",
        ),
    ] = 0.125,
    seed: Annotated[int, typer.Option("--seed", help="random seed of every policy")] = 0,
    json_path: JsonPath = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="write PNG charts here")] = None,
    autoscale: Annotated[
        str | None,
        typer.Option(
            "--autoscale",
            help="scaling policies, comma-separated (triskel, hpa-queue, aibrix-kpa, dynamo, "
            "llm-d), each compared with a static pool sized for the peak",
        ),
    ] = None,
    burst: Annotated[
        list[str] | None,
        typer.Option(
            "--burst",
            help="START,END,FACTOR (seconds): FACTOR x the traffic there (repeat for several "
            "bursts, which must not overlap)",
        ),
    ] = None,
    min_replicas: Annotated[
        int, typer.Option("--min-replicas", min=1, help="autoscaling: per stage")
    ] = 1,
    max_replicas: Annotated[
        int, typer.Option("--max-replicas", min=1, help="autoscaling: per stage")
    ] = 32,
    search_static: Annotated[
        bool,
        typer.Option(
            "--search-static", help="autoscaling: also find the smallest static pool (many runs)"
        ),
    ] = False,
    ep: Annotated[
        int,
        typer.Option(
            "--ep",
            min=1,
            help="autoscaling an MoE profile: EP ranks per replica; compares whole-replica "
            "scaling with elastic EP steps",
        ),
    ] = 1,
    role_switch_s: Annotated[
        float | None,
        typer.Option(
            "--role-switch-s",
            min=0.0,
            help="autoscaling: Triskel's planner may move replicas between prefill and "
            "decode, a switch taking this long",
        ),
    ] = None,
) -> None:
    """Replay a trace on a simulated cluster: routing policies, or (--autoscale) scaling ones."""
    from triskel.simulator.cluster import ClusterShape
    from triskel.simulator.command import (
        SimulateError,
        SimulateOptions,
        load_policy,
        run_simulate,
    )
    from triskel.simulator.metrics import SloTargets
    from triskel.traces import TraceError, load_trace

    if suite is not None:
        simulate_suite(
            ctx, suite, jobs=jobs, limit=limit, seed=seed, json_path=json_path, plot=plot
        )
        return
    if trace is None:
        raise fail("--trace: required (or --suite FILE)")
    if autoscale is not None:
        if host_kv_tokens:
            raise fail("--host-kv-tokens: not with --autoscale (its replicas have no host tier)")
        simulate_autoscale(
            trace_path=trace,
            limit=limit,
            burst=burst,
            autoscale=autoscale,
            routing_specs=_policy_specs(policy, compare),
            unified=unified,
            prefill=prefill,
            decode=decode,
            profile=profile,
            kv_capacity_tokens=kv_capacity_tokens,
            load_report_ms=load_report_ms,
            slo=SloTargets(ttft_ms / 1000, tpot_ms / 1000, attainment),
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            seed=seed,
            jobs=jobs,
            json_path=json_path,
            plot=plot,
            search_static=search_static,
            ep=ep,
            rate_scale=rate_scale,
            role_switch_s=role_switch_s,
        )
        return
    if burst:
        raise fail("--burst: only with --autoscale")
    if unified == 0 and prefill == 0 and decode == 0:
        prefill, decode = 8, 8  # the cluster docs/benchmarks.md uses
    try:
        shape = ClusterShape(
            num_unified=unified,
            num_prefill=prefill,
            num_decode=decode,
            profile=profile,
            kv_capacity_tokens=kv_capacity_tokens,
            host_kv_capacity_tokens=host_kv_tokens,
            load_report_interval_ms=load_report_ms,
        )
        options = SimulateOptions(
            trace=load_trace(trace, limit),
            shape=shape,
            slo=SloTargets(ttft_ms / 1000, tpot_ms / 1000, attainment),
            policies=[load_policy(spec) for spec in _policy_specs(policy, compare)],
            rate_scale=rate_scale,
            jobs=jobs,
            seed=seed,
            search_goodput=goodput,
            goodput_low=goodput_low,
            json_path=json_path,
            plot_dir=plot,
        )
    except (TraceError, SimulateError) as error:
        raise fail(str(error)) from None
    except ValidationError as error:
        raise fail(f"cluster: {error.errors()[0]['msg']}") from None
    run_simulate(options, typer.echo)


def _policy_specs(policies: list[str] | None, compare: str | None) -> list[str]:
    """`--policy` values, then `--compare` ones; round-robin when neither is given."""
    specs = list(policies or [])
    if compare:
        specs += [spec.strip() for spec in compare.split(",") if spec.strip()]
    return specs or ["round-robin"]
