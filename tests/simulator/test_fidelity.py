"""Fidelity: the simulator and a live `triskel up` agree on the same trace and profile.

One synthetic trace (fixed seed) is replayed twice per cluster shape (1 prefill +
1 decode, 1 unified, and 2 prefill + 2 decode under adaptive disaggregation): by
`simulate`, and by `bench` over HTTP against
`triskel up` running that shape with the mock engine at real speed (time scale
1). Their TTFT p50 and TPOT p50 must agree within 15 %.

Why the two can differ, and why this workload keeps that small:

- Fixed costs the model leaves out: the router (parse, hash, schedule, relay),
  loopback gRPC and HTTP, and the prefill worker writing its KV blocks before it
  answers (~1 ms per 1,000 tokens). They add a few milliseconds to every TTFT, so
  prompts are thousands of tokens long (prefills of ~100-600 ms).
- Timer overshoot in the mock's sleeps: the mock engine times back-to-back steps
  from where the previous one ended, so it does not add up over a decode stream.
- KV transfers: the simulator models 25 GB/s over the full KV size; the mock moves
  1/256 of the bytes over loopback TCP. A transfer delays the second token only,
  which spreads over the ~100 tokens of an answer in TPOT.
- Order of simultaneous arrivals: trace timestamps that tie (Mooncake's come in
  whole seconds) reach the router in whatever order the connections deliver
  them, while the simulator keeps trace order. Poisson arrivals never tie.
- Load: ~40 % prefill utilisation keeps queueing, which magnifies any timing
  difference, mild, and leaves the 2-core CI machine room for the processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from triskel.common.routing_api import RoutingSettings
from triskel.simulator.bench.run import bench
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.metrics import Percentiles, RunMetrics, SloTargets, summarize
from triskel.simulator.run import simulate
from triskel.traces import SyntheticSpec, Trace, synthetic_trace

from support.processes import read_until, start_triskel

TOLERANCE = 0.15
PROFILE = "llama-3.1-8b-h100"


def pool(role: str, replicas: int = 1) -> dict[str, object]:
    """A `triskel up` pool of `replicas` workers of `role` at real speed (time scale 1)."""
    return {
        "name": role,
        "role": role,
        "model": "m",
        "replicas": {"min": replicas, "max": replicas},
        "kvConnector": {"type": "tcp"},
        "profile": {"name": PROFILE},
    }


ADAPTIVE = {"disaggregation": {"mode": "adaptive"}}

# The `triskel up` pools, the routing both runs use, and the simulated shape they match.
SHAPES = {
    "1P1D": (
        [pool("prefill"), pool("decode")],
        {},
        ClusterShape(num_prefill=1, num_decode=1, profile=PROFILE),
    ),
    "unified": ([pool("unified")], {}, ClusterShape(num_unified=1, profile=PROFILE)),
    # Adaptive disaggregation on more than one worker a role: the walk's choices (local or
    # remote prefill, from load and the latency model) must come out alike in both runs.
    "2P2D-adaptive": (
        [pool("prefill", 2), pool("decode", 2)],
        ADAPTIVE,
        ClusterShape(num_prefill=2, num_decode=2, profile=PROFILE),
    ),
}
# SLOs only label requests; the comparison is on latencies.
SLO = SloTargets(ttft_s=2.0, tpot_s=0.1)


def fidelity_trace() -> Trace:
    """~17 s of Poisson arrivals; prompts ~6,000 tokens of which 1,024 a shared system prompt."""
    spec = SyntheticSpec.model_validate(
        {
            "ratePerS": 1.2,
            "numRequests": 20,
            "inputTokensMean": 6000,
            "inputTokensSigma": 0.5,
            "outputTokensMean": 120,
            "outputTokensSigma": 0.5,
            "numPrefixes": 3,
            "prefixBlocks": 2,
        }
    )
    return synthetic_trace(spec, seed=7)


@pytest.fixture(params=SHAPES)
def shape_name(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    name: str = request.param
    pools, routing, _ = SHAPES[name]
    router = {"http": "127.0.0.1:0", "grpc": "127.0.0.1:0"}
    document = {"router": router, "pools": pools, "routing": routing}
    (tmp_path / "up.yaml").write_text(json.dumps(document))  # JSON is YAML
    return name


@contextlib.asynccontextmanager
async def triskel_up(config: Path) -> AsyncIterator[str]:
    """`triskel up -f config` as a user runs it (separate processes); its HTTP URL."""
    process = await start_triskel(["up", "-f", str(config)])
    try:
        ready = (await read_until(process, "Triskel is ready"))[-1]
        found = re.search(r"(http://127\.0\.0\.1:\d+)/v1", ready)
        assert found, ready
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_simulated_and_live_latencies_agree(shape_name: str, tmp_path: Path) -> None:
    trace = fidelity_trace()
    async with triskel_up(tmp_path / "up.yaml") as router_url:
        run = await bench(trace, router_url, timeout_s=60)
    live = summarize(run.result, SLO)
    _, routing, shape = SHAPES[shape_name]
    settings = RoutingSettings.model_validate(routing)
    simulated = summarize(simulate(trace, shape, settings, seed=0), SLO)
    assert live.num_failed == 0, dict(run.failures)
    # The same prompts hit the same caches. One system prompt (1,024 of ~130k prompt
    # tokens) may be cached in one run and still prefilling in the other.
    assert live.prefix_hit_ratio == pytest.approx(simulated.prefix_hit_ratio, abs=0.01)
    for name in ("ttft", "tpot"):
        sim_s, live_s = _p50(simulated, name), _p50(live, name)
        assert abs(live_s - sim_s) <= TOLERANCE * sim_s, (
            f"{shape_name} {name} p50: simulated {sim_s * 1000:.2f} ms, live "
            f"{live_s * 1000:.2f} ms ({live_s / sim_s - 1:+.1%}, tolerance ±{TOLERANCE:.0%})"
        )


def _p50(metrics: RunMetrics, name: str) -> float:
    percentiles: Percentiles | None = getattr(metrics, name)
    assert percentiles is not None, f"no {name}: nothing finished"
    return percentiles.p50_s
