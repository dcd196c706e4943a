"""Elastic EP convergence, the pure part: which pods of a pool serve at another EP size
than the pool's, and what the status says about it.

The pool's size lives in `status.elasticEp.size`; a pod does not learn it by itself. A
replica started after a step (scale-out, a restart, a reschedule) starts at
`parallelism.ep`, and a step that failed on some pods left them at the old size. So at
each autoscaling interval, when no step of the pool runs:

    each ready pod's size (its /metrics `triskel:ep_size`; None when unreadable)
        ──► `convergence_plan`: pods at another size are stepped to the pool's size;
            a pod whose size is unknown is left alone (a step is tens of seconds of
            drained serving on vLLM: never on a guess) and named in the status
        ──► `convergence_status`: `podsAtSize`, `lagging`, `sizeUnknown`

No I/O here: `elastic_ep_steps.run_convergence` reads and calls the pods.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from triskel.common.api import WorkerPoolSpec
from triskel.operator.elastic_ep import is_elastic, pods_status, size_text

Json = dict[str, Any]
EP_SIZE_METRIC = "triskel:ep_size"


def may_converge(spec: WorkerPoolSpec, is_stepping: bool) -> bool:
    """One step at a time per pool (vLLM's `/scale_elastic_ep` allows no other): a
    running step, or a pool with no replica, is not converged."""
    return is_elastic(spec) and not is_stepping and spec.replicas.count > 0


def ep_size_in_metrics(text: str) -> int | None:
    """The group's EP size from a worker's /metrics (the mock's `triskel:ep_size`
    gauge, labels `model_name` and `engine`); None when absent, unparsable, or when
    its series disagree (no one size to compare)."""
    try:
        values = {
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == EP_SIZE_METRIC
            for sample in family.samples
        }
    except ValueError:
        return None
    if len(values) != 1:
        return None
    value = float(values.pop())  # the parser gives an int for "0"
    return int(value) if value.is_integer() and value >= 1 else None


@dataclass(frozen=True, slots=True)
class PodToStep:
    pod: str
    size: int | None  # EP ranks it serves now; None when unread (known lagging)


@dataclass(frozen=True, slots=True)
class ConvergencePlan:
    """The pool's pods sorted by what they serve, by name."""

    pool_size: int
    to_step: tuple[PodToStep, ...]
    at_size: tuple[str, ...]
    unknown: tuple[str, ...]  # unread, whether stepped (known lagging) or left alone


def convergence_plan(
    pod_sizes: Mapping[str, int | None], pool_size: int, lagging: Collection[str] = ()
) -> ConvergencePlan:
    """Every pod at another size than `pool_size` is stepped to it. A pod whose size
    is None is left alone, unless `lagging` (the status' record of a step it failed)
    names it: then it is known not to be at the pool's size, read or not."""
    names = sorted(pod_sizes)
    return ConvergencePlan(
        pool_size,
        to_step=tuple(
            PodToStep(pod, size)
            for pod in names
            if ((size := pod_sizes[pod]) is None and pod in lagging)
            or (size is not None and size != pool_size)
        ),
        at_size=tuple(pod for pod in names if pod_sizes[pod] == pool_size),
        unknown=tuple(pod for pod in names if pod_sizes[pod] is None),
    )


def convergence_status(
    plan: ConvergencePlan, stepped: Sequence[str], failed: Sequence[str], current: Json
) -> Json | None:
    """`status.elasticEp` after a convergence round, or None when it says what
    `current` (the pool's `status.elasticEp`, {} before any) says: written on change
    only, and not at all for a pool never stepped whose pods all serve its size now."""
    # A pod just called is no longer "left alone": stepped it is at size, failed lagging.
    left_alone = [pod for pod in plan.unknown if pod not in {*stepped, *failed}]
    wanted = pods_status(plan.pool_size, [*plan.at_size, *stepped], failed, left_alone)
    if not current and not failed and not left_alone:
        return None
    keys = ("podsAtSize", "lagging", "sizeUnknown")
    defaults: Json = {"podsAtSize": None, "lagging": [], "sizeUnknown": []}
    if all(current.get(key, defaults[key]) == wanted[key] for key in keys):
        return None
    return {"elasticEp": wanted}


def converged_message(graph: str, pool_size: int, stepped: Sequence[PodToStep]) -> str:
    """The Normal `EpConverged` event's message: the pods by name, never by address."""
    pods = ", ".join(f"{step.pod} ({size_text(step.size)} -> {pool_size})" for step in stepped)
    return (
        f"pods moved to the pool's {pool_size} EP ranks per replica: {pods} (ServingGraph {graph})"
    )


def unknown_message(pool: str, whys: Mapping[str, str]) -> str:
    """Logged when the set of pods of unknown size changes."""
    pods = "; ".join(f"pod {pod}: {why}" for pod, why in sorted(whys.items()))
    return f"WorkerPool {pool}: elastic EP: EP size unread, left as it is: {pods}"
