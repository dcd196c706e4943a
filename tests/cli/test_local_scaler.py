"""The local scaler: what it observes, which policy it builds when, what it does and says."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from triskel.cli.autoscale_graphs import GraphPlan, graph_plans
from triskel.cli.local_scaler import GraphScaler, describe
from triskel.cli.local_worker import ReplicaCounts
from triskel.cli.up_config import parse_up_config
from triskel.common.worker_load import WorkerLoad
from triskel.planner.autoscalers import Autoscaler
from triskel.planner.planner import Decision, Observation
from triskel.planner.sizing import Lengths
from triskel.router.metrics import RouterMetrics

PD = """
autoscale: {policy: POLICY, intervalS: 1, ttftMs: 500, tpotMs: 50}
pools:
  - {name: prefill, role: prefill, model: m, replicas: {min: 1, max: 4}}
  - {name: decode, role: decode, model: m, replicas: {min: 1, max: 8, desired: 4}}
"""


def plan(policy: str = "triskel") -> GraphPlan:
    config = parse_up_config(PD.replace("POLICY", policy), "up.yaml")
    assert config.autoscale is not None
    return graph_plans(config.autoscale, config.pools)[0]


@dataclass
class FakePools:
    counts_of: dict[str, ReplicaCounts]
    endpoints_of: dict[str, list[str]]
    scaled: list[tuple[str, int]] = field(default_factory=list)
    switched: list[tuple[str, str, int]] = field(default_factory=list)
    # Every scale and switch, in the order asked.
    actions: list[str] = field(default_factory=list)

    def counts(self, pool: str) -> ReplicaCounts:
        return self.counts_of[pool]

    def endpoints(self, pool: str) -> list[str]:
        return self.endpoints_of[pool]

    def scale(self, pool: str, desired: int) -> None:
        self.scaled.append((pool, desired))
        self.actions.append(f"scale {pool} {desired}")

    def switch(self, donor: str, receiver: str, count: int) -> int:
        self.switched.append((donor, receiver, count))
        self.actions.append(f"switch {donor} {receiver} {count}")
        return count


@dataclass
class ScriptedAutoscaler:
    """Returns the desired counts it is given, and keeps what it observed."""

    desired: Mapping[str, int]
    reason: str = "scale down: scripted"
    name: str = "scripted"
    interval_s: float = 1.0
    seen: list[Observation] = field(default_factory=list)

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        self.seen.append(observation)
        return tuple(
            Decision(stage, observation.stages[stage].replicas, count, self.reason, {"x": 1.25})
            for stage, count in self.desired.items()
        )


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


LOADS = {
    "p0": WorkerLoad(2, 1, 0),
    "d0": WorkerLoad(0, 3, 0),
    "d1": WorkerLoad(1, 4, 2),
    "gone": None,  # a worker that stopped answering is left out
}


async def read_load(address: str) -> WorkerLoad | None:
    return LOADS[address]


def pools() -> FakePools:
    return FakePools(
        counts_of={"prefill": ReplicaCounts(1, 0), "decode": ReplicaCounts(3, 1)},
        endpoints_of={"prefill": ["p0"], "decode": ["d0", "d1", "gone"]},
    )


@pytest.mark.asyncio
async def test_an_observation_from_two_scrapes_and_the_pools_then_the_decisions_acted_on() -> None:
    metrics, clock, lines = RouterMetrics(), Clock(), list[str]()
    fake = pools()
    autoscaler = ScriptedAutoscaler({"prefill": 1, "decode": 2})

    async def read_metrics() -> str:
        return metrics.render()[0].decode()

    def build(_: GraphPlan, inputs: Lengths, outputs: Lengths) -> Autoscaler:
        return autoscaler

    scaler = GraphScaler(plan(), fake, read_metrics, lines.append, build, read_load, clock)
    assert await scaler.tick() == ()  # one scrape is no window yet
    # Ten requests in 5 s: 2 req/s of 1,000 prompt and 100 generated tokens each.
    for _ in range(10):
        metrics.observe_request("m", "http", "ok", ttft_s=0.2, tpot_s=0.03)
        metrics.observe_tokens("m", 1000, 100, 0)
    clock.now_s += 5.0
    decisions = await scaler.tick()
    assert [(d.stage, d.current, d.desired) for d in decisions] == [
        ("prefill", 1, 1),
        ("decode", 4, 2),
    ]
    seen = autoscaler.seen[0]
    assert seen.time_s == 105.0 and seen.rate_rps == pytest.approx(2.0)
    assert (seen.inputs.mean, seen.outputs.mean) == (1000.0, 100.0)
    prefill, decode = seen.stages["prefill"], seen.stages["decode"]
    # Provisioned = ready + starting; queues and batches summed over the answering workers.
    assert (decode.replicas, decode.starting, decode.queued, decode.running) == (4, 1, 1.0, 7.0)
    assert (prefill.replicas, prefill.queued, prefill.running) == (1, 2.0, 1.0)
    # TTFT is the prefill stage's to answer for, TPOT the decode stage's.
    assert prefill.ttft_ms is not None and prefill.tpot_ms is None
    assert decode.tpot_ms is not None and decode.ttft_ms is None
    # Only the change is acted on; every decision is said once, on one line.
    assert fake.scaled == [("decode", 2)]
    assert lines == [
        "autoscale prefill: 1 -> 1 (scale down: scripted) x=1.25",
        "autoscale decode: 4 -> 2 (scale down: scripted) x=1.25",
    ]


@pytest.mark.asyncio
async def test_a_kept_count_is_said_again_only_when_its_reason_changes_kind() -> None:
    metrics, clock, lines = RouterMetrics(), Clock(), list[str]()
    autoscaler = ScriptedAutoscaler({"prefill": 1}, reason="steady: 1 needed")

    async def read_metrics() -> str:
        return metrics.render()[0].decode()

    scaler = GraphScaler(
        plan(), pools(), read_metrics, lines.append, lambda *_: autoscaler, read_load, clock
    )
    for reason in ("steady: 1 needed", "steady: 1 needed for more", "hold: cooling down"):
        autoscaler.reason = reason
        clock.now_s += 1.0
        await scaler.tick()
    # Tick 1 is the first scrape; tick 2 says "steady"; tick 3 is still steady; then hold.
    assert [line.split("(")[1].split(":")[0] for line in lines] == ["steady", "hold"]


@pytest.mark.asyncio
async def test_a_law_sized_from_lengths_is_built_at_the_first_window_with_requests() -> None:
    metrics, clock = RouterMetrics(), Clock()
    built: list[tuple[float, float]] = []

    async def read_metrics() -> str:
        return metrics.render()[0].decode()

    def build(_: GraphPlan, inputs: Lengths, outputs: Lengths) -> Autoscaler:
        built.append((inputs.mean, outputs.mean))
        return ScriptedAutoscaler({})

    scaler = GraphScaler(plan("hpa-queue"), pools(), read_metrics, print, build, read_load, clock)
    for _ in range(3):  # idle: nothing to set its targets from
        clock.now_s += 1.0
        await scaler.tick()
    assert built == []
    metrics.observe_request("m", "http", "ok", ttft_s=0.2, tpot_s=0.03)
    metrics.observe_tokens("m", 300, 50, 0)
    clock.now_s += 1.0
    await scaler.tick()
    assert built == [(300.0, 50.0)]


@pytest.mark.asyncio
async def test_the_real_planner_shrinks_an_idle_decode_pool_to_its_minimum() -> None:
    # No traffic: the planner needs 0 decode replicas, kept at min 1; the default windows
    # (the profile's 60 s start-up time) hold the first decisions.
    metrics, clock = RouterMetrics(), Clock()
    fake = pools()

    async def read_metrics() -> str:
        return metrics.render()[0].decode()

    async def idle(_: str) -> WorkerLoad:
        return WorkerLoad(0, 0, 0)

    scaler = GraphScaler(plan(), fake, read_metrics, print, read_load=idle, clock=clock)
    await scaler.tick()
    for _ in range(62):
        clock.now_s += 1.0
        await scaler.tick()
    assert fake.scaled == [("decode", 1)]


@pytest.mark.asyncio
async def test_switches_are_carried_out_before_the_scales_that_count_on_them() -> None:
    # Scripted: decode grows 4 -> 6, one of the two switched from prefill (1 -> 0). The
    # switch goes first, so that decode's scale to 6 starts one worker, not two.
    metrics, clock = RouterMetrics(), Clock()
    fake = pools()

    @dataclass
    class Switching:
        name: str = "scripted"
        interval_s: float = 1.0

        def step(self, observation: Observation) -> tuple[Decision, ...]:
            return (
                Decision("prefill", 1, 0, "switch: 1 to decode (steady)", {}, switched_out=1),
                Decision(
                    "decode",
                    4,
                    6,
                    "scale up; 1 switched from prefill",
                    {},
                    switched_in=1,
                    switched_from="prefill",
                ),
            )

    async def read_metrics() -> str:
        return metrics.render()[0].decode()

    def build(_: GraphPlan, inputs: Lengths, outputs: Lengths) -> Autoscaler:
        return Switching()

    scaler = GraphScaler(plan(), fake, read_metrics, print, build, read_load, clock)
    await scaler.tick()
    clock.now_s += 1.0
    await scaler.tick()
    assert fake.actions == ["switch prefill decode 1", "scale prefill 0", "scale decode 6"]


def test_a_decision_reads_as_one_line() -> None:
    decision = Decision("decode", 4, 2, "scale down: 2 fit", {"rps": 0.123456, "why": "holt"})
    assert describe(decision) == "autoscale decode: 4 -> 2 (scale down: 2 fit) rps=0.123 why=holt"
    assert describe(Decision("p", 1, 1, "steady", {"ttft": float("inf")})).endswith("ttft=inf")
