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

No I/O here: `elastic_ep_steps.py` calls the pods.
"""

from __future__ import annotations

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


def status_patch(result: EpStepResult, finished_at: str) -> Json:
    """`status.elasticEp` after a step, camelCase as `ElasticEpStatus`."""
    last_step = {
        "from": result.from_size,
        "to": result.to_size,
        "seconds": round(result.seconds, 3),
        "bytesMoved": result.bytes_moved,
        "expertsMoved": result.experts_moved,
        "finishedAt": finished_at,
    }
    return {"elasticEp": {"size": result.to_size, "lastStep": last_step}}


def scaled_message(graph: str, result: EpStepResult) -> str:
    """The Normal `EpScaled` event's message."""
    moved = (
        f"{result.bytes_moved / GIGABYTE:.2f} GB of experts moved"
        if result.bytes_moved is not None
        else "bytes moved not reported"
    )
    return (
        f"{result.from_size} -> {result.to_size} EP ranks per replica in "
        f"{result.seconds:.1f} s, {moved} (ServingGraph {graph})"
    )


def failed_message(pool: str, pod: str, from_size: int, to_size: int, why: str) -> str:
    """The Warning `EpScaleFailed` event's message: the pod by name, never its address."""
    return (
        f"WorkerPool {pool}: pod {pod}: /scale_elastic_ep {from_size} -> {to_size} "
        f"EP ranks failed: {why}"
    )
