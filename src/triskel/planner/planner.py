"""Triskel's planner: desired replicas per stage of one serving graph, every interval.

    observed rate ──► predicted rate one start-up time ahead (predictors.py: the load
                      a replica ordered now will meet) ──► load = max(predicted, observed)
                      + the stage's queue / `backlog_drain_s`
    load ──► replicas each stage needs for its SLO (sizing.py)
    ├─ more than now ──► up at once; and when the SLO is already missed
    │                    (observed TTFT / TPOT over it), at least one more at once
    │                    even if the model says enough (the burst fast path), unless
    │                    a replica is already starting
    ├─ fewer than now ──► down only if (a) still fewer when sized for load × (1 +
    │                    headroom), so the smaller pool is not at the edge it would
    │                    scale up from (consolidation: no 2 ↔ 1 flapping), (b) for the
    │                    whole `scale_down_window_s`, (c) `scale_down_cooldown_s` after
    │                    the stage last changed (both default to the replica's
    │                    start-up time: the ski-rental break-even)
    └─ clamp to each stage's min / max, then to the graph's GPU budget (growth is cut
       first, from the stage furthest above its minimum)

Every decision is a `Decision` with the numbers behind it (rates, predicted TTFT /
TPOT, utilisation, the predictor that answered). `plan` is a pure function of the
configuration, the previous `PlannerState` and one `Observation`: the operator, `triskel
up` and the simulator keep the state and call it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from triskel.common.profiles import LatencyProfile
from triskel.planner.predictors import PredictorName, predict
from triskel.planner.sizing import Lengths, decode_replicas, prefill_replicas, prefill_ttft_ms

Stage = Literal["prefill", "decode", "unified"]


@dataclass(frozen=True, slots=True)
class StageSpec:
    name: str  # the pool
    role: Stage
    profile: LatencyProfile
    min_replicas: int = 1
    max_replicas: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"{self.name}: replicas min ({self.min_replicas}) must be <= max "
                f"({self.max_replicas}) and >= 0"
            )


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    ttft_slo_ms: float
    tpot_slo_ms: float
    ttft_quantile: float = 0.9  # TTFT and the decode batch are sized at this quantile
    predictor: PredictorName = "holt"
    ewma_alpha: float = 0.5
    history_points: int = 30  # observed rates kept for the predictor
    headroom: float = 0.2  # scale down only if the smaller pool still fits load × 1.2
    # None: the stage profile's start-up time. Ski rental: a replica kept idle for as
    # long as a restart takes costs what the restart would; waiting longer before
    # releasing it costs more than getting it back when the load returns.
    scale_down_window_s: float | None = None
    scale_down_cooldown_s: float | None = None
    # Requests waiting at a stage are load too: sized to be served within this time
    # (a queue left by a burst is cleared, not just kept from growing).
    backlog_drain_s: float = 60.0
    kv_target: float = 0.9  # of a decode replica's KV cache
    overhead_ms: float = 0.0  # added to TTFT: KV transfer, first decode step
    gpu_budget: int | None = None  # GPUs for the whole graph
    interval_s: float = 15.0  # between two plans (the HPA controller's sync period)
    # Moving a replica between a graph's prefill and decode pools (drain, switch, rejoin)
    # takes this long; None: never switch roles (switching.py, applied by the
    # `triskel` autoscaler after each plan).
    role_switch_s: float | None = None


@dataclass(frozen=True, slots=True)
class StageObservation:
    replicas: int  # provisioned: ready plus starting (what the scale subresource says)
    starting: int = 0  # of those, not ready yet
    ttft_ms: float | None = None  # observed at the configured quantile
    tpot_ms: float | None = None
    queued: float = 0.0  # requests waiting, all replicas together
    running: float = 0.0  # requests being served, all replicas together


@dataclass(frozen=True, slots=True)
class Observation:
    time_s: float
    rate_rps: float
    inputs: Lengths
    outputs: Lengths
    stages: Mapping[str, StageObservation]

    def stage(self, spec: StageSpec) -> StageObservation:
        """What was seen of the stage; a stage not reported runs its minimum."""
        return self.stages.get(spec.name, StageObservation(replicas=spec.min_replicas))


@dataclass(frozen=True, slots=True)
class PlannerState:
    rates: tuple[float, ...] = ()
    last_change_s: Mapping[str, float] = field(default_factory=dict)
    below_since_s: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    stage: str
    current: int
    desired: int
    reason: str
    numbers: Mapping[str, float | str]
    # Role switching (switching.py): of the change, replicas that come from / go to the
    # other stage of the graph instead of starting from cold / being released.
    switched_in: int = 0
    switched_out: int = 0
    switched_from: str | None = None


def plan(
    config: PlannerConfig,
    stages: tuple[StageSpec, ...],
    state: PlannerState,
    observation: Observation,
) -> tuple[PlannerState, tuple[Decision, ...]]:
    """One interval: the next state and a decision per stage (desired may equal current)."""
    history = (*state.rates, observation.rate_rps)[-config.history_points :]
    # Capacity ordered now serves once it has started: size for the load expected then.
    horizon = max(
        (math.ceil(spec.profile.startup_s / config.interval_s) for spec in stages), default=1
    )
    horizon = max(1, horizon)
    prediction = predict(config.predictor, history, config.ewma_alpha, horizon)
    load_rps = max(prediction.value, observation.rate_rps)
    last_change = dict(state.last_change_s)
    below_since = dict(state.below_since_s)
    decisions = []
    for spec in stages:
        seen = observation.stage(spec)
        backlog_rps = seen.queued / config.backlog_drain_s
        stage_load_rps = load_rps + backlog_rps
        needed, numbers = _needed(config, spec, observation, stage_load_rps)
        numbers = {
            **numbers,
            "observed_rps": observation.rate_rps,
            "predicted_rps": prediction.value,
            "horizon_s": horizon * config.interval_s,
            "backlog_rps": backlog_rps,
            "predictor": prediction.predictor,
        }
        desired, reason = _decide(config, spec, seen, needed, observation, stage_load_rps, numbers)
        desired, reason = _within_bounds(spec, desired, reason)
        window_s = _or_startup(config.scale_down_window_s, spec)
        cooldown_s = _or_startup(config.scale_down_cooldown_s, spec)
        if desired < seen.replicas and reason.startswith("scale down"):
            since = below_since.setdefault(spec.name, observation.time_s)
            waited_s = observation.time_s - since
            cooled_s = observation.time_s - last_change.get(spec.name, -math.inf)
            if waited_s < window_s or cooled_s < cooldown_s:
                desired = seen.replicas
                reason = (
                    f"hold: fewer needed for {waited_s:.0f} s of the {window_s:.0f} s window"
                    if waited_s < window_s
                    else f"hold: changed {cooled_s:.0f} s ago, cooldown {cooldown_s:.0f} s"
                )
        elif desired >= seen.replicas:
            below_since.pop(spec.name, None)
        decisions.append(Decision(spec.name, seen.replicas, desired, reason, numbers))
    decisions = _within_budget(config, stages, decisions)
    for decision in decisions:
        if decision.desired != decision.current:
            last_change[decision.stage] = observation.time_s
            below_since.pop(decision.stage, None)
    next_state = PlannerState(history, last_change, below_since)
    return next_state, tuple(decisions)


def _or_startup(value_s: float | None, spec: StageSpec) -> float:
    return spec.profile.startup_s if value_s is None else value_s


def _needed(
    config: PlannerConfig, spec: StageSpec, observation: Observation, rate_rps: float
) -> tuple[int, dict[str, float | str]]:
    return stage_needs(config, spec, observation.inputs, observation.outputs, rate_rps)


def stage_needs(
    config: PlannerConfig, spec: StageSpec, inputs: Lengths, outputs: Lengths, rate_rps: float
) -> tuple[int, dict[str, float | str]]:
    """Replicas the stage needs for `rate_rps`, and the predictions behind the count
    (also what a static pool for a known peak is sized with)."""
    numbers: dict[str, float | str] = {}
    count = 0
    if spec.role in ("prefill", "unified"):
        prefill = prefill_replicas(
            spec.profile,
            rate_rps,
            inputs,
            config.ttft_slo_ms,
            config.ttft_quantile,
            config.overhead_ms,
        )
        numbers |= {
            "prefill_replicas": prefill.replicas,
            "predicted_ttft_ms": prefill.ttft_ms,
            "prefill_utilization": prefill.utilization,
        }
        count += prefill.replicas
    if spec.role in ("decode", "unified"):
        decode = decode_replicas(
            spec.profile,
            rate_rps,
            inputs,
            outputs,
            config.tpot_slo_ms,
            config.kv_target,
            config.ttft_quantile,
        )
        numbers |= {
            "decode_replicas": decode.replicas,
            "predicted_tpot_ms": decode.tpot_ms,
            "decode_batch": decode.batch,
            "kv_fraction": decode.kv_fraction,
        }
        # A unified replica is taken to give each phase its whole capacity, never both
        # at once: the sum is an upper bound (interference makes it less loose).
        count += decode.replicas
    return count, numbers


def _decide(
    config: PlannerConfig,
    spec: StageSpec,
    seen: StageObservation,
    needed: int,
    observation: Observation,
    load_rps: float,
    numbers: dict[str, float | str],
) -> tuple[int, str]:
    missed = _slo_missed(config, spec, seen, observation, load_rps)
    if missed and needed <= seen.replicas:
        if seen.starting > 0:  # the fast path's replica is already on its way
            return seen.replicas, f"hold: {missed}, {seen.starting} starting"
        return seen.replicas + 1, f"scale up: {missed} (fast path: one more at once)"
    if needed > seen.replicas:
        why = f"; {missed}" if missed else ""
        return needed, f"scale up: {needed} needed for {load_rps:.2f} req/s{why}"
    if needed < seen.replicas:
        with_headroom, _ = _needed(config, spec, observation, load_rps * (1 + config.headroom))
        numbers["replicas_with_headroom"] = with_headroom
        if with_headroom < seen.replicas:
            return with_headroom, (
                f"scale down: {with_headroom} fit {load_rps:.2f} req/s with "
                f"{config.headroom:.0%} headroom"
            )
        return seen.replicas, (
            f"steady: {needed} would fit {load_rps:.2f} req/s but not with "
            f"{config.headroom:.0%} headroom"
        )
    return seen.replicas, f"steady: {needed} needed for {load_rps:.2f} req/s"


def _slo_missed(
    config: PlannerConfig,
    spec: StageSpec,
    seen: StageObservation,
    observation: Observation,
    load_rps: float,
) -> str | None:
    """The SLO the stage misses in a way more replicas can fix: over the SLO and over
    what the model expects of the current count. Prompts too long to meet the TTFT SLO
    on an idle replica miss it at any count; a p90 they push over the SLO is expected,
    and adding replicas for it would buy nothing."""
    ttft, tpot = seen.ttft_ms, seen.tpot_ms
    if spec.role != "decode" and ttft is not None and ttft > config.ttft_slo_ms:
        expected_ms, _ = prefill_ttft_ms(
            spec.profile,
            load_rps,
            observation.inputs,
            max(1, seen.replicas),
            config.ttft_quantile,
            config.overhead_ms,
        )
        if ttft > expected_ms:
            return f"TTFT {ttft:.0f} ms over the {config.ttft_slo_ms:.0f} ms SLO"
    if spec.role != "prefill" and tpot is not None and tpot > config.tpot_slo_ms:
        return f"TPOT {tpot:.0f} ms over the {config.tpot_slo_ms:.0f} ms SLO"
    return None


def _within_bounds(spec: StageSpec, desired: int, reason: str) -> tuple[int, str]:
    if desired > spec.max_replicas:
        return spec.max_replicas, f"{reason}; capped at max {spec.max_replicas}"
    if desired < spec.min_replicas:
        return spec.min_replicas, f"{reason}; kept at min {spec.min_replicas}"
    return desired, reason


def _within_budget(
    config: PlannerConfig, stages: tuple[StageSpec, ...], decisions: list[Decision]
) -> list[Decision]:
    """Cuts replicas until the graph fits its GPU budget: growth first, one replica at a
    time from the stage furthest above its minimum (current counts are not cut below
    what runs now unless growth alone cannot make room)."""
    if config.gpu_budget is None:
        return decisions
    specs = {spec.name: spec for spec in stages}
    desired = {d.stage: d.desired for d in decisions}

    def gpus() -> int:
        return sum(desired[name] * specs[name].profile.num_gpus for name in desired)

    cut = dict.fromkeys(desired, 0)
    for growth_only in (True, False):
        while gpus() > config.gpu_budget:
            candidates = [
                d
                for d in decisions
                if desired[d.stage] > specs[d.stage].min_replicas
                and (not growth_only or desired[d.stage] > d.current)
            ]
            if not candidates:
                break
            chosen = max(candidates, key=lambda d: desired[d.stage] - specs[d.stage].min_replicas)
            desired[chosen.stage] -= 1
            cut[chosen.stage] += 1
    return [
        d
        if cut[d.stage] == 0
        else replace(
            d,
            desired=desired[d.stage],
            reason=f"{d.reason}; {cut[d.stage]} cut to fit the {config.gpu_budget}-GPU budget",
        )
        for d in decisions
    ]
