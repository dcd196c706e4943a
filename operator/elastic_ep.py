"""Elastic EP pools, the pure part: the EP size a decision moves a pool to, and how a
step is told.

A WorkerPool with `parallelism.ep > 1` serves one EP group per replica (the mock
engine, or vLLM with elastic EP). Its graph's autoscaler grows and shrinks the groups
in EP ranks and leaves the replica count as it is:

    planner decision: ranks for the whole pool (sized with the per-rank profile)
        ──► per-group target: the valid EP size nearest ranks / replicas, within
            [ep × replicas.min, ep × replicas.max]   (`nearest_valid_size`)
        ──► one step at a time: none while the pool's previous step runs
    worker's answer ──► EpStepResult ──► status.elasticEp, the `EpScaled` event
    pods at another size ──► stepped to the pool's (`elastic_ep_convergence`)

No I/O here: `elastic_ep_steps.py` calls the pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from triskel.common.api import WorkerPoolSpec
from triskel.common.moe import MoeSpec, nearest_valid_size

Json = dict[str, Any]
GIGABYTE = 1e9


def is_elastic(spec: WorkerPoolSpec) -> bool:
    return spec.parallelism.ep > 1


def ep_size_bounds(spec: WorkerPoolSpec) -> tuple[int, int]:
    """EP ranks one group may have: `replicas.min` and `replicas.max` read as groups'
    worth of `parallelism.ep` ranks, so a pool of 1..2 replicas at EP 4 spans 4..8
    ranks per group (the mock worker's own ceiling is 2 × ep by default)."""
    ep = spec.parallelism.ep
    return ep * spec.replicas.min, ep * spec.replicas.max


def current_ep_size(spec: WorkerPoolSpec, status: Json) -> int:
    """The size the last step moved the pool to; `parallelism.ep` before any."""
    size = (status.get("elasticEp") or {}).get("size")
    return int(size) if size else spec.parallelism.ep


def ep_target(
    moe: MoeSpec, spec: WorkerPoolSpec, current_size: int, desired_ranks: int, is_stepping: bool
) -> int | None:
    """The EP size per group to step to, or None: a step is running (one at a time, as
    vLLM's `/scale_elastic_ep` allows), no replica runs (no group to step), no size in
    the bounds fits, or the nearest valid size is the current one."""
    if is_stepping or spec.replicas.count == 0:
        return None
    low, high = ep_size_bounds(spec)
    per_group = desired_ranks / spec.replicas.count
    target = nearest_valid_size(moe, per_group, low, high)
    return None if target is None or target == current_size else target


@dataclass(frozen=True, slots=True)
class EpStepResult:
    """One step as it went: sizes per group, wall-clock seconds, and what moved when the
    engine says (the mock does; vLLM answers only a message)."""

    from_size: int
    to_size: int
    seconds: float
    bytes_moved: int | None
    experts_moved: int | None


def step_result(answer: Json, from_size: int, to_size: int, seconds: float) -> EpStepResult:
    """Reads the mock worker's `step` object (`old_size`, `new_size`, `bytes_moved`,
    `experts_moved`) when the answer has one."""
    step = answer.get("step")
    step = step if isinstance(step, dict) else {}
    return EpStepResult(
        from_size, to_size, seconds, _count(step, "bytes_moved"), _count(step, "experts_moved")
    )


def _count(step: Json, key: str) -> int | None:
    value = step.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def status_patch(
    result: EpStepResult, finished_at: str, at_size: Sequence[str], lagging: Sequence[str]
) -> Json:
    """`status.elasticEp` after a step that at least one pod took, camelCase as
    `ElasticEpStatus`. `size` is the step's target even when some pods failed: it is
    what the pool should serve, and `lagging` names the pods that do not yet (the
    next convergence steps them; moving the others back would undo a good step)."""
    last_step = {
        "from": result.from_size,
        "to": result.to_size,
        "seconds": round(result.seconds, 3),
        "bytesMoved": result.bytes_moved,
        "expertsMoved": result.experts_moved,
        "finishedAt": finished_at,
    }
    # Every pod answered, so none is of unknown size.
    pods = pods_status(result.to_size, at_size, lagging, unknown=())
    return {"elasticEp": pods | {"lastStep": last_step}}


def pods_status(
    pool_size: int, at_size: Sequence[str], lagging: Sequence[str], unknown: Sequence[str]
) -> Json:
    """`status.elasticEp` fields saying which pods serve at `pool_size`: a count of
    those that do, by name those known not to (`lagging`) and those unread."""
    return {
        "size": pool_size,
        "podsAtSize": len(at_size),
        "lagging": sorted(lagging),
        "sizeUnknown": sorted(unknown),
    }


def scaled_message(graph: str, result: EpStepResult, lagging: Sequence[str] = ()) -> str:
    """The Normal `EpScaled` event's message; pods that did not take the step are
    named (their Warnings say why)."""
    moved = (
        f"{result.bytes_moved / GIGABYTE:.2f} GB of experts moved"
        if result.bytes_moved is not None
        else "bytes moved not reported"
    )
    not_taken = f"; not taken by {', '.join(sorted(lagging))}" if lagging else ""
    return (
        f"{result.from_size} -> {result.to_size} EP ranks per replica in "
        f"{result.seconds:.1f} s, {moved}{not_taken} (ServingGraph {graph})"
    )


def failed_message(pool: str, pod: str, from_size: int | None, to_size: int, why: str) -> str:
    """The Warning `EpScaleFailed` event's message: the pod by name, never its address."""
    return (
        f"WorkerPool {pool}: pod {pod}: /scale_elastic_ep {size_text(from_size)} -> {to_size} "
        f"EP ranks failed: {why}"
    )


def size_text(size: int | None) -> str:
    """A pod's EP size in a message; a pod whose size was not read says so."""
    return "unread" if size is None else str(size)
