"""A pool's pods as the operator sees them: addresses, readiness, drain marks (pure).

A pod being drained carries two annotations:

    triskel.io/draining: <RFC 3339 time>          routers stop sending to it
    controller.kubernetes.io/pod-deletion-cost: "-1000"   its ReplicaSet removes it first

so that when the Deployment shrinks, the pods that go are the ones already drained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

POOL_LABEL = "triskel.io/pool"
DRAINING_ANNOTATION = "triskel.io/draining"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
# Lower than any cost a user would set: drained pods are removed before all others.
DRAINED_DELETION_COST = "-1000"
GRPC_PORT_NAME = "grpc"
# vLLM and SGLang pods serve their OpenAI-compatible API on this port name.
HTTP_PORT_NAME = "http"

Json = dict[str, Any]


def pods_of_pool(pods: Iterable[Json], pool: str) -> list[Json]:
    """The pool's live pods (not being deleted), sorted by name."""
    mine = [
        p
        for p in pods
        if p.get("metadata", {}).get("labels", {}).get(POOL_LABEL) == pool
        and not p["metadata"].get("deletionTimestamp")
    ]
    return sorted(mine, key=lambda p: p["metadata"]["name"])


def grpc_address(pod: Json) -> str | None:
    """`podIP:port` of the worker's gRPC port, None until the pod has an IP."""
    return _address(pod, GRPC_PORT_NAME)


def serving_address(pod: Json) -> str | None:
    """Where routers reach the worker: its gRPC port (Triskel's protocol), else its HTTP
    API port (vLLM, SGLang); None until the pod has an IP."""
    return _address(pod, GRPC_PORT_NAME) or _address(pod, HTTP_PORT_NAME)


def _address(pod: Json, port_name: str) -> str | None:
    ip = pod.get("status", {}).get("podIP")
    if not ip:
        return None
    for container in pod.get("spec", {}).get("containers", []):
        for port in container.get("ports", []):
            if port.get("name") == port_name:
                return f"{ip}:{port['containerPort']}"
    return None


def is_ready(pod: Json) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_draining(pod: Json) -> bool:
    annotations = pod.get("metadata", {}).get("annotations") or {}
    return bool(annotations.get(DRAINING_ANNOTATION))


def serving_endpoints(pods: Sequence[Json]) -> list[str]:
    """Addresses routers may send to: ready pods that are not draining, sorted."""
    addresses = (serving_address(p) for p in pods if is_ready(p) and not is_draining(p))
    return sorted(a for a in addresses if a is not None)


def drain_patch(now: str) -> Json:
    """The merge patch that marks a pod as draining."""
    return {
        "metadata": {
            "annotations": {
                DRAINING_ANNOTATION: now,
                DELETION_COST_ANNOTATION: DRAINED_DELETION_COST,
            }
        }
    }


def undrain_patch() -> Json:
    """The merge patch that returns a pod to service (null deletes an annotation)."""
    return {
        "metadata": {"annotations": {DRAINING_ANNOTATION: None, DELETION_COST_ANNOTATION: None}}
    }


def choose_victims(pods: Sequence[Json], count: int, work: Mapping[str, int | None]) -> list[Json]:
    """The `count` pods to remove: already draining first, then least work in flight,
    then not ready, then by name (stable)."""

    def rank(pod: Json) -> tuple[int, int, int, str]:
        name = pod["metadata"]["name"]
        in_flight = work.get(name)
        return (
            0 if is_draining(pod) else 1,
            0 if in_flight is None else in_flight,
            1 if is_ready(pod) else 0,
            name,
        )

    return sorted(pods, key=rank)[: max(0, count)]
