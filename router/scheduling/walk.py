"""One request's walk through the workers: what to pick, where it prefills, where it decodes.

Pure and typed. The live router (`triskel.router.flows`) and the simulator
(`triskel.simulator.simulation`) both drive it: each asks `next_step` what to do, does
it (a pick, a worker call, an engine request) and tells the walk what it learnt
(`picked`, `prefilled`). A policy change is made here once, and the simulator's
answer is the router's.

    unified       Pick(unified) → Local
    always        Pick(prefill) → Prefill → Pick(decode) → Decode
    never         Pick(decode) → Local
    conditional   Pick(decode) → Local when the decode worker lacks fewer than
                  `maxLocalPrefillTokens` of the prompt (Dynamo's conditional
                  disaggregation: recomputing a short suffix beats moving its KV), else
                  Pick(prefill) → Prefill → Decode on that decode worker
    adaptive      Pick(decode) → Pick(prefill) → Local, or Prefill → Decode, whichever
                  `placement.prefers_local` predicts is better against the TTFT and
                  TPOT budgets (it weighs what a local prefill costs the running decodes)

`Local`: prefill and decode on one worker. `Prefill`: prefill only, the KV held for
the decode. `Decode`: decode pulling the prefill's KV. Failed calls (retries,
migration) are the driver's: the walk plans the first choices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from triskel.common.routing_api import DisaggregationMode, DisaggregationSpec
from triskel.router.scheduling.calibration import Calibration
from triskel.router.scheduling.placement import (
    Answer,
    Budgets,
    Candidate,
    Expected,
    local_outlook,
    prefers_local,
    remote_outlook,
)
from triskel.router.scheduling.types import Stage


@dataclass(frozen=True, slots=True)
class Pick:
    """Pick a worker for `stage`, then tell the walk (`Walk.picked`)."""

    stage: Stage


@dataclass(frozen=True, slots=True)
class Local:
    """Prefill and decode on `worker`, of the pool `stage` names (unified or decode)."""

    worker: Candidate
    stage: Stage
    expected: Expected | None = None
    """Adaptive's predictions for this choice, to calibrate once observed."""


@dataclass(frozen=True, slots=True)
class Prefill:
    """Prefill only on `worker`, its KV held; then tell the walk (`Walk.prefilled`)."""

    worker: Candidate
    expected: Expected | None = None


@dataclass(frozen=True, slots=True)
class Decode:
    """Decode on `worker`, pulling the prefill's KV."""

    worker: Candidate


Step = Pick | Local | Prefill | Decode


@dataclass(frozen=True, slots=True)
class Walk:
    """What the walk knows so far; `next_step` reads it, the driver extends it."""

    policy: DisaggregationSpec
    is_unified: bool
    answer: Answer
    budgets: Budgets
    unified: Candidate | None = None
    decode: Candidate | None = None
    prefill: Candidate | None = None
    is_prefilled: bool = False

    def picked(self, stage: Stage, candidate: Candidate) -> Walk:
        if stage is Stage.UNIFIED:
            return dataclasses.replace(self, unified=candidate)
        if stage is Stage.DECODE:
            return dataclasses.replace(self, decode=candidate)
        if stage is Stage.PREFILL:
            return dataclasses.replace(self, prefill=candidate)
        raise ValueError(f"stage: the walk picks no {stage} worker")

    def prefilled(self) -> Walk:
        return dataclasses.replace(self, is_prefilled=True)


def next_step(walk: Walk, calibration: Calibration) -> Step:
    """The walk's next step (the same answer for the same walk)."""
    if walk.is_unified:
        if walk.unified is None:
            return Pick(Stage.UNIFIED)
        return Local(walk.unified, Stage.UNIFIED)
    if walk.is_prefilled:
        return Pick(Stage.DECODE) if walk.decode is None else Decode(walk.decode)
    mode = walk.policy.mode
    decode = walk.decode
    if mode is not DisaggregationMode.ALWAYS:
        if decode is None:
            return Pick(Stage.DECODE)
        if _is_local_without_asking(walk.policy, decode):
            return Local(decode, Stage.DECODE)
    if walk.prefill is None:
        return Pick(Stage.PREFILL)
    if mode is not DisaggregationMode.ADAPTIVE:
        return Prefill(walk.prefill)
    assert decode is not None  # adaptive picks the decode worker first
    local = local_outlook(decode, walk.answer, calibration)
    remote = remote_outlook(decode, walk.prefill, walk.answer, calibration)
    if prefers_local(local, remote, walk.budgets):
        return Local(decode, Stage.DECODE, local.expected)
    return Prefill(walk.prefill, remote.expected)


def _is_local_without_asking(policy: DisaggregationSpec, decode: Candidate) -> bool:
    if policy.mode is DisaggregationMode.NEVER:
        return True
    return (
        policy.mode is DisaggregationMode.CONDITIONAL
        and decode.num_uncached_tokens < policy.max_local_prefill_tokens
    )
