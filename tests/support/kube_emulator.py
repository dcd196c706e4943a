"""kmock's emulated API server, set up the way toolbox.md found works for the operator.

Discovery lists the kinds the operator uses, objects are created over HTTP (so watches
see each once), and every created object carries a resourceVersion (kopf's finalizer
patch tests it). support/operator_thread.py runs the operator against it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import kmock

from triskel.common.resources import API_GROUP, API_VERSION, RESOURCE_KINDS

from support.waiting import wait_until

NAMESPACE = "default"
# Core and built-in kinds the operator reads or writes, as (api path, kind, plural).
_BUILTIN: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    ("v1", "Namespace", "namespaces", frozenset({"list", "watch", "get"})),
    ("v1", "Pod", "pods", frozenset({"list", "watch", "get", "patch", "create", "delete"})),
    ("v1", "Service", "services", frozenset({"list", "get", "create", "patch", "delete"})),
    ("v1", "ConfigMap", "configmaps", frozenset({"list", "get", "create", "patch", "delete"})),
    ("v1", "Secret", "secrets", frozenset({"list", "get", "create", "patch", "delete"})),
    ("v1", "Event", "events", frozenset({"create", "list"})),
    (
        "apps/v1",
        "Deployment",
        "deployments",
        frozenset({"list", "get", "create", "patch", "delete"}),
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        frozenset({"list", "get", "create", "patch", "delete"}),
    ),
    (
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies",
        frozenset({"list", "get", "create", "patch", "delete"}),
    ),
    # What servers before 1.21 serve budgets as.
    (
        "policy/v1beta1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        frozenset({"list", "get", "create", "patch", "delete"}),
    ),
)


def declare_resources(server: kmock.KubernetesEmulator, minor: int = 32) -> None:
    """Makes kmock's discovery list the kinds the operator uses, and answers /version
    as a 1.`minor` server (the operator builds its children for the server's version)."""
    server["get /version"] << {"major": "1", "minor": str(minor), "gitVersion": f"v1.{minor}.0"}
    for api, kind, plural, verbs in _BUILTIN:
        server.resources[f"{api}/{plural}"] = kmock.ResourceInfo(
            kind=kind, namespaced=kind != "Namespace", verbs=set(verbs)
        )
    for resource in RESOURCE_KINDS:
        server.resources[f"{API_GROUP}/{API_VERSION}/{resource.plural}"] = kmock.ResourceInfo(
            kind=resource.kind,
            namespaced=True,
            verbs={"list", "watch", "get", "patch", "create", "delete"},
            subresources={"status"},
        )


def collection_path(api_version: str, plural: str, namespace: str = NAMESPACE) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


async def create(server: kmock.KubernetesEmulator, body: Mapping[str, Any]) -> None:
    """Creates an object over HTTP, as kubectl would (so watches see it once)."""
    # What a real API server fills in (kmock does not): owners need the uid.
    metadata = {
        "namespace": NAMESPACE,
        "resourceVersion": "1",
        "uid": str(uuid.uuid4()),
        "generation": 1,
        **body["metadata"],
    }
    resource = next(r for r in RESOURCE_KINDS if r.kind == body["kind"])
    path = collection_path(resource.api_version, resource.plural)
    response = await server.post(path, json={**body, "metadata": metadata})
    assert response.status < 300, await response.text()


def stored(server: kmock.KubernetesEmulator, api_version: str, plural: str, name: str) -> Any:
    """The emulated object, or None when absent or deleted."""
    try:
        obj = server.objects[f"{api_version}/{plural}", NAMESPACE, name]
    except KeyError:
        return None
    return None if obj.deleted else obj


async def watches_open(server: kmock.KubernetesEmulator, plurals: list[str]) -> None:
    """Waits until the operator watches every one of `plurals` (custom resources)."""

    def is_watching(plural: str) -> bool:
        resource = server.resource(API_GROUP, API_VERSION, plural)
        return any(r.action == kmock.action.WATCH and r.resource == resource for r in list(server))

    await wait_until(lambda: all(is_watching(p) for p in plurals), timeout_s=15)
