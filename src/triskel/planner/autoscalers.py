"""Scaling policies by name, each keeping its own state between intervals.

The simulator, `triskel up` and the operator all drive a policy the same way: every
`interval_s`, hand it one `Observation` and act on the decisions it returns. The
policies are Triskel's planner and the four comparison laws (`laws/`); each wrapper
only holds the law's state and its settings, the decision is the law's pure step.

Two laws need a target the user picks (the HPA's queue per replica, AIBrix KPA's
concurrency per replica; neither project ships a default). `operator_targets` sets
them the way a careful operator would after a load test: what one replica sustains
while meeting the SLO, by the same latency profile the planner sizes with, so the
comparison gives those laws their best static target rather than a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from triskel.common.api import Role
from triskel.common.latency import prefill_ms
from triskel.planner.laws import aibrix_kpa, dynamo_throughput, hpa_queue, llm_d_slo_keda
from triskel.planner.planner import (
    Decision,
    Observation,
    PlannerConfig,
    PlannerState,
    Stage,
    StageSpec,
    plan,
)
from triskel.planner.sizing import Lengths
from triskel.planner.switching import with_role_switches

AutoscalerName = Literal["triskel", "hpa-queue", "aibrix-kpa", "dynamo", "llm-d"]
AUTOSCALERS: tuple[AutoscalerName, ...] = ("triskel", "hpa-queue", "aibrix-kpa", "dynamo", "llm-d")

# The laws whose per-replica targets come from the workload's lengths, as an operator
# sets them after a load test (`operator_targets`): they can be built only once lengths
# were observed. The others never read the lengths they are built with.
TARGETS_FROM_LENGTHS = frozenset({"hpa-queue", "aibrix-kpa"})
# The worker roles a policy sizes, as planner stages (an encode pool's load is images,
# which the planner does not model).
STAGE_OF_ROLE: Mapping[Role, Stage] = {
    Role.PREFILL: "prefill",
    Role.DECODE: "decode",
    Role.UNIFIED: "unified",
}

# How often each re-decides, as shipped: the HPA controller's sync period (15 s) for the
# HPA and for llm-d's law (KEDA feeds an HPA); AIBrix's podautoscaler resyncs every 10 s;
# Dynamo's adjustment interval defaults to 180 s.
HPA_SYNC_S = 15.0
AIBRIX_SYNC_S = 10.0


class Autoscaler(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def interval_s(self) -> float: ...

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        """One interval: a decision per stage (desired may equal current)."""
        ...


@dataclass(frozen=True, slots=True)
class StageTargets:
    """What one replica of a stage sustains within the SLO."""

    queue: float  # requests waiting per replica
    concurrency: float  # requests waiting or running per replica


def operator_targets(
    config: PlannerConfig, stages: tuple[StageSpec, ...], inputs: Lengths, outputs: Lengths
) -> dict[str, StageTargets]:
    """Per stage: a prefill replica may queue as many prompts as fit in the TTFT SLO
    after its own (the quantile prompt's) prefill; a decode replica may run the largest
    batch whose step meets the TPOT SLO and whose context fits `kv_target` of its KV
    cache; anything waiting at a decode replica means it is full (target 1)."""
    targets = {}
    for spec in stages:
        profile = spec.profile
        prompt_ms = prefill_ms(profile.prefill, max(1, round(inputs.mean)))
        own_ms = prefill_ms(profile.prefill, max(1, round(inputs.quantile))) + config.overhead_ms
        queue = max(1.0, (config.ttft_slo_ms - own_ms) / prompt_ms)
        coeffs = profile.decode
        context = inputs.mean + outputs.mean / 2.0
        per_seq_ms = coeffs.b_ms_per_context_token * context + coeffs.c_ms_per_seq
        by_tpot = (config.tpot_slo_ms - coeffs.a_ms) / per_seq_ms if per_seq_ms > 0 else math.inf
        by_kv = config.kv_target * profile.kv_capacity_tokens / (inputs.mean + outputs.mean)
        batch = max(1.0, math.floor(min(by_tpot, by_kv, profile.max_num_seqs)))
        if spec.role == "prefill":
            targets[spec.name] = StageTargets(queue=queue, concurrency=queue + 1.0)
        elif spec.role == "decode":
            targets[spec.name] = StageTargets(queue=1.0, concurrency=batch)
        else:
            targets[spec.name] = StageTargets(queue=queue, concurrency=batch)
    return targets


@dataclass(slots=True)
class TriskelPlanner:
    config: PlannerConfig
    stages: tuple[StageSpec, ...]
    state: PlannerState = field(default_factory=PlannerState)
    name: str = "triskel"

    @property
    def interval_s(self) -> float:
        return self.config.interval_s

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        self.state, decisions = plan(self.config, self.stages, self.state, observation)
        if self.config.role_switch_s is not None:
            decisions = with_role_switches(decisions, self.stages, self.config.role_switch_s)
        return decisions


@dataclass(slots=True)
class HpaQueue:
    stages: tuple[StageSpec, ...]
    targets: Mapping[str, StageTargets]
    state: hpa_queue.HpaState = field(default_factory=hpa_queue.HpaState)
    name: str = "hpa-queue"
    interval_s: float = HPA_SYNC_S

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        decisions: list[Decision] = []
        for spec in self.stages:  # one HPA per pool, each with its own target
            target = self.targets[spec.name].queue
            self.state, own = hpa_queue.step((spec,), target, self.state, observation)
            decisions.extend(own)
        return tuple(decisions)


@dataclass(slots=True)
class AibrixKpa:
    stages: tuple[StageSpec, ...]
    targets: Mapping[str, StageTargets]
    state: aibrix_kpa.KpaState = field(default_factory=aibrix_kpa.KpaState)
    name: str = "aibrix-kpa"
    interval_s: float = AIBRIX_SYNC_S

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        decisions: list[Decision] = []
        for spec in self.stages:  # one PodAutoscaler per pool
            settings = aibrix_kpa.KpaSettings(target=self.targets[spec.name].concurrency)
            self.state, own = aibrix_kpa.step((spec,), settings, self.state, observation)
            decisions.extend(own)
        return tuple(decisions)


@dataclass(slots=True)
class DynamoPlanner:
    prefill: StageSpec
    decode: StageSpec
    settings: dynamo_throughput.DynamoSettings
    state: dynamo_throughput.DynamoState = field(default_factory=dynamo_throughput.DynamoState)
    name: str = "dynamo"

    @property
    def interval_s(self) -> float:
        return self.settings.interval_s

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        self.state, decisions = dynamo_throughput.step(
            self.prefill, self.decode, self.settings, self.state, observation
        )
        return decisions


@dataclass(slots=True)
class LlmdSloKeda:
    stages: tuple[StageSpec, ...]
    settings: llm_d_slo_keda.LlmdSettings
    state: llm_d_slo_keda.LlmdState = field(default_factory=llm_d_slo_keda.LlmdState)
    name: str = "llm-d"
    interval_s: float = HPA_SYNC_S

    def step(self, observation: Observation) -> tuple[Decision, ...]:
        self.state, decisions = llm_d_slo_keda.step(
            self.stages, self.settings, self.state, observation
        )
        return decisions


def build_autoscaler(
    name: str,
    config: PlannerConfig,
    stages: tuple[StageSpec, ...],
    inputs: Lengths,
    outputs: Lengths,
) -> Autoscaler:
    """The policy `name` for these stages and SLOs. `inputs` / `outputs` are the
    workload's lengths, for the two laws whose targets an operator sets by load test.
    ValueError names the field when the policy cannot run this graph."""
    if name == "triskel":
        return TriskelPlanner(config, stages)
    if name == "hpa-queue":
        return HpaQueue(stages, operator_targets(config, stages, inputs, outputs))
    if name == "aibrix-kpa":
        return AibrixKpa(stages, operator_targets(config, stages, inputs, outputs))
    if name == "llm-d":
        slos = llm_d_slo_keda.LlmdSettings(config.ttft_slo_ms, config.tpot_slo_ms)
        return LlmdSloKeda(stages, slos)
    if name == "dynamo":
        roles = {spec.role: spec for spec in stages}
        if set(roles) != {"prefill", "decode"} or len(stages) != 2:
            raise ValueError(
                "autoscale: dynamo's throughput planner sizes one prefill and one decode "
                f"pool; this graph has {', '.join(s.role for s in stages)}"
            )
        # Dynamo's budget default (8 GPUs) is lifted to the graph's: it is a cluster's
        # setting, not the law's.
        budget = config.gpu_budget or sum(s.max_replicas * s.profile.num_gpus for s in stages)
        settings = dynamo_throughput.DynamoSettings(
            itl_slo_ms=config.tpot_slo_ms, max_gpu_budget=budget
        )
        return DynamoPlanner(roles["prefill"], roles["decode"], settings)
    raise ValueError(f"autoscale: unknown policy {name!r}; known: {', '.join(AUTOSCALERS)}")
