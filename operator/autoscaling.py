"""Autoscaling a ServingGraph, the pure part: what the planner sees and what to patch.

    ServingGraph spec ──► PlannerConfig          WorkerPools ──► StageSpec per pool
    router scrapes (before, after) ──► ModelWindow ─┐
    pools' desired / ready replicas ────────────────┴──► Observation ──► autoscaler.step
    decisions ──► PoolAction per pool: the status record, the scale patch and event
                  (only when the count changes)

A pool with parallelism.ep > 1 is counted in EP ranks, not replicas (`elastic_ep`).

No I/O here: the handler (`handlers/autoscaling.py`) fetches, steps and patches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from triskel.common.api import EngineType, WorkerPoolSpec
from triskel.common.profiles import LatencyProfile, as_run, load_profile
from triskel.common.resources import AutoscalingMode, AutoscalingSpec, ServingGraphSpec
from triskel.operator.elastic_ep import ep_size_bounds, is_elastic
from triskel.planner.autoscalers import STAGE_OF_ROLE
from triskel.planner.planner import (
    Decision,
    Observation,
    PlannerConfig,
    StageObservation,
    StageSpec,
)
from triskel.planner.router_metrics import ModelWindow, Scrape

Json = dict[str, Any]

# TTFT is sized at the SLO's attainment quantile; at 1.0 the quantile is unbounded.
MAX_TTFT_QUANTILE = 0.99


class AutoscalingProblem(Exception):
    """The graph cannot be autoscaled as it stands; `reason` is one CamelCase word and
    the message names the field and value."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class PoolReading:
    """What the operator reads of one WorkerPool before a step."""

    spec: WorkerPoolSpec
    ready_replicas: int
    # EP ranks per replica now, for a pool scaled in EP ranks (`elastic_ep`); None: in
    # replicas.
    ep_size: int | None = None

    @property
    def units(self) -> int:
        """What the planner counts: replicas, or EP ranks over all replicas."""
        return self.spec.replicas.count * (self.ep_size or 1)


@dataclass(frozen=True, slots=True)
class PoolAction:
    """What one decision asks of one pool."""

    pool: str
    desired: int
    record: Json  # status.autoscaling, camelCase
    scale_to: int | None  # spec.replicas through the scale subresource; None: keep
    event: str | None  # the Normal `Scaled` event's message, when the count changes


def planner_config(graph: ServingGraphSpec, autoscaling: AutoscalingSpec) -> PlannerConfig:
    """The planner's settings from the graph's SLOs and its autoscaling section."""
    defaults = PlannerConfig(graph.slo.ttft_ms, graph.slo.tpot_ms)
    return PlannerConfig(
        ttft_slo_ms=graph.slo.ttft_ms,
        tpot_slo_ms=graph.slo.tpot_ms,
        ttft_quantile=min(graph.slo.attainment, MAX_TTFT_QUANTILE),
        scale_down_window_s=autoscaling.scale_down_window_s,
        scale_down_cooldown_s=autoscaling.scale_down_cooldown_s,
        gpu_budget=autoscaling.gpu_budget,
        interval_s=autoscaling.interval_s or defaults.interval_s,
    )


def stage_specs(graph_name: str, pools: Mapping[str, WorkerPoolSpec]) -> tuple[StageSpec, ...]:
    """One stage per pool, bounded by its replicas min / max and sized with its latency
    profile as its workers run it. AutoscalingProblem for a pool the planner cannot size."""
    stages = []
    for name, spec in pools.items():
        where = f"ServingGraph {graph_name}: WorkerPool {name}"
        stage = STAGE_OF_ROLE.get(spec.role)
        if stage is None:
            raise AutoscalingProblem(
                "UnsupportedRole",
                f"{where}: spec.role ({spec.role.value}) cannot be autoscaled: the planner "
                "sizes prefill, decode and unified pools",
            )
        try:
            profile = load_profile(spec.profile.name)
        except ValueError as error:
            raise AutoscalingProblem("UnknownProfile", f"{where}: {error}") from None
        bounds = (spec.replicas.min, spec.replicas.max)
        if is_elastic(spec):
            bounds = _rank_bounds(where, profile, spec)
        stages.append(StageSpec(name, stage, _as_run(where, profile, spec), *bounds))
    return tuple(stages)


def _rank_bounds(where: str, profile: LatencyProfile, spec: WorkerPoolSpec) -> tuple[int, int]:
    """An elastic EP pool is sized in ranks with its per-rank profile: its replicas
    times the EP sizes a group may take."""
    if profile.moe is None:
        raise AutoscalingProblem(
            "NotMoe",
            f"{where}: spec.parallelism.ep ({spec.parallelism.ep}) needs a profile with a "
            f"`moe:` section; {profile.name} has none",
        )
    low, high = ep_size_bounds(spec)
    return spec.replicas.count * low, spec.replicas.count * high


def _as_run(where: str, profile: LatencyProfile, spec: WorkerPoolSpec) -> LatencyProfile:
    """The profile with the pool's KV capacity and, for mock workers, their `timeScale`
    (`profiles.as_run`); real engines run at the speed of their GPUs."""
    scale = spec.profile.time_scale if spec.engine.type is EngineType.MOCK else 1.0
    if scale == 0:
        raise AutoscalingProblem(
            "InstantWorkers",
            f"{where}: spec.profile.timeScale (0): instant workers cannot be sized for "
            "an SLO; use a positive timeScale with autoscaling",
        )
    return as_run(profile, scale, spec.profile.kv_capacity_tokens)


@dataclass(frozen=True, slots=True)
class RouterLoad:
    """What one scrape of the router says about a model's requests right now."""

    # `triskel_inflight_requests`: requests the router has in flight (None: not exported).
    in_flight: float | None = None
    # `triskel_stage_requests_waiting` / `_running` by role: (waiting, running) as the
    # stage's workers report them; empty from a router that exports none.
    stages: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def observation(
    time_s: float,
    window: ModelWindow,
    pools: Mapping[str, PoolReading],
    load: RouterLoad,
) -> Observation:
    """What the autoscaler sees: the window's load and latencies, and per pool the
    replicas asked for (`desired`, as the scale subresource says), how many of them are
    not ready yet, and its requests queued and running: its role's, as the router's
    per-stage gauges report them, shared by ready replicas among the graph's pools of that
    role. A router without those gauges counts requests per model only: then a graph of
    one pool, which serves them all, gets them as `running`, and no pool a queue."""
    stages = {}
    for name, reading in pools.items():
        desired = reading.units
        ready = reading.ready_replicas * (reading.ep_size or 1)
        queued, running = _requests_of(name, pools, load)
        stages[name] = StageObservation(
            replicas=desired,
            starting=max(0, desired - ready),
            ttft_ms=window.ttft_ms,
            tpot_ms=window.tpot_ms,
            queued=queued,
            running=running,
        )
    return Observation(time_s, window.rate_rps, window.inputs, window.outputs, stages)


def _requests_of(
    pool: str, pools: Mapping[str, PoolReading], load: RouterLoad
) -> tuple[float, float]:
    role = str(pools[pool].spec.role)
    if role in load.stages:
        waiting, running = load.stages[role]
        same_role = [r for r in pools.values() if str(r.spec.role) == role]
        ready = sum(r.ready_replicas for r in same_role)
        share = pools[pool].ready_replicas / ready if ready else 1 / len(same_role)
        return waiting * share, running * share
    if load.in_flight is not None and len(pools) == 1:
        return 0.0, load.in_flight
    return 0.0, 0.0


def router_load(scrape: Scrape, model: str) -> RouterLoad:
    """`model`'s requests in one scrape of the router's /metrics (parsed once, shared with
    `model_window`). MetricsError when the text is not Prometheus exposition."""
    in_flight: float | None = None
    waiting: dict[str, float] = {}
    running: dict[str, float] = {}
    for (name, label_items), value in scrape.samples.items():
        labels = dict(label_items)
        if labels.get("model") != model:
            continue
        if name == "triskel_inflight_requests":
            in_flight = float(value)
        elif name == "triskel_stage_requests_waiting":
            waiting[labels.get("role", "")] = float(value)
        elif name == "triskel_stage_requests_running":
            running[labels.get("role", "")] = float(value)
    roles = waiting.keys() | running.keys()
    stages = {role: (waiting.get(role, 0.0), running.get(role, 0.0)) for role in roles}
    return RouterLoad(in_flight, stages)


def pool_actions(
    graph_name: str,
    policy: str,
    decisions: Sequence[Decision],
    decided_at: str,
    mode: AutoscalingMode = AutoscalingMode.SCALE,
    elastic: frozenset[str] = frozenset(),
) -> tuple[PoolAction, ...]:
    """Every decision is recorded in its pool's status; in `scale` mode one that changes
    the count is also a scale patch and an event (in `recommend` mode KEDA or an HPA acts
    on the published count, and posts its own events). The `elastic` pools' counts are
    EP ranks: never a scale patch, their EP step posts its own event."""
    actions = []
    for decision in decisions:
        numbers = {key: format_number(value) for key, value in decision.numbers.items()}
        record = {
            "graph": graph_name,
            "policy": policy,
            "currentReplicas": decision.current,
            "desiredReplicas": decision.desired,
            "reason": decision.reason,
            "decidedAt": decided_at,
            "numbers": numbers,
        }
        changes = (
            decision.desired != decision.current
            and mode is AutoscalingMode.SCALE
            and decision.stage not in elastic
        )
        event = None
        if changes:
            figures = ", ".join(f"{key}={value}" for key, value in numbers.items())
            event = (
                f"{decision.current} -> {decision.desired} replicas by {policy} "
                f"(ServingGraph {graph_name}): {decision.reason}; {figures}"
            )
        actions.append(
            PoolAction(
                decision.stage,
                decision.desired,
                record,
                decision.desired if changes else None,
                event,
            )
        )
    return tuple(actions)


def format_number(value: float | str) -> str:
    """Four significant digits; whole numbers without a point; words as they are."""
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"
