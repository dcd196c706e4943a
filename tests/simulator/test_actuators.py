"""Decisions become instances: replicas, whole EP groups, or elastic EP steps."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from triskel.common.profiles import load_profile
from triskel.common.routing_api import RoutingSettings
from triskel.planner.planner import Decision, Observation, StageSpec
from triskel.simulator.actuators import Actuator, ElasticEp, EpGroups
from triskel.simulator.autoscale import AutoscaleController
from triskel.simulator.cluster import ClusterShape
from triskel.simulator.metrics import SloTargets, summarize
from triskel.simulator.records import RunResult
from triskel.simulator.run import simulate
from triskel.traces import SyntheticSpec, synthetic_trace

PROFILE = load_profile("deepseek-v2-lite-ep-h100")
STAGE = StageSpec("unified", "unified", PROFILE, 1, 16)
SHAPE = ClusterShape(num_unified=4, profile="deepseek-v2-lite-ep-h100")


@dataclass
class Scripted:
    plan: dict[float, int]
    interval_s: float = 5.0
    name: str = "scripted"
    seen: list[Observation] = field(default_factory=list)

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        self.seen.append(observation)
        current = observation.stages["unified"].replicas
        desired = self.plan.get(observation.time_s, current)
        return (Decision("unified", current, desired, "scripted", {}),)


def run(actuator: Actuator, plan: dict[float, int]) -> tuple[Scripted, RunResult]:
    spec = SyntheticSpec(
        rate_per_s=4.0, duration_s=120.0, input_tokens_mean=256, output_tokens_mean=32
    )
    scripted = Scripted(plan)
    controller = AutoscaleController(scripted, (STAGE,), 2.0, 0.1, actuator=actuator)
    result = simulate(
        synthetic_trace(spec, seed=4), SHAPE, RoutingSettings(), controller=controller
    )
    return scripted, result


def test_an_elastic_step_adds_ranks_after_its_modelled_time_and_one_step_at_a_time() -> None:
    assert PROFILE.moe is not None
    elastic = ElasticEp(PROFILE.moe, min_ranks=1, max_ranks=16)
    # 4 → 6 at t=5 (a 29 s step: ready at ~34 s); the ask for 8 at t=10 falls inside the
    # step and is ignored; 6 → 4 at t=60.
    scripted, result = run(elastic, {5.0: 6, 10.0: 8, 60.0: 4})
    assert [(s.old_ranks, s.new_ranks) for s in elastic.steps] == [(4, 6), (6, 4)]
    up, down = elastic.steps
    assert up.experts_moved == 20 and up.bytes_moved == 9_000_000_000
    assert up.seconds == pytest.approx(29.05, abs=0.01)
    assert down.seconds == pytest.approx(7.05, abs=0.01)
    at_30 = next(o for o in scripted.seen if o.time_s == 30.0)
    assert (at_30.stages["unified"].replicas, at_30.stages["unified"].starting) == (6, 2)
    at_35 = next(o for o in scripted.seen if o.time_s == 35.0)
    assert at_35.stages["unified"].starting == 0
    assert summarize(result, SloTargets(2.0, 0.1)).num_failed == 0


def test_whole_replica_scaling_moves_whole_groups_after_a_cold_start() -> None:
    # 5 ranks wanted of groups of 4: a second group (4 ranks) starts, ready after 70 s.
    scripted, result = run(EpGroups(4), {5.0: 5})
    at_70 = next(o for o in scripted.seen if o.time_s == 70.0)
    assert (at_70.stages["unified"].replicas, at_70.stages["unified"].starting) == (8, 4)
    at_75 = next(o for o in scripted.seen if o.time_s == 75.0)
    assert at_75.stages["unified"].starting == 0
    assert summarize(result, SloTargets(2.0, 0.1)).num_failed == 0
