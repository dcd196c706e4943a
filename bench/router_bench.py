"""The router's costs, in one run: decision time per plugin, added TTFT, relayed tokens/s.

    python bench/router_bench.py [--rates 20] [--requests 200] [--quick]

1. Decision time per plugin and for the shipped profiles at 16, 128 and 1,024
   workers (median and p99, µs), from the scheduler's own per-plugin timing; then
   Triskel's shipped default (bench/policies/triskel.yaml) whole and per plugin at
   4 workers (compare_routers.py's fleets), 1,024 and 10,000 (issue 21's targets:
   p99 < 100 µs and < 300 µs).
2. Router-added TTFT: the same open-loop load (fixed rate, distinct prompts)
   through the router and straight to one mock worker; TTFT p50 / p99 of both and
   the sustained requests/s, at each of `--rates`. One worker serves ~85 requests/s of
   these, so issue 21's 200 requests/s is measured on 4-worker fleets by
   compare_routers.py (`--probe-rates 20,200`), beside the peers.
3. Relay: tokens/s through the router vs straight from the worker when the worker
   generates instantly, with 32 and 256 streams (issue 21's target: >= 90% of direct),
   over gRPC (the router's `Generate`, the worker's `Decode`) and over HTTP (both
   OpenAI-compatible APIs, streamed): bursts summed over at least 3 s.

Phases 2 and 3 run twice, the router calling the worker with frames (the default) and
over gRPC (`workerFrames: false`), each on a fresh worker and router.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import yaml

from triskel.common.routing_api import RoutingSettings

sys.path.insert(0, str(Path(__file__).parent))

from decision_time import plugin_kinds, single_plugin_config, time_config
from router_load import measure_overhead, measure_relay

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEFAULT_POLICY = Path(__file__).resolve().parent / "policies" / "triskel.yaml"
CLUSTER_SIZES = (16, 128, 1024)
DEFAULT_SIZES = (4, 1024, 10_000)
# Picks per row of the default's table: a p99 of 200 was their second worst, which this
# shared machine's noise set more than the code did (2,000 since 2026-12-07).
DEFAULT_PICKS = 2_000
SHIPPED_PROFILES = ("dualmap.yaml", "llm-d-default.yaml")


def decisions(quick: bool) -> None:
    print("## Decision time per plugin (µs, median / p99)\n")
    header = "| plugin | " + " | ".join(f"{n} workers" for n in CLUSTER_SIZES) + " |"
    print(header)
    print("|---" * (len(CLUSTER_SIZES) + 1) + "|")
    configs: list[tuple[str, dict[str, Any]]] = [
        (name, single_plugin_config(name, kind)) for name, kind in plugin_kinds().items()
    ]
    for example in SHIPPED_PROFILES:
        path = EXAMPLES / example
        if path.is_file():
            settings = RoutingSettings.model_validate(yaml.safe_load(path.read_text())["routing"])
            scheduling = settings.scheduling().model_dump(by_alias=True, exclude_none=True)
            configs.append((f"profile {example} (prefill)", scheduling))
    for name, config in configs:
        cells = []
        for num_workers in CLUSTER_SIZES:
            num_requests = 50 if quick else max(200, 20_000 // num_workers)
            total, per_plugin = time_config(name, config, num_workers, num_requests)
            own = per_plugin.get(name, total)
            cells.append(f"{own.median_us:,.1f} / {own.p99_us:,.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def default_decisions(quick: bool) -> None:
    """The shipped default's whole decision and each of its plugins, at fleet scale."""
    settings = RoutingSettings.model_validate(yaml.safe_load(DEFAULT_POLICY.read_text())["routing"])
    config = settings.scheduling().model_dump(by_alias=True, exclude_none=True)
    print("## Decision time, Triskel's shipped default (µs, median / p99)\n")
    print("| workers | candidates | whole decision | " + " | ".join(_plugin_names(config)) + " |")
    print("|---" * (len(_plugin_names(config)) + 3) + "|")
    for num_workers in DEFAULT_SIZES:
        for keep, label in ((False, "a list per pick"), (True, "kept")):
            total, per_plugin = time_config(
                "default", config, num_workers, 30 if quick else DEFAULT_PICKS, keep_candidates=keep
            )
            cells = [label, f"{total.median_us:,.0f} / {total.p99_us:,.0f}"]
            for name in _plugin_names(config):
                own = per_plugin[name]
                cells.append(f"{own.median_us:,.0f} / {own.p99_us:,.0f}")
            print(f"| {num_workers:,} | " + " | ".join(cells) + " |")
    print()


def _plugin_names(config: dict[str, Any]) -> list[str]:
    return [plugin.get("name", plugin["type"]) for plugin in config["plugins"]]


TRANSPORTS = ((True, "frames"), (False, "gRPC"))


async def overhead(rate: float, count: int) -> None:
    print(f"## Router-added latency ({count} requests open-loop at {rate:g}/s, 16 output tokens)\n")
    print("| router to worker | path | TTFT p50 ms | TTFT p99 ms | sustained req/s |")
    print("|---|---|---:|---:|---:|")
    added = []
    for frames, transport in TRANSPORTS:
        routed, straight = await measure_overhead(
            rate, count, max_tokens=16, prompt_words=100, worker_frames=frames
        )
        for result in (straight, routed):
            print(
                f"| {transport} | {result.target} | {result.ttft_ms(0.5):.2f} "
                f"| {result.ttft_ms(0.99):.2f} | {result.achieved_per_s:.1f} |"
            )
        added.append(
            f"{transport}: p50 {routed.ttft_ms(0.5) - straight.ttft_ms(0.5):+.2f} ms, "
            f"p99 {routed.ttft_ms(0.99) - straight.ttft_ms(0.99):+.2f} ms"
        )
    print("\nRouter-added TTFT: " + "; ".join(added) + "\n")


async def relay(concurrencies: tuple[int, ...], max_tokens: int) -> None:
    print(f"## Relay (concurrent streams of {max_tokens} tokens, instant worker)\n")
    print(
        "| client API | streams | router to worker | straight, tokens/s "
        "| through the router, tokens/s | router ÷ straight |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for api, label in (("grpc", "gRPC"), ("http", "HTTP (SSE)")):
        for concurrency in concurrencies:
            for frames, transport in TRANSPORTS:
                routed, straight = await measure_relay(
                    concurrency, max_tokens, worker_frames=frames, api=api
                )
                ratio = routed.tokens_per_s / straight.tokens_per_s if straight.tokens_per_s else 0
                print(
                    f"| {label} | {concurrency} | {transport} | {straight.tokens_per_s:,.0f} "
                    f"| {routed.tokens_per_s:,.0f} | {ratio:.0%} |"
                )
    print("\n(issue 21's target: through the router >= 90% of straight)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rates", default="20", help="open-loop requests per second, comma-separated"
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    args = parser.parse_args()
    decisions(args.quick)
    default_decisions(args.quick)
    try:
        rates = [float(rate) for rate in args.rates.split(",") if rate]
    except ValueError:
        raise SystemExit(f"--rates {args.rates}: numbers, comma-separated") from None
    if not rates or not all(rate > 0 for rate in rates):
        raise SystemExit(f"--rates {args.rates}: at least one, each > 0")
    for rate in rates:
        asyncio.run(overhead(rate, 40 if args.quick else args.requests))
    asyncio.run(relay((8,) if args.quick else (32, 256), 256))


if __name__ == "__main__":
    main()
