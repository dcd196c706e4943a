"""The operator against an emulated API server (kmock): create, update, scale with drain,
delete with drain, restart mid-reconcile, a ServingGraph naming a missing pool.

kmock runs no controllers, so the test plays the ReplicaSet: it creates the pool's
Pod objects itself, pointing at real mock workers on loopback, so drains wait on
real in-flight work.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import Any

import grpc
import kmock
import pytest

from triskel.operator.handlers import workerpool
from triskel.v1 import worker_pb2, worker_pb2_grpc

from support.kube_emulator import NAMESPACE, collection_path, create, declare_resources, stored
from support.local_workers import local_workers
from support.operator_thread import EMULATOR_OPTIONS, running_operator
from support.waiting import wait_until

GROUP_VERSION = "triskel.io/v1alpha1"
POOL_SPEC: dict[str, Any] = {
    "role": "unified",
    "model": "m",
    "replicas": {"min": 1, "max": 4, "desired": 2},
    "profile": {"kvCapacityTokens": 16384, "timeScale": 0.2},
}
# Drains wait on real in-flight work here: room for the longest test request.
OPTIONS = dataclasses.replace(EMULATOR_OPTIONS, drain_timeout_s=20.0)


def pool(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": spec or POOL_SPEC,
    }


def deployment(server: kmock.KubernetesEmulator, name: str) -> Any:
    return stored(server, "apps/v1", "deployments", name)


def custom(server: kmock.KubernetesEmulator, plural: str, name: str) -> Any:
    return stored(server, GROUP_VERSION, plural, name)


async def eventually(check: Any, timeout_s: float = 15.0) -> None:
    await wait_until(check, timeout_s)


# --- workers the test stands in for pods with ---------------------------------------


async def add_pod(
    server: kmock.KubernetesEmulator,
    pool_name: str,
    name: str,
    address: str,
    annotations: dict[str, str] | None = None,
) -> None:
    host, port = address.rsplit(":", 1)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "resourceVersion": "1",
            "labels": {"triskel.io/pool": pool_name},
            "annotations": annotations or {},
        },
        "spec": {
            "containers": [
                {"name": "worker", "ports": [{"name": "grpc", "containerPort": int(port)}]}
            ]
        },
        "status": {"podIP": host, "conditions": [{"type": "Ready", "status": "True"}]},
    }
    response = await server.post(collection_path("v1", "pods"), json=body)
    assert response.status < 300, await response.text()


async def long_decode(address: str, num_tokens: int) -> float:
    """Runs one request to completion on the worker; returns when it finished."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        request = worker_pb2.DecodeRequest(
            request_id="long", token_ids=list(range(64)), max_tokens=num_tokens, ignore_eos=True
        )
        async for _ in stub.Decode(request):
            pass
    return time.monotonic()


# --- tests ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_pool_gets_a_deployment_a_service_and_a_pdb_owned_by_it(
    server: kmock.KubernetesEmulator,
) -> None:
    async with running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await eventually(lambda: deployment(server, "decode") is not None)
        await eventually(lambda: stored(server, "v1", "services", "decode") is not None)
        await eventually(
            lambda: stored(server, "policy/v1", "poddisruptionbudgets", "decode") is not None
        )
        live = deployment(server, "decode")
        owner = live["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("WorkerPool", "decode", True)
        assert live["spec"]["replicas"] == 2
        await eventually(
            lambda: (
                custom(server, "workerpools", "decode").get("status", {}).get("desiredReplicas")
                == 2
            )
        )
        status = custom(server, "workerpools", "decode")["status"]
        assert status["selector"] and {c["type"] for c in status["conditions"]} >= {
            "Ready",
            "Progressing",
            "Degraded",
        }


@pytest.mark.asyncio
async def test_a_pool_without_desired_replicas_gets_min_so_the_scale_subresource_reads_it(
    server: kmock.KubernetesEmulator,
) -> None:
    spec = {**POOL_SPEC, "replicas": {"min": 3, "max": 4}}
    async with running_operator(server, OPTIONS):
        await create(server, pool("prefill", spec))

        def desired() -> Any:
            return custom(server, "workerpools", "prefill")["spec"]["replicas"].get("desired")

        await eventually(lambda: desired() == 3)
        assert deployment(server, "prefill")["spec"]["replicas"] == 3
        assert custom(server, "workerpools", "prefill")["spec"]["replicas"]["max"] == 4


@pytest.mark.asyncio
async def test_a_spec_update_rolls_into_the_deployment(server: kmock.KubernetesEmulator) -> None:
    async with running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await eventually(lambda: deployment(server, "decode") is not None)
        scaled = {**POOL_SPEC, "replicas": {"min": 1, "max": 4, "desired": 3}}
        path = collection_path(GROUP_VERSION, "workerpools") + "/decode"
        await server.patch(path, json={"spec": scaled, "metadata": {"generation": 2}})
        await eventually(lambda: deployment(server, "decode")["spec"]["replicas"] == 3)


@pytest.mark.asyncio
async def test_scale_in_drains_the_idle_pod_and_keeps_the_busy_one(
    server: kmock.KubernetesEmulator,
) -> None:
    async with local_workers(POOL_SPEC, 2) as addresses, running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await eventually(lambda: deployment(server, "decode") is not None)
        await add_pod(server, "decode", "decode-a", addresses[0])
        await add_pod(server, "decode", "decode-b", addresses[1])
        busy = asyncio.create_task(long_decode(addresses[0], 400))
        await asyncio.sleep(0.3)  # the request is running on decode-a
        scaled = {**POOL_SPEC, "replicas": {"min": 1, "max": 4, "desired": 1}}
        path = collection_path(GROUP_VERSION, "workerpools") + "/decode"
        await server.patch(path, json={"spec": scaled, "metadata": {"generation": 2}})
        await eventually(lambda: deployment(server, "decode")["spec"]["replicas"] == 1)
        # The idle pod was chosen and marked; the busy one keeps serving.
        annotations_b = stored(server, "v1", "pods", "decode-b")["metadata"].get("annotations", {})
        annotations_a = stored(server, "v1", "pods", "decode-a")["metadata"].get("annotations", {})
        assert "triskel.io/draining" in annotations_b
        assert "triskel.io/draining" not in annotations_a
        assert not busy.done()
        endpoints = custom(server, "workerpools", "decode")["status"]["endpoints"]
        assert endpoints == [addresses[0]]
        busy.cancel()


@pytest.mark.asyncio
@pytest.mark.parametrize(("minor", "deleted"), [(20, True), (21, True), (22, False)])
async def test_before_1_22_the_operator_deletes_the_drained_pod_itself(
    kmock: kmock.KubernetesEmulator, minor: int, deleted: bool
) -> None:
    # ReplicaSets of those servers ignore pod-deletion-cost and would remove a pod of
    # their own choosing; from 1.22 the ReplicaSet removes the marked one.
    declare_resources(kmock, minor)
    server = kmock
    async with local_workers(POOL_SPEC, 2) as addresses, running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await eventually(lambda: deployment(server, "decode") is not None)
        await add_pod(server, "decode", "decode-a", addresses[0])
        await add_pod(server, "decode", "decode-b", addresses[1])
        busy = asyncio.create_task(long_decode(addresses[0], 400))
        await asyncio.sleep(0.3)  # decode-a is busy, so decode-b is the one to go
        scaled = {**POOL_SPEC, "replicas": {"min": 1, "max": 4, "desired": 1}}
        path = collection_path(GROUP_VERSION, "workerpools") + "/decode"
        await server.patch(path, json={"spec": scaled, "metadata": {"generation": 2}})
        await eventually(lambda: deployment(server, "decode")["spec"]["replicas"] == 1)
        assert (stored(server, "v1", "pods", "decode-b") is None) is deleted
        assert stored(server, "v1", "pods", "decode-a") is not None
        busy.cancel()


@pytest.mark.asyncio
async def test_a_pod_left_marked_by_an_interrupted_scale_in_returns_to_service(
    server: kmock.KubernetesEmulator,
) -> None:
    async with local_workers(POOL_SPEC, 2) as addresses:
        # As if an operator marked decode-b, then stopped before shrinking the Deployment.
        await add_pod(server, "decode", "decode-a", addresses[0])
        marked = {"triskel.io/draining": "2026-11-24T00:00:00Z"}
        await add_pod(server, "decode", "decode-b", addresses[1], marked)
        async with running_operator(server, OPTIONS):
            await create(server, pool("decode"))  # desired 2: nothing to scale in

            def endpoints() -> Any:
                return custom(server, "workerpools", "decode").get("status", {}).get("endpoints")

            await eventually(lambda: endpoints() == sorted(addresses))
        annotations = stored(server, "v1", "pods", "decode-b")["metadata"]["annotations"]
        assert not annotations.get("triskel.io/draining")


@pytest.mark.asyncio
async def test_delete_waits_for_in_flight_work_then_removes_the_children(
    server: kmock.KubernetesEmulator,
) -> None:
    async with local_workers(POOL_SPEC, 1) as addresses, running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await eventually(lambda: deployment(server, "decode") is not None)
        await add_pod(server, "decode", "decode-a", addresses[0])
        busy = asyncio.create_task(long_decode(addresses[0], 200))
        await asyncio.sleep(0.3)
        assert not busy.done()  # still running when the delete arrives
        await server.delete(collection_path(GROUP_VERSION, "workerpools") + "/decode")
        await eventually(lambda: custom(server, "workerpools", "decode") is None, timeout_s=30)
        gone_at = time.monotonic()
        finished_at = await busy
        # The request finished before the pool (and its children) went away.
        assert finished_at <= gone_at
        assert deployment(server, "decode") is None
        assert stored(server, "v1", "services", "decode") is None


@pytest.mark.asyncio
async def test_a_restart_mid_reconcile_duplicates_and_orphans_nothing(
    server: kmock.KubernetesEmulator,
) -> None:
    # Looking the Service up hangs while `hang` is set: the first operator stops after
    # creating the Deployment and before the Service, as if killed mid-reconcile.
    hang = threading.Event()
    hang.set()
    services = kmock.resource("v1/services")
    server[kmock.method.GET, services, lambda _request: hang.is_set()] << (
        lambda: asyncio.sleep(3600)
    )
    async with running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await eventually(lambda: deployment(server, "decode") is not None)
        await eventually(lambda: len(server[kmock.method.GET, services]) >= 1)
    assert stored(server, "v1", "services", "decode") is None
    hang.clear()
    async with running_operator(server, OPTIONS):
        await eventually(lambda: stored(server, "v1", "services", "decode") is not None)
        await eventually(
            lambda: stored(server, "policy/v1", "poddisruptionbudgets", "decode") is not None
        )
    # One of each, all owned by the pool: nothing duplicated, nothing orphaned.
    for plural in ("apps/v1/deployments", "v1/services", "policy/v1/poddisruptionbudgets"):
        children = [o for k, o in server.objects.items() if k[0] == kmock.resource(plural)]
        assert len(children) == 1, plural
        assert children[0]["metadata"]["ownerReferences"][0]["name"] == "decode"


@pytest.mark.asyncio
async def test_a_graph_naming_a_missing_pool_is_degraded_with_a_warning_and_nothing_deleted(
    server: kmock.KubernetesEmulator,
) -> None:
    async with running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await create(
            server,
            {
                "apiVersion": GROUP_VERSION,
                "kind": "ServingGraph",
                "metadata": {"name": "chat"},
                "spec": {"model": "m", "pools": ["decode", "prefill"]},
            },
        )

        def degraded() -> bool:
            graph = custom(server, "servinggraphs", "chat")
            conditions = (graph or {}).get("status", {}).get("conditions", [])
            return any(c["type"] == "Degraded" and c["status"] == "True" for c in conditions)

        await eventually(degraded)
        graph = custom(server, "servinggraphs", "chat")
        condition = next(c for c in graph["status"]["conditions"] if c["type"] == "Degraded")
        assert condition["reason"] == "PoolNotFound"
        assert "'prefill'" in condition["message"]
        await eventually(
            lambda: any(
                "'prefill'" in (event.data or {}).get("message", "")
                for event in server["post", kmock.resource("v1/events")]
            )
        )
        assert custom(server, "workerpools", "decode") is not None
        assert deployment(server, "decode") is not None


def condition(server: kmock.KubernetesEmulator, name: str, kind: str) -> dict[str, Any] | None:
    pool_body = custom(server, "workerpools", name) or {}
    conditions = pool_body.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), None)


def patches_of(server: kmock.KubernetesEmulator, name: str) -> int:
    """PATCH requests kopf sent for pool `name` so far (handlers' and timers' results)."""
    path = collection_path(GROUP_VERSION, "workerpools") + f"/{name}"
    return sum(1 for r in list(server) if r.method == "PATCH" and r.url.path.startswith(path))


async def timer_rounds(server: kmock.KubernetesEmulator, name: str, rounds: int) -> None:
    """Waits until `rounds` more patches of the pool went out (the 0.5 s status timer)."""
    start = patches_of(server, name)
    await eventually(lambda: patches_of(server, name) >= start + rounds)


def warned(server: kmock.KubernetesEmulator, reason: str, fragment: str) -> bool:
    return any(
        (event.data or {}).get("reason") == reason
        and fragment in (event.data or {}).get("message", "")
        for event in server["post", kmock.resource("v1/events")]
    )


@pytest.mark.asyncio
async def test_the_status_timer_keeps_an_invalid_spec_reported(
    server: kmock.KubernetesEmulator,
) -> None:
    # The models accept it; the vLLM engine's builder refuses an encode role.
    spec = {**POOL_SPEC, "role": "encode", "engine": {"type": "vllm"}, "resources": {"gpus": 1}}
    async with running_operator(server, OPTIONS):
        await create(server, pool("enc", spec))
        await eventually(
            lambda: (condition(server, "enc", "Degraded") or {}).get("status") == "True"
        )
        # The timer has run once it wrote the observed fields (the reconcile never did).
        await eventually(
            lambda: "desiredReplicas" in (custom(server, "workerpools", "enc") or {})["status"]
        )
        await timer_rounds(server, "enc", 3)  # must change nothing
        degraded = condition(server, "enc", "Degraded")
        ready = condition(server, "enc", "Ready")
        assert degraded is not None and ready is not None
        assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
        assert "WorkerPool default/enc: " in degraded["message"]
        assert deployment(server, "enc") is None


@pytest.mark.asyncio
async def test_a_child_the_api_server_refuses_degrades_the_pool_with_a_warning(
    server: kmock.KubernetesEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator refuses the Deployment once but keeps it, so a retry would succeed:
    # none comes within this test, which is about the status timer alone.
    monkeypatch.setattr(workerpool, "CHILD_REFUSED_FIRST_RETRY_S", 3600.0)
    monkeypatch.setattr(workerpool, "CHILD_REFUSED_MAX_RETRY_S", 3600.0)
    refusal = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Invalid",
        "code": 422,
        "message": 'Deployment.apps "decode" is invalid: spec.template.spec.containers[0]'
        '.resources.requests[cpu]: Invalid value: "lots": must be a quantity',
    }
    server["post", kmock.resource("apps/v1/deployments")] << 422 << refusal
    async with running_operator(server, OPTIONS):
        await create(server, pool("decode"))
        await eventually(
            lambda: (condition(server, "decode", "Degraded") or {}).get("status") == "True"
        )
        degraded = condition(server, "decode", "Degraded")
        assert degraded is not None
        assert degraded["reason"] == "ChildRefused"
        # The object, the child and the server's own words, in the condition and the event.
        assert degraded["message"].startswith(
            "WorkerPool default/decode: the API server refused Deployment decode: "
        )
        assert 'Invalid value: "lots"' in degraded["message"]
        await eventually(lambda: warned(server, "ChildRefused", "Deployment decode"))
        await timer_rounds(server, "decode", 3)  # the status timer leaves the problem standing
        assert (condition(server, "decode", "Degraded") or {}).get("reason") == "ChildRefused"


def policy_condition(server: kmock.KubernetesEmulator, name: str, kind: str) -> dict[str, Any]:
    body = custom(server, "routingpolicies", name) or {}
    conditions = body.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), {})


SEMANTIC_POLICY: dict[str, Any] = {
    "semantic": {
        "signals": [{"type": "keywords", "name": "math_words", "parameters": {"any": ["sum"]}}],
        "decisions": [{"name": "math", "rules": {"signal": "math_words"}, "model": "m"}],
        "default": {"model": "m"},
    }
}


@pytest.mark.asyncio
async def test_a_semantic_policy_is_judged_by_the_routers_loader_and_published(
    server: kmock.KubernetesEmulator,
) -> None:
    broken = {
        "semantic": SEMANTIC_POLICY["semantic"]
        | {"decisions": [{"name": "math", "rules": {"signal": "mathh"}, "model": "m"}]}
    }
    async with running_operator(server, OPTIONS):
        await create(
            server,
            {
                "apiVersion": GROUP_VERSION,
                "kind": "RoutingPolicy",
                "metadata": {"name": "bad"},
                "spec": broken,
            },
        )
        await eventually(
            lambda: policy_condition(server, "bad", "Ready").get("reason") == "InvalidPolicy"
        )
        message = policy_condition(server, "bad", "Degraded")["message"]
        assert message == (
            "RoutingPolicy default/bad: spec.semantic.decisions[0].rules.signal: "
            "unknown signal 'mathh'; defined: math_words"
        )
        await eventually(lambda: warned(server, "InvalidPolicy", "unknown signal 'mathh'"))

        # A good rule whose model no graph serves yet: refused until a graph serves it,
        # then the status timer accepts it and the router config carries it.
        await create(
            server,
            {
                "apiVersion": GROUP_VERSION,
                "kind": "RoutingPolicy",
                "metadata": {"name": "auto"},
                "spec": SEMANTIC_POLICY,
            },
        )
        await eventually(
            lambda: (
                "unknown model 'm'"
                in policy_condition(server, "auto", "Degraded").get("message", "")
            )
        )
        await create(server, pool("decode"))
        await create(
            server,
            {
                "apiVersion": GROUP_VERSION,
                "kind": "ServingGraph",
                "metadata": {"name": "chat"},
                "spec": {"model": "m", "pools": ["decode"]},
            },
        )
        await eventually(lambda: policy_condition(server, "auto", "Ready").get("status") == "True")

        def published() -> bool:
            config_map = stored(server, "v1", "configmaps", "triskel-router-config") or {}
            document = config_map.get("data", {}).get("router-config.json", "")
            return '"name": "auto"' in document and '"bad"' not in document

        await eventually(published)
