"""Triskel side by side with SGLang's and vLLM's routers, on the same workers and trace.

    python bench/compare_routers.py [--quick] [--shape unified|pd|both] [--workers 4]
        [--trace FILE] [--limit N] [--rate-scale 1] [--time-scale 1] [--probe-rates 20,200]
        [--ttft-ms 2000] [--tpot-ms 100] [--routers smg,vllm-router,triskel]
        [--triskel-policies FILE.yaml,...] [--triskel-worker-apis vllm,triskel] [--json FILE]
        [--noise-floor]

(SLO defaults are 2000 ms and 100 ms times the time scale.)

The peers are the pinned `smg` (sglang-router) and `vllm-router`, installed into
.peers/ by scripts/install_peer_routers.sh when missing. For each shape (N unified
workers; N/2 prefill + N/2 decode) and each router × policy, on a fresh fleet of mock
workers serving the vLLM-compatible HTTP API (cold caches every time). The peers reach
the workers over that API; Triskel runs each of its policies once per worker api
(--triskel-worker-apis): vllm, that same HTTP API, and triskel, its own protocol (the
workers' plain gRPC host:port, calls as frames; Policy "<file> (workers over frames)"):

1. probe: small distinct prompts, streamed, at fixed rates (--probe-rates, default 20
   and 200 requests/s); TTFT minus the same probe sent straight to the workers (in
   turn, as a router spreads them) is what the router adds (for P/D it includes the
   KV hop); the direct probe goes over their HTTP API whichever api the router uses,
   so it is the same reference for every row;
2. the trace, replayed open loop (every request at its time, whatever the others do)
   with text prompts whose shared prefixes are the trace's; sustained req/s, TTFT /
   TPOT p50 / p99 and SLO attainment at the client, the prefix-cache hit ratio from
   the workers' own /metrics.

Prints a Markdown table (stdout; progress on stderr) and writes JSON with --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from triskel.cli.supervisor import ChildFailedError
from triskel.router.backends.addresses import WorkerApi
from triskel.simulator.bench.progress import progress_bar
from triskel.simulator.bench.run import BenchRun, choose_model, replay_trace
from triskel.simulator.bench.target import TargetError
from triskel.simulator.metrics import RunMetrics, SloTargets, summarize
from triskel.simulator.prefix_bound import prefix_hit_bound
from triskel.traces import TraceError, load_trace

# The peers start through the same module as CI's compatibility tests (tests/e2e/
# test_peer_routers.py), so the command lines measured here are the ones tested there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_report import ProbePair, Row, comparison_table, to_json
from fleet_counters import load_imbalance, read_counters
from router_fleet import (
    MODEL,
    Contender,
    FleetSpec,
    RouterKind,
    Shape,
    direct_workers,
    fleet,
    serve,
    triskel_serves_vllm_workers,
)
from text_target import (
    SpreadTarget,
    TextCompletionTarget,
    TextPlan,
    plan_probe_requests,
    plan_text_requests,
)

from support.peer_routers import Peer, PeerRouterError, peer_binary

ROOT = Path(__file__).resolve().parent.parent
# Multi-turn chat with shared system prompts (78% of prompt tokens are cacheable): the
# Mooncake head in tests/data shares little (a 6% bound) and tells cache policies apart less.
DEFAULT_TRACE = f"synthetic:{ROOT / 'bench' / 'traces' / 'multi-turn-chat.yaml'}"
POLICIES = ROOT / "bench" / "policies"
SMG_POLICIES = ("cache_aware", "round_robin")
VLLM_ROUTER_POLICIES = ("cache_aware", "power_of_two")
# Triskel's configuration for workers reached over vLLM's HTTP API (it has a unified
# profile, and needs no KV events), run over both worker apis so the two rows differ in
# the transport only; --triskel-policies gives others, e.g. llm-d.yaml.
NOISE_FLOOR_LABEL = "A/A: the direct probe again"
TRISKEL_POLICIES: dict[Shape, tuple[Path, ...]] = {
    Shape.UNIFIED: (POLICIES / "triskel-http.yaml",),
    Shape.PD: (POLICIES / "triskel-http.yaml",),
}
# How Triskel's router reaches the workers, one row each: their vLLM HTTP API (as the
# peers do), and Triskel's own protocol (gRPC, Decode / Prefill / Cancel as frames).
TRISKEL_WORKER_APIS = (WorkerApi.VLLM, WorkerApi.TRISKEL)
ALL_ROUTERS = (RouterKind.SMG, RouterKind.VLLM_ROUTER, RouterKind.TRISKEL)
# Issue 21's two points: a light load, where a request ends before the next starts
# (the path's own cost), and a busy one, where the router's work per request queues.
PROBE_RATES_PER_S = (20.0, 200.0)
PROBE_WORDS = 100
PROBE_OUTPUT_TOKENS = 4
NUM_WARM_UP_REQUESTS = 5


@dataclass(frozen=True, slots=True)
class Options:
    shapes: tuple[Shape, ...]
    num_workers: int
    routers: tuple[RouterKind, ...]
    trace_name: str
    trace_plan: TextPlan
    # The trace's prefix-hit ratio with one infinite cache (None: no prefix information).
    prefix_hit_bound: float | None
    rate_scale: float
    time_scale: float
    slo: SloTargets
    num_probe_requests: int
    probe_rates_per_s: tuple[float, ...]
    timeout_s: float
    triskel_policies: Mapping[Shape, tuple[Path, ...]]
    triskel_worker_apis: tuple[WorkerApi, ...] = TRISKEL_WORKER_APIS
    # A first row per shape: the direct probe against itself (the harness's resolution).
    noise_floor: bool = False


def contenders(shape: Shape, options: Options) -> list[Contender]:
    """The routers × policies (× worker apis, for Triskel) to run on `shape`, in the
    order the table lists them: a Triskel policy's rows side by side."""
    chosen: list[Contender] = []
    for kind in options.routers:
        if kind is RouterKind.SMG:
            chosen += [Contender(kind, policy) for policy in SMG_POLICIES]
        elif kind is RouterKind.VLLM_ROUTER:
            chosen += [Contender(kind, policy) for policy in VLLM_ROUTER_POLICIES]
        elif kind is RouterKind.TRISKEL:
            chosen += [
                Contender(kind, str(policy), api)
                for policy in options.triskel_policies[shape]
                for api in options.triskel_worker_apis
            ]
    return chosen


async def probe(urls: Sequence[str], rate_per_s: float, tag: str, options: Options) -> RunMetrics:
    """TTFT of small distinct prompts at a fixed rate, sent to `urls` in turn, after a
    short warm-up on the same client sessions (their connections are open when the probe
    starts)."""
    targets = [TextCompletionTarget(url, {}) for url in urls]
    spread = SpreadTarget(targets)
    try:
        model = await choose_model(spread, MODEL, urls[0])
        for phase, count in (("warm", NUM_WARM_UP_REQUESTS), ("probe", options.num_probe_requests)):
            plan = plan_probe_requests(
                count, rate_per_s, PROBE_WORDS, PROBE_OUTPUT_TOKENS, f"{phase}{tag}"
            )
            for target in targets:
                target.texts = plan.texts
            run = await replay_trace(
                spread, model, plan.requests, label=tag, rate_scale=1.0, timeout_s=options.timeout_s
            )
    finally:
        await spread.close()
    return summarize(run.result, options.slo)


async def replay(url: str, plan: TextPlan, label: str, options: Options) -> BenchRun:
    """The trace, open loop, with a progress bar on a terminal."""
    target = TextCompletionTarget(url, plan.texts)
    try:
        model = await choose_model(target, MODEL, url)
        with progress_bar(len(plan.requests), f"  {label}", sys.stderr.isatty()) as on_done:
            return await replay_trace(
                target,
                model,
                plan.requests,
                label=label,
                rate_scale=options.rate_scale,
                timeout_s=options.timeout_s,
                on_done=on_done,
            )
    finally:
        await target.close()


async def noise_floor(spec: FleetSpec, options: Options) -> Row:
    """The direct probe twice in a row on one fleet, read as "added" like a router's: what
    the harness reports when nothing is in between, so how small an added TTFT it can
    tell from zero (the mock engine's steps make a request wait up to one for its turn)."""
    row = Row(str(spec.shape), "direct", NOISE_FLOOR_LABEL)
    async with fleet(spec) as layout:
        urls = [worker.url for worker in direct_workers(layout)]
        probes = await paired_probes(
            (urls, "first"), (urls, "again"), f"{spec.shape}noisefloor", options
        )
    return replace(row, probes=probes)


async def paired_probes(
    first: tuple[Sequence[str], str],
    second: tuple[Sequence[str], str],
    tag: str,
    options: Options,
) -> tuple[ProbePair, ...]:
    """At each probe rate, the probe to `first`'s URLs then to `second`'s, each pair's
    prompts tagged with its side's word, `tag` and the rate."""
    pairs = []
    for rate in options.probe_rates_per_s:
        at = f"{tag}at{rate:g}".replace(".", "p")
        before = await probe(first[0], rate, f"{first[1]}{at}", options)
        after = await probe(second[0], rate, f"{second[1]}{at}", options)
        pairs.append(ProbePair(rate, before, after))
    return tuple(pairs)


async def run_contender(contender: Contender, spec: FleetSpec, options: Options) -> Row:
    """One contender on a fresh fleet: the paired probes, then the trace."""
    row = Row(str(spec.shape), str(contender.kind), contender.policy_label)
    label = f"{spec.shape} {contender.kind} {contender.policy_label}"
    # Letters and digits only: the tag is one word of every probe prompt.
    tag = "".join(c for c in label if c.isalnum())
    started = time.perf_counter()
    try:
        async with fleet(spec) as layout, serve(contender, layout) as url:
            direct_urls = [worker.url for worker in direct_workers(layout)]
            probes = await paired_probes((direct_urls, "direct"), ([url], "routed"), tag, options)
            before = await read_counters(layout.workers)
            run = await replay(url, options.trace_plan, label, options)
            counted = (await read_counters(layout.workers)).since(before)
            roles = {w.worker_id: w.role for w in layout.workers}
    except (
        PeerRouterError,
        ChildFailedError,
        TargetError,
        TimeoutError,
        ValueError,
        aiohttp.ClientError,
    ) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        _echo(f"{label}: not run: {reason}")
        return replace(row, error=reason)
    metrics = summarize(run.result, options.slo)
    _echo(
        f"{label}: {metrics.num_finished} finished, {metrics.num_failed} failed "
        f"in {time.perf_counter() - started:.0f} s"
    )
    for reason, count in run.failures.most_common(3):
        _echo(f"    {count} × {reason}")
    return replace(
        row,
        probes=probes,
        trace=metrics,
        worker_prefix_hit_ratio=counted.prefix_hit_ratio,
        requests_by_worker=counted.requests_by_worker,
        load_imbalance=load_imbalance(counted.requests_by_worker, roles),
        failures=dict(run.failures.most_common()),
    )


async def compare(options: Options) -> list[Row]:
    """Every contender on every shape, in the table's order."""
    rows = []
    for shape in options.shapes:
        spec = FleetSpec(shape, options.num_workers, options.time_scale)
        if options.noise_floor:
            rows.append(await noise_floor(spec, options))
        for contender in contenders(shape, options):
            over_http = contender.kind is RouterKind.TRISKEL and (
                contender.worker_api is WorkerApi.VLLM
            )
            if over_http and (why := triskel_serves_vllm_workers()):
                row = Row(str(shape), str(contender.kind), contender.policy_label, error=why)
                rows.append(row)
                continue
            rows.append(await run_contender(contender, spec, options))
    return rows


def _echo(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=4, help="workers per fleet (default 4)")
    parser.add_argument("--shape", choices=("unified", "pd", "both"), default="both")
    parser.add_argument(
        "--trace",
        default=DEFAULT_TRACE,
        help="FILE.jsonl (Mooncake), FILE.csv (Azure) or synthetic:FILE.yaml "
        "(default: bench/traces/multi-turn-chat.yaml, 400 requests)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N requests (all)")
    parser.add_argument(
        "--rate-scale", type=float, default=None, help="arrival rate × this (1; --quick 2)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="mock GPU: wall s per modelled s (1: an H100 in real time; --quick 0.5)",
    )
    parser.add_argument(
        "--ttft-ms", type=float, default=None, help="TTFT SLO, wall ms (2000 × time scale)"
    )
    parser.add_argument(
        "--tpot-ms", type=float, default=None, help="TPOT SLO, wall ms (100 × time scale)"
    )
    parser.add_argument(
        "--routers",
        default=",".join(ALL_ROUTERS),
        help=f"comma-separated subset of {','.join(ALL_ROUTERS)}",
    )
    parser.add_argument(
        "--triskel-policies",
        default=None,
        help="comma-separated routing YAML files for Triskel on every shape "
        "(default: bench/policies/triskel-http.yaml)",
    )
    parser.add_argument(
        "--triskel-worker-apis",
        default=",".join(TRISKEL_WORKER_APIS),
        help="comma-separated: how Triskel's router reaches the workers, a row per api and "
        "policy: vllm (their HTTP API, as the peers), triskel (gRPC host:port, calls as "
        f"frames) (default: {','.join(TRISKEL_WORKER_APIS)})",
    )
    parser.add_argument("--probe-requests", type=int, default=None, help="probe size per rate (50)")
    parser.add_argument(
        "--probe-rates",
        default=",".join(f"{rate:g}" for rate in PROBE_RATES_PER_S),
        help="comma-separated probe rates, requests/s (20,200)",
    )
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per request")
    parser.add_argument(
        "--noise-floor",
        action="store_true",
        help="first, per shape, the direct probe against a second direct probe: what "
        "'added' reads with no router in between",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 20 requests, 10 probes, the mock GPU and the arrivals 2× faster",
    )
    return parser.parse_args(argv)


def build_options(args: argparse.Namespace) -> Options:
    """Options from the command line (defaults resolved); SystemExit naming the bad flag."""
    try:
        routers = tuple(RouterKind(name) for name in args.routers.split(",") if name)
    except ValueError:
        raise SystemExit(f"--routers {args.routers}: choose from {','.join(ALL_ROUTERS)}") from None
    shapes = (Shape.UNIFIED, Shape.PD) if args.shape == "both" else (Shape(args.shape),)
    if args.workers < (2 if Shape.PD in shapes else 1):
        raise SystemExit(f"--workers {args.workers}: need 1, or 2 for the pd shape")
    rate_scale = _default(args.rate_scale, 2.0 if args.quick else 1.0)
    time_scale = _default(args.time_scale, 0.5 if args.quick else 1.0)
    if not rate_scale > 0 or not time_scale > 0:
        raise SystemExit(f"--rate-scale {rate_scale:g} and --time-scale {time_scale:g}: need > 0")
    try:
        probe_rates = tuple(float(rate) for rate in args.probe_rates.split(",") if rate)
    except ValueError:
        raise SystemExit(f"--probe-rates {args.probe_rates}: numbers, comma-separated") from None
    if not probe_rates or not all(rate > 0 for rate in probe_rates):
        raise SystemExit(f"--probe-rates {args.probe_rates}: at least one, each > 0")
    triskel_policies = dict(TRISKEL_POLICIES)
    if args.triskel_policies:
        files = tuple(Path(p) for p in args.triskel_policies.split(",") if p)
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise SystemExit(f"--triskel-policies: no such file: {', '.join(missing)}")
        triskel_policies = {shape: files for shape in Shape}
    worker_apis = parse_worker_apis(args.triskel_worker_apis)
    try:
        trace = load_trace(args.trace, args.limit or (20 if args.quick else None))
    except TraceError as error:
        raise SystemExit(f"--trace: {error}") from None
    # The mock GPU's latencies scale with the time scale; default SLOs follow them.
    ttft_ms = _default(args.ttft_ms, 2000.0 * time_scale)
    tpot_ms = _default(args.tpot_ms, 100.0 * time_scale)
    try:
        slo = SloTargets(ttft_ms / 1000, tpot_ms / 1000)
    except ValueError as error:
        raise SystemExit(f"--ttft-ms {ttft_ms:g} / --tpot-ms {tpot_ms:g}: {error}") from None
    return Options(
        shapes=shapes,
        num_workers=args.workers,
        routers=routers,
        trace_name=Path(args.trace.removeprefix("synthetic:")).name,
        trace_plan=plan_text_requests(trace, rate_scale),
        prefix_hit_bound=(
            prefix_hit_bound(trace.requests).hit_ratio
            if any(r.prefix_block_ids for r in trace.requests)
            else None
        ),
        rate_scale=rate_scale,
        time_scale=time_scale,
        slo=slo,
        num_probe_requests=args.probe_requests or (10 if args.quick else 50),
        probe_rates_per_s=probe_rates,
        timeout_s=args.timeout_s,
        triskel_policies=triskel_policies,
        noise_floor=args.noise_floor,
        triskel_worker_apis=worker_apis,
    )


def parse_worker_apis(text: str) -> tuple[WorkerApi, ...]:
    """--triskel-worker-apis: at least one of TRISKEL_WORKER_APIS, in the order given,
    each once; SystemExit naming the bad value and the choices."""
    choices = ",".join(TRISKEL_WORKER_APIS)
    apis = []
    for name in (name.strip() for name in text.split(",")):
        if not name:
            continue
        if name not in TRISKEL_WORKER_APIS:  # a StrEnum member equals its value
            raise SystemExit(
                f"--triskel-worker-apis {text}: unknown api {name!r}; choose from {choices}"
            )
        apis.append(WorkerApi(name))
    if not apis:
        raise SystemExit(f"--triskel-worker-apis {text!r}: none given; choose from {choices}")
    return tuple(dict.fromkeys(apis))


def _default(value: float | None, default: float) -> float:
    return default if value is None else value


def describe(options: Options) -> str:
    """One line saying what was measured, above the table."""
    hit_bound = options.prefix_hit_bound
    bound = "" if hit_bound is None else f", prefix-hit bound {hit_bound:.1%}"
    return (
        f"trace {options.trace_name}: {len(options.trace_plan.requests)} requests, arrivals × "
        f"{options.rate_scale:g}{bound}; {options.num_workers} mock workers per fleet, time scale "
        f"{options.time_scale:g}; SLO TTFT {1000 * options.slo.ttft_s:g} ms, TPOT "
        f"{1000 * options.slo.tpot_s:g} ms; probe {options.num_probe_requests} streamed requests "
        f"at each of {', '.join(f'{rate:g}' for rate in options.probe_rates_per_s)} requests/s"
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    options = build_options(args)
    for kind in options.routers:
        if kind in (RouterKind.SMG, RouterKind.VLLM_ROUTER):
            # Installs the pinned peers (scripts/install_peer_routers.sh) when missing.
            _echo(f"{kind}: {peer_binary(Peer(kind.value))}")
    summary = describe(options)
    _echo(summary)
    rows = asyncio.run(compare(options))
    print(f"{summary}\n")
    print(comparison_table(rows, options.probe_rates_per_s))
    if args.json is not None:
        document = {
            "trace": args.trace,
            "numRequests": len(options.trace_plan.requests),
            "prefixHitBound": options.prefix_hit_bound,
            "rateScale": options.rate_scale,
            "timeScale": options.time_scale,
            "workers": options.num_workers,
            "probeRatesPerS": list(options.probe_rates_per_s),
            "slo": {"ttftMs": 1000 * options.slo.ttft_s, "tpotMs": 1000 * options.slo.tpot_s},
            "rows": to_json(rows),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        _echo(f"wrote {args.json}")


if __name__ == "__main__":
    main()
