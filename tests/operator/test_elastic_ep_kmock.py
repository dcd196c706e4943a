"""Elastic EP against an emulated API server (kmock): a pool with parallelism.ep 4 under
heavy load grows in EP ranks through its pod's `/scale_elastic_ep`, never its replicas;
the step is in the pool's status and an `EpScaled` event, a refused step is a Warning.
A pod at another size than the pool's is stepped to it (`EpConverged`), and a step some
pods refused shows in the status as `lagging`.

The router is a stand-in on loopback serving the real `RouterMetrics` exposition, with
far more load at each scrape than 8 ranks serve. Each pod is an emulated Pod whose IP
is 127.0.0.1 and whose `http` port is a stand-in of the mock worker's HTTP API.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest
import pytest_asyncio
from aiohttp import web

from support.kube_emulator import NAMESPACE, collection_path, create, stored
from support.loaded_router import LoadedRouter
from support.loopback_http import serving
from support.operator_thread import running_operator
from support.waiting import wait_until

GROUP_VERSION = "triskel.io/v1alpha1"
POOL = "moe"
POD = "moe-0"
POOL_SPEC: dict[str, Any] = {
    "role": "unified",
    "model": "m",
    # EP sizes 4 (one group's worth of ranks) to 8 (two groups' worth).
    "replicas": {"min": 1, "max": 2, "desired": 1},
    "parallelism": {"ep": 4},
    "profile": {"name": "deepseek-v2-lite-ep-h100"},
}
LOAD_PER_SCRAPE = 2000
# 4 -> 8 ranks of DeepSeek-V2-Lite: every old rank keeps 8 of its 16 experts, 32 move.
STEP = {"old_size": 4, "new_size": 8, "experts_moved": 32, "bytes_moved": 32 * 450_000_000}


class FakeWorker:
    """The mock worker's `/scale_elastic_ep` and its `triskel:ep_size` on `/metrics`:
    records each request; answers as the mock does, or 409 as it does while another
    change runs."""

    def __init__(self, refuse: bool, size: int = 4) -> None:
        self.refuse = refuse
        self.size = size
        self.requests: list[Any] = []
        self.num_reads = 0  # of /metrics: one per convergence round

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/scale_elastic_ep", self.scale), web.get("/metrics", self.metrics)]

    async def scale(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        if self.refuse:
            error = {"message": "new_data_parallel_size: the group is already scaling"}
            return web.json_response({"error": error}, status=409)
        self.size = self.requests[-1]["new_data_parallel_size"]
        return web.json_response({"message": "Scaled to 8 data parallel engines", "step": STEP})

    async def metrics(self, _request: web.Request) -> web.Response:
        self.num_reads += 1
        # The mock's exposition: labels model_name and engine, as vLLM's series.
        text = (
            "# HELP triskel:ep_size Ranks of the EP group now serving.\n"
            "# TYPE triskel:ep_size gauge\n"
            f'triskel:ep_size{{engine="0",model_name="m"}} {self.size}.0\n'
        )
        return web.Response(text=text, content_type="text/plain")


@pytest_asyncio.fixture
async def router_url() -> AsyncIterator[str]:
    fake = LoadedRouter("m", LOAD_PER_SCRAPE)

    async def serve(_request: web.Request) -> web.Response:
        body, content_type = fake.scrape()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async with serving([web.get("/metrics", serve)]) as base_url:
        yield f"{base_url}/metrics"


async def add_pod(server: kmock.KubernetesEmulator, worker_url: str, name: str = POD) -> None:
    """A ready pod of the pool, its HTTP API on loopback (what its kubelet would report)."""
    http_port = int(worker_url.rsplit(":", 1)[1])
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "resourceVersion": "1",
            "labels": {"triskel.io/pool": POOL},
        },
        "spec": {
            "containers": [
                {"name": "worker", "ports": [{"name": "http", "containerPort": http_port}]}
            ]
        },
        "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    response = await server.post(collection_path("v1", "pods"), json=body)
    assert response.status < 300, await response.text()


def graph(metrics_url: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ServingGraph",
        "metadata": {"name": "chat"},
        "spec": {
            "model": "m",
            "pools": [POOL],
            "autoscaling": {"metricsUrl": metrics_url, "intervalS": 1},
        },
    }


def pool_object(server: kmock.KubernetesEmulator) -> Any:
    return stored(server, GROUP_VERSION, "workerpools", POOL) or {}


def elastic_ep(server: kmock.KubernetesEmulator) -> dict[str, Any]:
    return dict(pool_object(server).get("status", {}).get("elasticEp") or {})


def events(server: kmock.KubernetesEmulator, reason: str) -> list[dict[str, Any]]:
    posted = [e.data or {} for e in server["post", kmock.resource("v1/events")]]
    return [e for e in posted if e.get("reason") == reason]


def scale_requests(server: kmock.KubernetesEmulator) -> list[kmock.Request]:
    return [r for r in list(server) if r.method == "PATCH" and r.url.path.endswith("/scale")]


@pytest.mark.asyncio
async def test_heavy_load_grows_the_ep_group_and_records_the_step(
    server: kmock.KubernetesEmulator, router_url: str
) -> None:
    worker = FakeWorker(refuse=False)
    async with (
        serving(worker.routes()) as worker_url,
        running_operator(server),
    ):
        await add_pod(server, worker_url)
        pool = {"apiVersion": GROUP_VERSION, "kind": "WorkerPool", "metadata": {"name": POOL}}
        await create(server, pool | {"spec": POOL_SPEC})
        await create(server, graph(router_url))

        await wait_until(lambda: elastic_ep(server).get("size") == 8, timeout_s=30)
        # Far more load than 8 ranks serve: the bound, 8 ranks (2 replicas' worth).
        assert worker.requests[0] == {"new_data_parallel_size": 8}
        last_step = elastic_ep(server)["lastStep"]
        assert (last_step["from"], last_step["to"]) == (4, 8)
        assert (last_step["bytesMoved"], last_step["expertsMoved"]) == (14_400_000_000, 32)
        assert last_step["seconds"] >= 0 and last_step["finishedAt"]

        await wait_until(lambda: bool(events(server, "EpScaled")), timeout_s=30)
        scaled = events(server, "EpScaled")[0]
        assert scaled["type"] == "Normal"
        assert scaled["involvedObject"]["name"] == POOL
        assert scaled["message"].startswith("4 -> 8 EP ranks per replica in ")
        assert "14.40 GB of experts moved (ServingGraph default/chat)" in scaled["message"]
        # Ranks, never replicas: no scale patch, the pool keeps its one replica.
        assert scale_requests(server) == []
        assert pool_object(server)["spec"]["replicas"]["desired"] == 1
        record = pool_object(server)["status"]["autoscaling"]
        assert record["desiredReplicas"] == 8  # ranks, for an elastic pool


@pytest.mark.asyncio
async def test_a_refused_step_is_a_warning_naming_the_pod_and_changes_nothing(
    server: kmock.KubernetesEmulator, router_url: str
) -> None:
    worker = FakeWorker(refuse=True)
    async with (
        serving(worker.routes()) as worker_url,
        running_operator(server),
    ):
        await add_pod(server, worker_url)
        pool = {"apiVersion": GROUP_VERSION, "kind": "WorkerPool", "metadata": {"name": POOL}}
        await create(server, pool | {"spec": POOL_SPEC})
        await create(server, graph(router_url))
        await wait_until(lambda: bool(events(server, "EpScaleFailed")), timeout_s=30)
        warning = events(server, "EpScaleFailed")[0]
        assert warning["type"] == "Warning"
        assert warning["message"] == (
            f"WorkerPool {NAMESPACE}/{POOL}: pod {POD}: /scale_elastic_ep 4 -> 8 EP ranks "
            "failed: HTTP 409: new_data_parallel_size: the group is already scaling"
        )
        assert "127.0.0.1" not in warning["message"]
        assert "elasticEp" not in pool_object(server).get("status", {})
        assert events(server, "EpScaled") == [] and scale_requests(server) == []
        # The pod still serves the pool's 4: nothing to converge, nothing recorded.
        assert events(server, "EpConverged") == []
        assert "elasticEp" not in pool_object(server).get("status", {})


TWO_REPLICAS = POOL_SPEC | {"replicas": {"min": 1, "max": 2, "desired": 2}}


@contextlib.asynccontextmanager
async def pool_of_two(
    server: kmock.KubernetesEmulator,
    router_url: str,
    workers: tuple[FakeWorker, FakeWorker],
    status: dict[str, Any] | None = None,
) -> AsyncIterator[None]:
    """The operator running a graph over a pool of two replicas, pods moe-0 and moe-1
    served by `workers`; the pool created with `status` when given."""
    async with (
        serving(workers[0].routes()) as first_url,
        serving(workers[1].routes()) as second_url,
        running_operator(server),
    ):
        await add_pod(server, first_url, "moe-0")
        await add_pod(server, second_url, "moe-1")
        pool = {"apiVersion": GROUP_VERSION, "kind": "WorkerPool", "metadata": {"name": POOL}}
        await create(server, pool | {"spec": TWO_REPLICAS} | ({"status": status} if status else {}))
        await create(server, graph(router_url))
        yield


@pytest.mark.asyncio
async def test_only_the_pod_at_another_size_is_stepped_to_the_pools(
    server: kmock.KubernetesEmulator, router_url: str
) -> None:
    # moe-0 took the pool's step to 8; moe-1 came up after it, at parallelism.ep.
    at_size, behind = FakeWorker(refuse=False, size=8), FakeWorker(refuse=False, size=4)
    async with pool_of_two(server, router_url, (at_size, behind), {"elasticEp": {"size": 8}}):
        await wait_until(lambda: bool(events(server, "EpConverged")), timeout_s=30)
        converged = events(server, "EpConverged")[0]
        assert converged["type"] == "Normal"
        assert converged["message"] == (
            "pods moved to the pool's 8 EP ranks per replica: moe-1 (4 -> 8) "
            "(ServingGraph default/chat)"
        )
        await wait_until(lambda: elastic_ep(server).get("podsAtSize") == 2, timeout_s=30)
        assert (elastic_ep(server)["size"], elastic_ep(server)["lagging"]) == (8, [])
        # Two more rounds: both now read 8, so nothing more is called.
        num_reads = behind.num_reads
        await wait_until(lambda: behind.num_reads >= num_reads + 2, timeout_s=30)
        assert behind.requests == [{"new_data_parallel_size": 8}]
        assert at_size.requests == []
        assert events(server, "EpScaled") == [] and events(server, "EpScaleFailed") == []


@pytest.mark.asyncio
async def test_a_step_one_pod_refused_shows_it_lagging_and_is_retried(
    server: kmock.KubernetesEmulator, router_url: str
) -> None:
    took, refused = FakeWorker(refuse=False), FakeWorker(refuse=True)
    async with pool_of_two(server, router_url, (took, refused)):
        await wait_until(lambda: elastic_ep(server).get("size") == 8, timeout_s=30)
        # The pool's size is the step's target; the status says who is not there.
        assert (elastic_ep(server)["podsAtSize"], elastic_ep(server)["lagging"]) == (1, ["moe-1"])
        assert elastic_ep(server)["lastStep"]["to"] == 8
        await wait_until(lambda: bool(events(server, "EpScaled")), timeout_s=30)
        scaled = events(server, "EpScaled")[0]
        assert "; not taken by moe-1 (ServingGraph default/chat)" in scaled["message"]

        # The next intervals step moe-1 again, to the pool's 8 (never moe-0 back to 4).
        await wait_until(lambda: len(refused.requests) >= 2, timeout_s=30)
        assert all(r == {"new_data_parallel_size": 8} for r in refused.requests)
        assert took.requests == [{"new_data_parallel_size": 8}]
        await wait_until(lambda: len(events(server, "EpScaleFailed")) >= 2, timeout_s=30)
        warnings = events(server, "EpScaleFailed")
        assert all("pod moe-1: /scale_elastic_ep 4 -> 8 EP" in w["message"] for w in warnings)
        assert all("127.0.0.1" not in w["message"] for w in warnings)
        assert elastic_ep(server)["lagging"] == ["moe-1"]
