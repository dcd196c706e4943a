"""Runs a stage's profile: filters → weighted scorers → picker, timing every plugin.

candidates ─► filter ─► filter ─► [scorer × weight, clamped to [0, 1]] ─Σ─► picker ─► decision

`choose` stops there; `sent` then tells the profile's observers (plugins that learn from
picks) once the request is really sent to the worker, so a pick only compared (adaptive
disaggregation's prefill pick when the request stays local) teaches them nothing.
`schedule` is both, for a caller that always sends what it picks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from triskel.router.scheduling.plugin import Filter, Picker, PickObserver, Scorer
from triskel.router.scheduling.types import (
    CycleState,
    Decision,
    Endpoint,
    NoEndpointError,
    SchedulingRequest,
    ScoredEndpoint,
    Stage,
)


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    filters: tuple[Filter, ...]
    scorers: tuple[tuple[Scorer, float], ...]
    picker: Picker
    # Found once: isinstance against a runtime Protocol is slow, and picks are hot.
    observers: tuple[PickObserver, ...] = field(init=False)

    def __post_init__(self) -> None:
        plugins = (*self.filters, *(s for s, _ in self.scorers), self.picker)
        unique = {id(p): p for p in plugins if isinstance(p, PickObserver)}
        object.__setattr__(self, "observers", tuple(unique.values()))


class Scheduler:
    """Picks one endpoint per stage. Pure: the same object runs in router and simulator."""

    def __init__(
        self,
        profiles: Mapping[Stage, Profile],
        default: Profile | None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._profiles = dict(profiles)
        self._default = default
        self._timer = timer

    def profile_for(self, stage: Stage) -> Profile:
        profile = self._profiles.get(stage, self._default)
        if profile is None:
            raise NoEndpointError(f"no scheduling profile for stage {stage} and no default")
        return profile

    def schedule(self, request: SchedulingRequest, candidates: Sequence[Endpoint]) -> Decision:
        """`choose`, then `sent` to the chosen worker."""
        decision = self.choose(request, candidates)
        self.sent(request, decision.endpoint)
        return decision

    def sent(self, request: SchedulingRequest, endpoint: Endpoint) -> None:
        """Tells the stage's observers that `request` went to `endpoint`."""
        for observer in self.profile_for(request.stage).observers:
            observer.on_picked(request, endpoint)

    def choose(self, request: SchedulingRequest, candidates: Sequence[Endpoint]) -> Decision:
        """Picks one of `candidates` (NoEndpointError when none, or none passes a filter)."""
        profile = self.profile_for(request.stage)
        timer = self._timer
        seconds: dict[str, float] = {}
        state = CycleState()
        remaining = list(candidates)
        if not remaining:
            raise NoEndpointError(f"no {request.stage} workers for model {request.model}")
        for plugin in profile.filters:
            started = timer()
            remaining = plugin.filter(request, remaining, state)
            seconds[plugin.name] = timer() - started
            if not remaining:
                raise NoEndpointError(
                    f"no {request.stage} worker for model {request.model} passed filter "
                    f"{plugin.name!r}"
                )
        totals = [0.0] * len(remaining)
        for scorer, weight in profile.scorers:
            started = timer()
            scores = scorer.score(request, remaining, state)
            seconds[scorer.name] = timer() - started
            # Clamp, weigh and add in one pass (a comprehension: this runs per candidate).
            totals = [
                total + weight * (0.0 if value < 0.0 else 1.0 if value > 1.0 else value)
                for total, value in zip(totals, scores, strict=True)
            ]
        scored = [ScoredEndpoint(e, s) for e, s in zip(remaining, totals, strict=True)]
        started = timer()
        endpoint, reason = profile.picker.pick(request, scored, state)
        seconds[profile.picker.name] = seconds.get(profile.picker.name, 0.0) + timer() - started
        return Decision(endpoint, profile.name, reason, seconds, scored)
