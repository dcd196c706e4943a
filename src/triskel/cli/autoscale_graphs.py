"""What `triskel up` hands the autoscaler: a graph per model, a stage per pool (pure).

    autoscale: + pools ──► per model: a StageSpec per prefill / decode / unified pool
                           (the latency profile as the pool's mock runs it, the pool's
                           replicas.min / max) and a PlannerConfig (SLOs, windows)

Encode pools are not the planner's (it sizes prefill and decode): they keep their size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from triskel.common.api import ProfileSpec
from triskel.common.profiles import LatencyProfile, as_run, load_profile
from triskel.planner.autoscalers import (
    STAGE_OF_ROLE,
    TARGETS_FROM_LENGTHS,
    Autoscaler,
    build_autoscaler,
)
from triskel.planner.planner import PlannerConfig, StageSpec
from triskel.planner.sizing import Lengths

if TYPE_CHECKING:  # up_config imports this module to check its `autoscale` section
    from triskel.cli.up_config import AutoscaleSettings, PoolEntry

# Lengths to try a policy with while checking the file (any positive ones do).
_CHECK_LENGTHS = Lengths(1.0, 1.0, 1.0)


class AutoscaleConfigError(ValueError):
    """The `autoscale` section cannot run these pools; the message names the field."""


@dataclass(frozen=True, slots=True)
class GraphPlan:
    """One model's pools as the autoscaler sees them."""

    model: str
    policy: str
    config: PlannerConfig
    stages: tuple[StageSpec, ...]
    # autoscale.intervalS; None: the policy's own interval.
    interval_s: float | None

    @property
    def needs_lengths(self) -> bool:
        """Whether the policy must be built from observed lengths (see TARGETS_FROM_LENGTHS)."""
        return self.policy in TARGETS_FROM_LENGTHS

    def build(self, inputs: Lengths, outputs: Lengths) -> Autoscaler:
        return build_autoscaler(self.policy, self.config, self.stages, inputs, outputs)


def graph_plans(settings: AutoscaleSettings, pools: Sequence[PoolEntry]) -> list[GraphPlan]:
    """A plan per model with a pool to scale, in the file's order; AutoscaleConfigError
    names the field when the policy cannot run a model's pools."""
    defaults = PlannerConfig(ttft_slo_ms=settings.ttft_ms, tpot_slo_ms=settings.tpot_ms)
    config = PlannerConfig(
        ttft_slo_ms=settings.ttft_ms,
        tpot_slo_ms=settings.tpot_ms,
        scale_down_window_s=settings.scale_down_window_s,
        scale_down_cooldown_s=settings.scale_down_cooldown_s,
        interval_s=settings.interval_s or defaults.interval_s,
        role_switch_s=settings.role_switch_s,
    )
    plans = []
    for model in dict.fromkeys(pool.model for pool in pools):
        stages = tuple(
            _stage(index, pool)
            for index, pool in enumerate(pools)
            if pool.model == model and pool.role in STAGE_OF_ROLE
        )
        if not stages:
            continue
        plan = GraphPlan(model, settings.policy, config, stages, settings.interval_s)
        try:
            plan.build(_CHECK_LENGTHS, _CHECK_LENGTHS)  # the policy's own checks
        except ValueError as error:
            reason = str(error).removeprefix("autoscale: ")
            raise AutoscaleConfigError(f"autoscale.policy: model {model}: {reason}") from None
        plans.append(plan)
    return plans


def _stage(index: int, pool: PoolEntry) -> StageSpec:
    where = f"pools[{index}]({pool.name}).profile"
    if pool.profile.time_scale == 0:
        raise AutoscaleConfigError(
            f"{where}.timeScale: 0 (instant) workers cannot be sized for an SLO; "
            "use a positive timeScale with autoscale"
        )
    try:
        profile = load_profile(pool.profile.name)
    except ValueError as error:
        raise AutoscaleConfigError(f"{where}.name: {error}") from None
    return StageSpec(
        pool.name,
        STAGE_OF_ROLE[pool.role],
        profile_as_run(profile, pool.profile),
        pool.replicas.min,
        pool.replicas.max,
    )


def profile_as_run(profile: LatencyProfile, spec: ProfileSpec) -> LatencyProfile:
    """The profile as the pool's mock engine runs it (`profiles.as_run`)."""
    return as_run(profile, spec.time_scale, spec.kv_capacity_tokens)
