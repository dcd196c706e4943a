"""A Knative-style Pod Autoscaler (KPA), as AIBrix ships it for LLM pods.

Knative's algorithm (Knative Serving autoscaler docs, "Configuring the autoscaler"), on
each stage's concurrency (requests in flight, waiting or running, per ready replica):

    stable   = mean concurrency over the last `stable_window_s`
    panic    = mean concurrency over the last `panic_window_s` (a fraction of the stable)
    desired_stable = ceil(stable / target),  desired_panic = ceil(panic / target)
    enter panic mode when desired_panic / ready >= panic_threshold; leave it once a whole
        stable window passes without that
    in panic mode: desired = desired_panic, never below what panic mode already asked
    otherwise:     desired = desired_stable
    rate limits:   desired <= ceil(max_scale_up_rate × ready),
                   desired >= floor(ready / max_scale_down_rate)

Like the HPA it knows nothing of SLOs or of prefill and decode: each stage is scaled on
its own concurrency against `target`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from triskel.planner.planner import Decision, Observation, StageObservation, StageSpec


@dataclass(frozen=True, slots=True)
class KpaSettings:
    target: float  # concurrency per replica
    stable_window_s: float = 60.0
    panic_window_fraction: float = 0.1
    panic_threshold: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0


@dataclass(frozen=True, slots=True)
class KpaState:
    samples: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    panic_since_s: Mapping[str, float] = field(default_factory=dict)  # last panic signal
    panic_desired: Mapping[str, int] = field(default_factory=dict)


def step(
    stages: tuple[StageSpec, ...],
    settings: KpaSettings,
    state: KpaState,
    observation: Observation,
) -> tuple[KpaState, tuple[Decision, ...]]:
    now_s = observation.time_s
    samples = dict(state.samples)
    panic_since = dict(state.panic_since_s)
    panic_desired = dict(state.panic_desired)
    panic_window_s = settings.stable_window_s * settings.panic_window_fraction
    decisions = []
    for spec in stages:
        seen = observation.stages.get(spec.name, StageObservation(spec.min_replicas))
        ready = seen.replicas
        concurrency = seen.queued + seen.running
        kept = [
            (t, c) for t, c in samples.get(spec.name, ()) if t > now_s - settings.stable_window_s
        ]
        window = (*kept, (now_s, concurrency))
        samples[spec.name] = window
        stable = _mean(c for t, c in window)
        panic = _mean(c for t, c in window if t > now_s - panic_window_s)
        desired_stable = math.ceil(stable / settings.target)
        desired_panic = math.ceil(panic / settings.target)
        if ready > 0 and desired_panic / ready >= settings.panic_threshold:
            panic_since[spec.name] = now_s
        in_panic = spec.name in panic_since and (
            now_s - panic_since[spec.name] < settings.stable_window_s
        )
        if in_panic:
            desired = max(desired_panic, panic_desired.get(spec.name, 0))
            panic_desired[spec.name] = desired
            reason = f"panic: {panic:.1f} in flight over {panic_window_s:.0f} s"
        else:
            panic_since.pop(spec.name, None)
            panic_desired.pop(spec.name, None)
            desired = desired_stable
            reason = f"stable: {stable:.1f} in flight over {settings.stable_window_s:.0f} s"
        if ready > 0:
            desired = min(desired, math.ceil(settings.max_scale_up_rate * ready))
            desired = max(desired, math.floor(ready / settings.max_scale_down_rate))
        desired = min(max(desired, spec.min_replicas), spec.max_replicas)
        numbers: dict[str, float | str] = {
            "stable_concurrency": stable,
            "panic_concurrency": panic,
            "target": settings.target,
        }
        decisions.append(Decision(spec.name, ready, desired, reason, numbers))
    return KpaState(samples, panic_since, panic_desired), tuple(decisions)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0
