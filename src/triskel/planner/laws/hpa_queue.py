"""A plain Kubernetes HorizontalPodAutoscaler on queue length per replica.

The algorithm of the HPA controller (Kubernetes v1.30 documentation, "Horizontal Pod
Autoscaling", algorithm details and configurable scaling behaviour):

    desired = ceil(current × metric / target)          metric: mean per ready pod
    no change while |metric / target − 1| <= tolerance (0.1, the controller's
        --horizontal-pod-autoscaler-tolerance default)
    scale down: the highest desired count of the last 300 s (the default
        scaleDown.stabilizationWindowSeconds), and at most 100% of pods per 15 s
    scale up: no stabilisation (window 0), at most max(100% of pods, 4 pods) per 15 s

The metric here is each stage's queue (waiting requests) per replica, as users wire
`vllm:num_requests_waiting` through a Prometheus adapter; the target is theirs to
choose (HPA has none): `target_queue` per replica. It knows nothing of SLOs or of
prefill and decode: each stage is scaled on its own queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from triskel.planner.planner import Decision, Observation, StageSpec

TOLERANCE = 0.1
SCALE_DOWN_WINDOW_S = 300.0
SCALE_UP_MIN_PODS = 4  # per 15 s, or 100% of current, whichever is more


@dataclass(frozen=True, slots=True)
class HpaState:
    # (time, desired) recommendations per stage, for the scale-down window.
    recommendations: Mapping[str, tuple[tuple[float, int], ...]] = field(default_factory=dict)


def step(
    stages: tuple[StageSpec, ...],
    target_queue: float,
    state: HpaState,
    observation: Observation,
) -> tuple[HpaState, tuple[Decision, ...]]:
    recommendations = dict(state.recommendations)
    decisions = []
    for spec in stages:
        seen = observation.stage(spec)
        current, queued = seen.replicas, seen.queued
        per_pod = queued / current if current > 0 else queued
        ratio = per_pod / target_queue
        raw = current if abs(ratio - 1.0) <= TOLERANCE else math.ceil(current * ratio)
        if current == 0:
            raw = 1 if queued > 0 else 0
        raw = min(max(raw, spec.min_replicas), spec.max_replicas)
        since_s = observation.time_s - SCALE_DOWN_WINDOW_S
        kept = [(t, n) for t, n in recommendations.get(spec.name, ()) if t > since_s]
        window = (*kept, (observation.time_s, raw))
        recommendations[spec.name] = window
        if raw < current:
            desired = max(raw, max(n for _, n in window))  # stabilised: highest of 300 s
            desired = min(desired, current)
            reason = f"scale down to the highest of the last {SCALE_DOWN_WINDOW_S:.0f} s"
        elif raw > current:
            desired = min(raw, max(2 * current, current + SCALE_UP_MIN_PODS))
            reason = f"scale up: {per_pod:.1f} queued per replica, target {target_queue:g}"
        else:
            desired, reason = current, "within tolerance"
        numbers: dict[str, float | str] = {"queued_per_replica": per_pod, "raw_desired": raw}
        decisions.append(Decision(spec.name, current, desired, reason, numbers))
    return HpaState(recommendations), tuple(decisions)
