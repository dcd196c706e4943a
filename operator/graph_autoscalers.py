"""Each autoscaled graph's memory between steps, owned by the runtime (no globals).

An autoscaler keeps state (the rate history, when each pool last changed), so it lives
as long as the graph's settings do: a changed policy, SLO, interval, or a pool's bounds
or profile builds a fresh one. The previous scrape survives that: it is still where
the next window starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from triskel.operator.autoscaling import AutoscalingProblem
from triskel.operator.elastic_ep_steps import EpSteps
from triskel.planner.autoscalers import TARGETS_FROM_LENGTHS, Autoscaler, build_autoscaler
from triskel.planner.planner import PlannerConfig, StageSpec
from triskel.planner.router_metrics import ModelWindow, Scrape
from triskel.planner.sizing import Lengths

GraphKey = tuple[str, str]  # (namespace, name)

# Before the policy is built (see TARGETS_FROM_LENGTHS): the HPA controller's sync period.
DEFAULT_INTERVAL_S = 15.0
# `TARGETS_FROM_LENGTHS` laws are built from the first window that saw requests.
_NO_LENGTHS = Lengths(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class AutoscalingSettings:
    """What an autoscaler is built from; equal settings keep the one running."""

    graph: str  # namespace/name, for messages
    policy: str
    config: PlannerConfig
    stages: tuple[StageSpec, ...]
    interval_s: float | None  # spec.autoscaling.intervalS


@dataclass(slots=True)
class GraphAutoscaling:
    settings: AutoscalingSettings | None = None
    autoscaler: Autoscaler | None = None
    previous: Scrape | None = None
    # The problem last warned about: each new one gets one Warning event.
    problem: str | None = None
    # Pools a desired count was published for (their gauge series).
    pools: frozenset[str] = frozenset()
    # Elastic EP steps running in the background, one per pool at most.
    ep_steps: EpSteps = field(default_factory=EpSteps)

    @property
    def interval_s(self) -> float:
        if self.settings is not None and self.settings.interval_s is not None:
            return self.settings.interval_s
        return DEFAULT_INTERVAL_S if self.autoscaler is None else self.autoscaler.interval_s

    def configure(self, settings: AutoscalingSettings) -> None:
        """Keeps the autoscaler while the settings are the same; else builds a new one
        now (so a policy that cannot run this graph says so at once), or, for the laws
        needing the workload's lengths, at the first window with requests."""
        if settings == self.settings:
            return
        autoscaler = None
        if settings.policy not in TARGETS_FROM_LENGTHS:
            autoscaler = _build(settings, _NO_LENGTHS, _NO_LENGTHS)
        self.settings, self.autoscaler = settings, autoscaler

    def autoscaler_for(self, window: ModelWindow) -> Autoscaler | None:
        """The graph's autoscaler; None while a lengths-targeted law waits for requests."""
        if self.autoscaler is None and self.settings is not None and window.rate_rps > 0:
            self.autoscaler = _build(self.settings, window.inputs, window.outputs)
        return self.autoscaler


def _build(settings: AutoscalingSettings, inputs: Lengths, outputs: Lengths) -> Autoscaler:
    try:
        return build_autoscaler(settings.policy, settings.config, settings.stages, inputs, outputs)
    except ValueError as error:
        raise AutoscalingProblem(
            "PolicyCannotRun",
            f"ServingGraph {settings.graph}: spec.autoscaling.policy ({settings.policy}): {error}",
        ) from None


class GraphAutoscalers:
    """Every graph's `GraphAutoscaling`, by (namespace, name)."""

    def __init__(self) -> None:
        self._graphs: dict[GraphKey, GraphAutoscaling] = {}

    def of(self, key: GraphKey) -> GraphAutoscaling:
        return self._graphs.setdefault(key, GraphAutoscaling())

    def drop(self, key: GraphKey) -> GraphAutoscaling | None:
        return self._graphs.pop(key, None)
