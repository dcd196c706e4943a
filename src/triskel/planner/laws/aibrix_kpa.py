"""AIBrix's KPA (a Knative-style pod autoscaler for LLM pods), as v0.7.0 ships it.

vllm-project/aibrix v0.7.0, pkg/controller/podautoscaler/algorithm/kpa.go and the
controller around it, re-evaluated every 10 s, on each stage's concurrency (requests
waiting or running):

    S = mean over the stable window (180 s),  P = mean over the panic window (60 s)
    panic mode when S <= 0 or P / S > 2.0
    for X in (S, P):  dX = ceil(X / T) when the per-replica value is outside T ± 10%,
                      else n;  then clamped to [floor(n / 2), max(1, ceil(2 n))]
    desired = dS, or max(dS, dP) in panic mode; then the stage's min / max
    cooldowns: scale-up takes the highest recommendation of the last 0 s (none), a
    scale-down the LOWEST of the last 300 s (the code does this; the HPA takes the
    highest), then min / max again.

A choice had to be made: since v0.5.0 the shipped code divides the per-pod average by
the target without multiplying by the replica count, so its answer does not grow with
the pool, while Knative's algorithm and AIBrix's own tests read the value as the total.
This follows the intent: the count comes from the total (ceil(total / T)) and the
tolerance band from the per-replica average. AIBrix has no default target (T is required,
per replica). The "no scale-down in panic" hold is a no-op as shipped, and is left out.
Like the HPA, it knows nothing of SLOs or of prefill and decode.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from triskel.planner.planner import Decision, Observation, StageSpec

STABLE_WINDOW_S = 180.0
PANIC_WINDOW_S = 60.0
PANIC_THRESHOLD = 2.0
TOLERANCE = 0.1
MAX_SCALE_UP_RATE = 2.0
MAX_SCALE_DOWN_RATE = 2.0
SCALE_DOWN_COOLDOWN_S = 300.0


@dataclass(frozen=True, slots=True)
class KpaSettings:
    target: float  # concurrency per replica (AIBrix's required targetValue)


@dataclass(frozen=True, slots=True)
class KpaState:
    samples: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    recommendations: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)


def step(
    stages: tuple[StageSpec, ...],
    settings: KpaSettings,
    state: KpaState,
    observation: Observation,
) -> tuple[KpaState, tuple[Decision, ...]]:
    now_s = observation.time_s
    samples, recommendations = dict(state.samples), dict(state.recommendations)
    decisions = []
    for spec in stages:
        seen = observation.stage(spec)
        n = seen.replicas
        kept = [(t, c) for t, c in samples.get(spec.name, ()) if t > now_s - STABLE_WINDOW_S]
        window = (*kept, (now_s, seen.queued + seen.running))
        samples[spec.name] = window
        stable = _mean(c for _, c in window)
        panic = _mean(c for t, c in window if t > now_s - PANIC_WINDOW_S)
        in_panic = stable <= 0.0 or panic / stable > PANIC_THRESHOLD
        desired = _desired(stable, n, settings.target)
        if in_panic:
            desired = max(desired, _desired(panic, n, settings.target))
        desired = min(max(desired, spec.min_replicas), spec.max_replicas)
        kept_recs = [
            (t, r)
            for t, r in recommendations.get(spec.name, ())
            if t > now_s - SCALE_DOWN_COOLDOWN_S
        ]
        recs = (*kept_recs, (now_s, float(desired)))
        recommendations[spec.name] = recs
        if desired < n:  # the lowest recommendation of the cooldown window
            desired = round(min(r for _, r in recs))
        desired = min(max(desired, spec.min_replicas), spec.max_replicas)
        mode = "panic" if in_panic else "stable"
        reason = f"{mode}: {stable:.1f} in flight (stable window), {panic:.1f} (panic window)"
        numbers: dict[str, float | str] = {
            "stable_concurrency": stable,
            "panic_concurrency": panic,
            "target": settings.target,
        }
        decisions.append(Decision(spec.name, n, desired, reason, numbers))
    return KpaState(samples, recommendations), tuple(decisions)


def _desired(total: float, n: int, target: float) -> int:
    per_replica = total / n if n > 0 else total
    if target * (1 - TOLERANCE) <= per_replica <= target * (1 + TOLERANCE):
        wanted = n
    else:
        wanted = math.ceil(total / target)
    low = math.floor(n / MAX_SCALE_DOWN_RATE)
    high = max(1, math.ceil(MAX_SCALE_UP_RATE * n))
    return min(max(wanted, low), high)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0
