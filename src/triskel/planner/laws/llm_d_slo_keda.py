"""llm-d's SLO-aware autoscaling law, run by KEDA through a HorizontalPodAutoscaler.

As the llm-d `release-0.10` guide ships it (llm-d/llm-d
guides/workload-autoscaling/slo-aware/README.md and the derivation in
docs/architecture/advanced/autoscaling/slo-aware-keda.md): a reactive law on how far
latency is over its SLO, with a dead band, not a queueing model.

    s_raw = max(p90 TTFT / TTFT SLO, p90 TPOT / TPOT SLO), 0 without traffic
    s     = mean over 45 s of min(s_raw, 2.0)            (clamped before smoothing)
    s > 0.55:  d = n + ceil(n · (s·c / 0.55 − 1))          c = ready / provisioned (credit
                                                           for replicas still starting)
    s < 0.40:  d = n − floor(n · (1 − s / 0.40))
    otherwise  d = n                                      (the dead band)

then the HPA acts on d: tolerance 0.1 (no change when |d/n − 1| <= 0.1), scale-up
stabilised over 30 s (the lowest recommendation of the window) and limited to
max(100%, 4 pods) per 60 s, scale-down stabilised over 180 s (the highest) and limited
to 1 pod per 120 s; the guide's bounds are 3 to 8 replicas (here: each stage's own).
SLOs in the guide: TTFT 3 s, TPOT 100 ms.

The guide scales one pool and calls a prefill / decode split future work ("TTFT would
drive the prefill pool and TPOT the decode pool"): that is what this does for P/D
stages; a unified stage uses the guide's max of both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from triskel.planner.planner import Decision, Observation, StageObservation, StageSpec

SMOOTHING_S = 45.0
CLAMP = 2.0
THETA_UP = 0.55
THETA_DOWN = 0.40
TOLERANCE = 0.1
UP_WINDOW_S, UP_PERIOD_S, UP_PODS, UP_PERCENT = 30.0, 60.0, 4, 100.0
DOWN_WINDOW_S, DOWN_PERIOD_S, DOWN_PODS = 180.0, 120.0, 1


@dataclass(frozen=True, slots=True)
class LlmdSettings:
    ttft_slo_ms: float = 3000.0
    tpot_slo_ms: float = 100.0


@dataclass(frozen=True, slots=True)
class LlmdState:
    signals: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    # (time, value) points: recommendations and replica changes, kept for their windows.
    recommendations: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    changes: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)


def step(
    stages: tuple[StageSpec, ...],
    settings: LlmdSettings,
    state: LlmdState,
    observation: Observation,
) -> tuple[LlmdState, tuple[Decision, ...]]:
    now_s = observation.time_s
    signals, recommendations, changes = (
        dict(state.signals),
        dict(state.recommendations),
        dict(state.changes),
    )
    decisions = []
    for spec in stages:
        seen = observation.stage(spec)
        n = seen.replicas
        raw = min(_raw_signal(spec, seen, settings), CLAMP)
        window = (*_recent(signals.get(spec.name, ()), now_s, SMOOTHING_S), (now_s, raw))
        signals[spec.name] = window
        s = sum(v for _, v in window) / len(window)
        d = _law(n, s, (n - seen.starting) / n if n > 0 else 1.0)
        if n > 0 and abs(d / n - 1.0) <= TOLERANCE:
            d = n
        recs = (*_recent(recommendations.get(spec.name, ()), now_s, DOWN_WINDOW_S), (now_s, d))
        recommendations[spec.name] = recs
        up = round(min(r for t, r in recs if t > now_s - UP_WINDOW_S))
        down = round(max(r for _, r in recs))
        desired = n
        if desired < up:
            desired = up
        if desired > down:
            desired = down
        history = _recent(changes.get(spec.name, ()), now_s, max(UP_PERIOD_S, DOWN_PERIOD_S))
        added = round(sum(c for t, c in history if c > 0 and t > now_s - UP_PERIOD_S))
        removed = -round(sum(c for t, c in history if c < 0 and t > now_s - DOWN_PERIOD_S))
        if desired > n:
            start = n - added
            desired = min(desired, max(start + UP_PODS, math.ceil(start * (1 + UP_PERCENT / 100))))
            desired = max(desired, n)
        elif desired < n:
            desired = max(desired, n + removed - DOWN_PODS)
            desired = min(desired, n)
        desired = min(max(desired, spec.min_replicas), spec.max_replicas)
        if desired != n:
            history = (*history, (now_s, desired - n))
        changes[spec.name] = history
        numbers: dict[str, float | str] = {"signal": s, "raw_signal": raw, "law_desired": d}
        reason = f"signal {s:.2f} (up above {THETA_UP}, down below {THETA_DOWN})"
        decisions.append(Decision(spec.name, n, desired, reason, numbers))
    return LlmdState(signals, recommendations, changes), tuple(decisions)


def _raw_signal(spec: StageSpec, seen: StageObservation, settings: LlmdSettings) -> float:
    ttft = 0.0 if seen.ttft_ms is None else seen.ttft_ms / settings.ttft_slo_ms
    tpot = 0.0 if seen.tpot_ms is None else seen.tpot_ms / settings.tpot_slo_ms
    if spec.role == "prefill":
        return ttft
    if spec.role == "decode":
        return tpot
    return max(ttft, tpot)


def _law(n: int, s: float, c: float) -> int:
    if s > THETA_UP:
        return n + math.ceil(n * (s * c / THETA_UP - 1.0))
    if s < THETA_DOWN:
        return n - math.floor(n * (1.0 - s / THETA_DOWN))
    return n


def _recent(
    points: tuple[tuple[float, float], ...], now_s: float, window_s: float
) -> tuple[tuple[float, float], ...]:
    return tuple((t, v) for t, v in points if t > now_s - window_s)
