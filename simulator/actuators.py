"""How a scaling decision becomes instances in the simulator.

A policy decides replicas per stage; what a replica is depends on the pool:

    Replicas      one instance per replica, ready after the profile's start-up time
    EpGroups      MoE pools scaled by whole replicas: a replica is an EP group of
                  `ep` rank-instances, started together from cold (the profile's
                  start-up time) and drained together; the policy's count is in
                  ranks and is rounded up to whole groups
    ElasticEp     MoE pools scaled elastically: the policy's count is the group's EP
                  size, moved to the nearest size whose layout fits, one step at a
                  time; added ranks serve once the step is done, its time given by
                  the bytes-moved model (`triskel.common.moe.plan_step`)

Rank-instances model wide EP with data-parallel attention: each rank serves its own
sequences and holds their KV, so ranks route like replicas (the profile describes one
rank at the nominal EP size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from triskel.common.api import Role
from triskel.common.moe import Layout, MoeSpec, initial_layout, nearest_valid_size, plan_step
from triskel.simulator.simulation import Simulation


class Actuator(Protocol):
    def apply(self, role: Role, current: int, desired: int, simulation: Simulation) -> None: ...


class Replicas:
    def apply(self, role: Role, current: int, desired: int, simulation: Simulation) -> None:
        for _ in range(desired - current):
            simulation.grow(role)
        for _ in range(current - desired):
            simulation.shrink(role)


@dataclass(slots=True)
class EpGroups:
    ep: int

    def apply(self, role: Role, current: int, desired: int, simulation: Simulation) -> None:
        groups_now = math.ceil(current / self.ep)
        groups = math.ceil(desired / self.ep)
        for _ in range((groups - groups_now) * self.ep):
            simulation.grow(role)
        for _ in range((groups_now - groups) * self.ep):
            simulation.shrink(role)


@dataclass(slots=True)
class EpStepRecord:
    time_s: float
    old_ranks: int
    new_ranks: int
    experts_moved: int
    bytes_moved: int
    seconds: float


@dataclass(slots=True)
class ElasticEp:
    moe: MoeSpec
    min_ranks: int
    max_ranks: int
    layout: Layout = ()
    busy_until_s: float = 0.0
    steps: list[EpStepRecord] = field(default_factory=list)

    def apply(self, role: Role, current: int, desired: int, simulation: Simulation) -> None:
        now_s = simulation.now_s
        if now_s < self.busy_until_s or desired == current:
            return  # one step at a time, as vLLM's /scale_elastic_ep
        if not self.layout:
            self.layout = initial_layout(self.moe.num_experts, current)
        target = nearest_valid_size(self.moe, desired, self.min_ranks, self.max_ranks)
        if target is None or target == current:
            return
        step = plan_step(self.moe, self.layout, target)
        self.layout = step.layout
        self.busy_until_s = now_s + step.seconds
        self.steps.append(
            EpStepRecord(now_s, current, target, step.experts_moved, step.bytes_moved, step.seconds)
        )
        for _ in range(target - current):
            simulation.grow(role, ready_in_s=step.seconds)
        for _ in range(current - target):
            simulation.shrink(role)
