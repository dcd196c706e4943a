"""An autoscaling policy inside a simulated run: observe, decide, act, record.

Every `interval_s` of virtual time the controller builds the same `Observation` the
operator builds from the router's /metrics (rates and lengths of recent arrivals,
TTFT / TPOT quantiles of recent requests, queues and replica counts per stage), asks
the policy (`triskel.planner.autoscalers`) and starts or drains instances to match
its decisions through an actuator (`actuators.py`: a replica per instance, EP groups,
or elastic EP steps). Starting takes the profile's `startup_s` (or the EP step's
time); draining stops new work at once and frees the GPU when the instance is empty
(`Fleet`).

What it saw and did is kept per tick (`TimelinePoint`) and per decision
(`DecisionRecord`), for the report, the plot and the decisions JSON.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from triskel.common.api import Role
from triskel.planner.autoscalers import Autoscaler
from triskel.planner.planner import Observation, StageObservation, StageSpec
from triskel.planner.sizing import Lengths
from triskel.simulator.actuators import Actuator, Replicas
from triskel.simulator.records import RequestRecord
from triskel.simulator.simulation import Simulation
from triskel.traces.types import TraceRequest

# What a Prometheus `rate(...[30s])` or quantile over the same window sees; a policy
# with a longer interval (Dynamo's 180 s) observes its whole interval.
MIN_WINDOW_S = 30.0
# Lengths move slowly and a 30 s sample of them is noisy (a few long prompts swing the
# mean): they are read over 5 minutes, as `rate(tokens[5m]) / rate(requests[5m])` would.
LENGTHS_WINDOW_S = 300.0
ROLES: Mapping[str, Role] = {
    "prefill": Role.PREFILL,
    "decode": Role.DECODE,
    "unified": Role.UNIFIED,
}


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    time_s: float
    stage: str
    current: int
    desired: int
    reason: str
    numbers: Mapping[str, float | str]


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    time_s: float
    rate_rps: float
    replicas: Mapping[str, int]  # provisioned per stage (ready + starting)
    ready: Mapping[str, int]
    attainment: float | None  # of requests that finished in the window; None if none


class AutoscaleController:
    """Drives one policy in one run (`triskel.simulator.simulation.Controller`)."""

    def __init__(
        self,
        autoscaler: Autoscaler,
        stages: tuple[StageSpec, ...],
        ttft_slo_s: float,
        tpot_slo_s: float,
        quantile: float = 0.9,
        actuator: Actuator | None = None,
        role_switch_s: float = 0.0,  # how long a replica takes to change role
    ) -> None:
        self._autoscaler = autoscaler
        self._role_switch_s = role_switch_s
        self._actuator = actuator or Replicas()
        self._stages = stages
        self._ttft_slo_s = ttft_slo_s
        self._tpot_slo_s = tpot_slo_s
        self._quantile = quantile
        self._window_s = max(MIN_WINDOW_S, autoscaler.interval_s)
        self._arrivals: deque[TraceRequest] = deque()
        self._recent: deque[TraceRequest] = deque()  # over the lengths window
        self._first_tokens: deque[tuple[float, float]] = deque()  # (time, TTFT)
        self._finishes: deque[tuple[float, float, bool]] = deque()  # (time, TPOT, met SLO)
        self._lengths = (Lengths(1.0, 1.0, 1.0), Lengths(1.0, 1.0, 1.0))
        self.decisions: list[DecisionRecord] = []
        self.timeline: list[TimelinePoint] = []

    @property
    def interval_s(self) -> float:
        return self._autoscaler.interval_s

    # -- what the run reports -------------------------------------------------------

    def arrived(self, request: TraceRequest) -> None:
        self._arrivals.append(request)
        self._recent.append(request)

    def first_token(self, now_s: float, ttft_s: float) -> None:
        self._first_tokens.append((now_s, ttft_s))

    def finished(self, record: RequestRecord) -> None:
        if record.finish_s is None or record.tpot_s is None or record.ttft_s is None:
            return
        met = record.ttft_s <= self._ttft_slo_s and record.tpot_s <= self._tpot_slo_s
        self._finishes.append((record.finish_s, record.tpot_s, met))

    # -- the interval -----------------------------------------------------------------

    def tick(self, now_s: float, simulation: Simulation) -> None:
        observation = self._observe(now_s, simulation)
        decisions = self._autoscaler.step(observation)
        for decision in decisions:
            self.decisions.append(
                DecisionRecord(
                    now_s,
                    decision.stage,
                    decision.current,
                    decision.desired,
                    decision.reason,
                    dict(decision.numbers),
                )
            )
        # Role switches first: the receiving stage's growth they cover starts no replica,
        # the donor's replicas they take are not drained twice.
        for decision in decisions:
            if decision.switched_in and decision.switched_from is not None:
                to_role = ROLES[self._spec(decision.stage).role]
                from_role = ROLES[self._spec(decision.switched_from).role]
                for _ in range(decision.switched_in):
                    simulation.switch(from_role, to_role, self._role_switch_s)
        for decision in decisions:
            role = ROLES[self._spec(decision.stage).role]
            current = decision.current + decision.switched_in - decision.switched_out
            self._actuator.apply(role, current, decision.desired, simulation)
        self._record(now_s, observation, simulation)

    def _observe(self, now_s: float, simulation: Simulation) -> Observation:
        since_s = now_s - self._window_s
        while self._arrivals and self._arrivals[0].arrival_s <= since_s:
            self._arrivals.popleft()
        lengths_since_s = now_s - max(LENGTHS_WINDOW_S, self._window_s)
        while self._recent and self._recent[0].arrival_s <= lengths_since_s:
            self._recent.popleft()
        while self._first_tokens and self._first_tokens[0][0] <= since_s:
            self._first_tokens.popleft()
        while self._finishes and self._finishes[0][0] <= since_s:
            self._finishes.popleft()
        window_s = min(self._window_s, now_s) or self._window_s
        if self._recent:  # else the last lengths seen stand
            self._lengths = (
                Lengths.of([r.num_input_tokens for r in self._recent], self._quantile),
                Lengths.of([r.num_output_tokens for r in self._recent], self._quantile),
            )
        ttft_ms = _quantile_ms([t for _, t in self._first_tokens], self._quantile)
        tpot_ms = _quantile_ms([t for _, t, _ in self._finishes], self._quantile)
        stages = {}
        for spec in self._stages:
            role = ROLES[spec.role]
            provisioned, starting = simulation.fleet.provisioned(role)
            loads = [i.endpoint().load for i in simulation.fleet.routable(role)]
            stages[spec.name] = StageObservation(
                replicas=provisioned,
                starting=starting,
                ttft_ms=ttft_ms if spec.role != "decode" else None,
                tpot_ms=tpot_ms if spec.role != "prefill" else None,
                queued=float(sum(load.num_waiting_requests for load in loads)),
                running=float(sum(load.num_running_requests for load in loads)),
            )
        inputs, outputs = self._lengths
        return Observation(now_s, len(self._arrivals) / window_s, inputs, outputs, stages)

    def _record(self, now_s: float, observation: Observation, simulation: Simulation) -> None:
        replicas, ready = {}, {}
        for spec in self._stages:
            provisioned, starting = simulation.fleet.provisioned(ROLES[spec.role])
            replicas[spec.name] = provisioned
            ready[spec.name] = provisioned - starting
        met = [ok for _, _, ok in self._finishes]
        attainment = sum(met) / len(met) if met else None
        self.timeline.append(
            TimelinePoint(now_s, observation.rate_rps, replicas, ready, attainment)
        )

    def _spec(self, name: str) -> StageSpec:
        return next(spec for spec in self._stages if spec.name == name)


def _quantile_ms(samples_s: list[float], quantile: float) -> float | None:
    if not samples_s:
        return None
    ordered = sorted(samples_s)
    index = min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))
    return ordered[index] * 1000.0
