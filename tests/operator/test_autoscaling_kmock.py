"""Autoscaling against an emulated API server (kmock): a planner decision reaches the
WorkerPool's scale subresource, its status, an event and the gauge; a router whose
metrics cannot be read is reported and nothing is scaled.

The router is a stand-in on loopback serving the real `RouterMetrics` exposition; it
records `LOAD_PER_SCRAPE` requests before each answer, so every window between two
scrapes holds far more load than four replicas serve, whatever time passed.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import kmock
import pytest
import pytest_asyncio
from aiohttp import web

from support.kube_emulator import NAMESPACE, collection_path, create, stored
from support.loaded_router import LoadedRouter
from support.loopback_http import serving
from support.operator_thread import EMULATOR_OPTIONS, running_operator
from support.waiting import wait_until

GROUP_VERSION = "triskel.io/v1alpha1"
POOL = "chat-unified"
POOL_SPEC: dict[str, Any] = {
    "role": "unified",
    "model": "m",
    "replicas": {"min": 1, "max": 4, "desired": 1},
}
LOAD_PER_SCRAPE = 2000
DESIRED_GAUGE = "triskel_autoscaler_desired_replicas"
OPTIONS = dataclasses.replace(EMULATOR_OPTIONS, drain_timeout_s=5.0)


@attrs.define(kw_only=True)
class ScalingEmulator(kmock.KubernetesEmulator):
    """kmock with the WorkerPool scale subresource. kmock merges any PATCH into the object
    as sent, so `{"spec": {"replicas": 4}}` sent to .../scale would replace the whole
    `spec.replicas` section; a real API server writes it at the CRD's specReplicasPath.

    The request is rewritten in place: kmock finds its reactions by the request object's
    identity, so a copy would match none. `scales` keeps what was sent."""

    scales: list[Any] = attrs.field(factory=list, init=False)

    async def _handle(self, request: kmock.Request) -> web.StreamResponse:
        if request.subresource == "scale" and request.action == kmock.action.UPDATE:
            self.scales.append(request.data)
            replicas = request.data["spec"]["replicas"]
            object.__setattr__(request, "data", {"spec": {"replicas": {"desired": replicas}}})
        return await super()._handle(request)


class FakeRouter(LoadedRouter):
    def __init__(self) -> None:
        super().__init__("m", LOAD_PER_SCRAPE)

    async def serve(self, _request: web.Request) -> web.Response:
        body, content_type = self.scrape()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def fail(self, _request: web.Request) -> web.Response:
        self.scrapes += 1
        return web.Response(status=503, text="overloaded")


@pytest_asyncio.fixture
async def router() -> AsyncIterator[tuple[FakeRouter, str]]:
    """The stand-in router and its base URL (/metrics answers, /failing does not)."""
    fake = FakeRouter()
    routes = [web.get("/metrics", fake.serve), web.get("/failing", fake.fail)]
    async with serving(routes) as base_url:
        yield fake, base_url


def custom(server: kmock.KubernetesEmulator, plural: str, name: str) -> Any:
    return stored(server, GROUP_VERSION, plural, name) or {}


def graph(metrics_url: str, mode: str = "scale") -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ServingGraph",
        "metadata": {"name": "chat"},
        "spec": {
            "model": "m",
            "pools": [POOL],
            "autoscaling": {"metricsUrl": metrics_url, "intervalS": 1, "mode": mode},
        },
    }


def pool_desired(server: kmock.KubernetesEmulator) -> Any:
    return custom(server, "workerpools", POOL).get("spec", {}).get("replicas", {}).get("desired")


def scaling_active(server: kmock.KubernetesEmulator) -> dict[str, Any]:
    conditions = custom(server, "servinggraphs", "chat").get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "ScalingActive"), {})


def events(server: kmock.KubernetesEmulator, reason: str) -> list[dict[str, Any]]:
    posted = [e.data or {} for e in server["post", kmock.resource("v1/events")]]
    return [e for e in posted if e.get("reason") == reason]


def scale_requests(server: kmock.KubernetesEmulator) -> list[kmock.Request]:
    return [r for r in list(server) if r.method == "PATCH" and r.url.path.endswith("/scale")]


def scales(server: kmock.KubernetesEmulator) -> list[Any]:
    assert isinstance(server, ScalingEmulator)
    return server.scales


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.asyncio
@pytest.mark.kmock(cls=ScalingEmulator)
async def test_a_planner_decision_scales_the_pool_and_is_recorded_with_its_numbers(
    server: kmock.KubernetesEmulator, router: tuple[FakeRouter, str]
) -> None:
    fake, base_url = router
    async with running_operator(server, OPTIONS) as runtime:
        await create(
            server,
            {"apiVersion": GROUP_VERSION, "kind": "WorkerPool", "metadata": {"name": POOL}}
            | {"spec": POOL_SPEC},
        )
        await create(server, graph(f"{base_url}/metrics"))
        # Far more load than 4 replicas serve: the planner asks for the pool's max.
        await wait_until(lambda: pool_desired(server) == 4, timeout_s=30)
        path = collection_path(GROUP_VERSION, "workerpools") + f"/{POOL}/scale"
        assert [r.url.path for r in scale_requests(server)] == [path]
        assert scales(server) == [{"spec": {"replicas": 4}}]
        # The pool's own reconcile follows the scale subresource into the Deployment.
        await wait_until(
            lambda: (
                (stored(server, "apps/v1", "deployments", POOL) or {})
                .get("spec", {})
                .get("replicas")
                == 4
            ),
            timeout_s=30,
        )

        def record() -> dict[str, Any]:
            status = custom(server, "workerpools", POOL).get("status", {})
            return dict(status.get("autoscaling") or {})

        await wait_until(lambda: record().get("desiredReplicas") == 4, timeout_s=30)
        decided = record()
        assert (decided["graph"], decided["policy"]) == ("chat", "triskel")
        assert "capped at max 4" in decided["reason"]
        assert float(decided["numbers"]["observed_rps"]) > 100
        assert "predicted_ttft_ms" in decided["numbers"]
        assert custom(server, "workerpools", POOL)["status"]["lastScaleTime"]

        await wait_until(lambda: bool(events(server, "Scaled")), timeout_s=30)
        (scaled,) = events(server, "Scaled")
        assert scaled["type"] == "Normal"
        assert scaled["involvedObject"]["kind"] == "WorkerPool"
        assert scaled["involvedObject"]["name"] == POOL
        message = scaled["message"]
        assert message.startswith("1 -> 4 replicas by triskel (ServingGraph chat): scale up: ")
        assert "observed_rps=" in message and "predicted_rps=" in message

        labels = {"namespace": NAMESPACE, "pool": POOL, "policy": "triskel"}
        assert runtime.metrics.registry.get_sample_value(DESIRED_GAUGE, labels) == 4
        await wait_until(lambda: scaling_active(server).get("reason") == "Decided")
        assert scaling_active(server)["status"] == "True"
        assert fake.scrapes >= 2

        # Autoscaling removed: the graph says so, the gauge no longer speaks for the pool.
        path = collection_path(GROUP_VERSION, "servinggraphs") + "/chat"
        await server.patch(path, json={"spec": {"autoscaling": None}})
        await wait_until(lambda: scaling_active(server).get("reason") == "NotConfigured")
        assert scaling_active(server)["status"] == "False"
        assert runtime.metrics.registry.get_sample_value(DESIRED_GAUGE, labels) is None
        assert pool_desired(server) == 4  # the pool keeps the size it was given


@pytest.mark.asyncio
@pytest.mark.kmock(cls=ScalingEmulator)
async def test_in_recommend_mode_the_decision_is_published_and_nothing_is_scaled(
    server: kmock.KubernetesEmulator, router: tuple[FakeRouter, str]
) -> None:
    _, base_url = router
    async with running_operator(server, OPTIONS) as runtime:
        await create(
            server,
            {"apiVersion": GROUP_VERSION, "kind": "WorkerPool", "metadata": {"name": POOL}}
            | {"spec": POOL_SPEC},
        )
        await create(server, graph(f"{base_url}/metrics", mode="recommend"))
        labels = {"namespace": NAMESPACE, "pool": POOL, "policy": "triskel"}
        # What KEDA's query would read: the pool's max, as in scale mode.
        await wait_until(
            lambda: runtime.metrics.registry.get_sample_value(DESIRED_GAUGE, labels) == 4,
            timeout_s=30,
        )
        await wait_until(
            lambda: scaling_active(server).get("message") == "triskel recommends every 1 s"
        )
        record = custom(server, "workerpools", POOL)["status"]["autoscaling"]
        assert (record["currentReplicas"], record["desiredReplicas"]) == (1, 4)
        assert pool_desired(server) == 1
        assert scale_requests(server) == [] and scales(server) == []
        assert events(server, "Scaled") == []


@pytest.mark.asyncio
@pytest.mark.kmock(cls=ScalingEmulator)
@pytest.mark.parametrize("unreadable", ["refused", "http-error"])
async def test_metrics_that_cannot_be_read_are_reported_once_and_scale_nothing(
    server: kmock.KubernetesEmulator, router: tuple[FakeRouter, str], unreadable: str
) -> None:
    fake, base_url = router
    if unreadable == "refused":
        url, why = f"http://127.0.0.1:{closed_port()}/metrics", "cannot connect"
    else:
        url, why = f"{base_url}/failing", "HTTP 503"
    async with running_operator(server, OPTIONS) as runtime:
        await create(
            server,
            {"apiVersion": GROUP_VERSION, "kind": "WorkerPool", "metadata": {"name": POOL}}
            | {"spec": POOL_SPEC},
        )
        await create(server, graph(url))
        await wait_until(
            lambda: scaling_active(server).get("reason") == "MetricsUnavailable", timeout_s=30
        )
        condition = scaling_active(server)
        assert condition["status"] == "False"
        assert condition["message"].startswith(f"ServingGraph default/chat: cannot read {url}: ")
        assert why in condition["message"]
        await wait_until(lambda: bool(events(server, "MetricsUnavailable")), timeout_s=30)
        if unreadable == "http-error":
            # Three more failed steps, one a second: still one warning.
            seen = fake.scrapes
            await wait_until(lambda: fake.scrapes >= seen + 3, timeout_s=30)
        (warning,) = events(server, "MetricsUnavailable")
        assert warning["type"] == "Warning"
        assert warning["message"] == condition["message"]
        assert pool_desired(server) == 1
        assert scale_requests(server) == [] and scales(server) == []
        assert "autoscaling" not in custom(server, "workerpools", POOL).get("status", {})
        labels = {"namespace": NAMESPACE, "pool": POOL, "policy": "triskel"}
        assert runtime.metrics.registry.get_sample_value(DESIRED_GAUGE, labels) is None


@pytest.mark.asyncio
async def test_the_operator_serves_its_metrics_when_given_an_address(
    server: kmock.KubernetesEmulator,
) -> None:
    # Port 0: the server picks a free one and says which.
    options = dataclasses.replace(EMULATOR_OPTIONS, metrics_address="127.0.0.1:0")
    async with running_operator(server, options) as runtime:
        address = runtime.metrics_server.address
        assert address is not None
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{address}/metrics") as response,
        ):
            assert response.status == 200
            text = await response.text()
    assert f"# TYPE {DESIRED_GAUGE} gauge" in text
    assert runtime.metrics_server.address is None  # stopped with the operator
