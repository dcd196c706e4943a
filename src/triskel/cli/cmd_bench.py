"""`triskel bench`: replay a trace against a running router, open loop, and measure it."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from triskel.cli.command_support import fail
from triskel.cli.replay_flags import JsonPath, RateScale, TpotMs, TraceLimit, TtftMs


def bench(
    trace: Annotated[
        str,
        typer.Option(
            "--trace", help="a .jsonl (Mooncake) or .csv (Azure) trace, or synthetic:FILE"
        ),
    ],
    url: Annotated[
        str,
        typer.Option("--url", help="the router: http://HOST:PORT or grpc://HOST:PORT"),
    ] = "http://127.0.0.1:8080",
    model: Annotated[
        str | None, typer.Option("--model", help="default: the router's only model")
    ] = None,
    limit: TraceLimit = None,
    rate_scale: RateScale = 1.0,
    ttft_ms: TtftMs = 2000.0,
    tpot_ms: TpotMs = 100.0,
    attainment: Annotated[
        float, typer.Option("--attainment", min=0.01, max=1.0, help="SLO attainment target")
    ] = 0.9,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="seconds a request may take")
    ] = 300.0,
    salt: Annotated[
        str, typer.Option("--salt", help="new prompts, same sharing (to rerun on warm caches)")
    ] = "",
    json_path: JsonPath = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="a progress bar on stderr")
    ] = True,
) -> None:
    """Replay a trace against a running router (`triskel up`), open loop, and measure it."""
    from triskel.simulator.bench.command import BenchOptions, run_bench
    from triskel.simulator.bench.target import TargetError
    from triskel.simulator.metrics import SloTargets
    from triskel.traces import TraceError, load_trace

    try:
        loaded = load_trace(trace, limit)
    except TraceError as error:  # a bad or unreadable file, named with line and field
        raise fail(str(error)) from None
    options = BenchOptions(
        url=url,
        trace=loaded,
        slo=SloTargets(ttft_ms / 1000, tpot_ms / 1000, attainment),
        rate_scale=rate_scale,
        model=model,
        timeout_s=timeout,
        salt=salt,
        json_path=json_path,
        show_progress=progress,
    )
    try:
        metrics = asyncio.run(run_bench(options, typer.echo))
    except TargetError as error:
        raise fail(str(error)) from None
    if metrics.num_finished == 0:
        raise fail("bench: no request finished (see the failures above)")
