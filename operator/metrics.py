"""The operator's own Prometheus metrics, and the small server that exposes them.

`triskel_autoscaler_desired_replicas{namespace, pool, policy}` is what each graph's
autoscaler last asked for, so a KEDA `prometheus` scaler or an HPA external metric can
act on it instead of the operator (docs/operator.md, Autoscaling). The registry is the
runtime's own, never prometheus_client's process-global default, so two operators in
one process (tests) do not share series.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._desired = Gauge(
            "triskel_autoscaler_desired_replicas",
            "Replicas the ServingGraph's autoscaler last asked for, per WorkerPool.",
            ["namespace", "pool", "policy"],
            registry=self.registry,
        )
        # (namespace, pool) → the policy of its series, so a new policy replaces it.
        self._policies: dict[tuple[str, str], str] = {}

    def set_desired(self, namespace: str, pool: str, policy: str, replicas: int) -> None:
        previous = self._policies.get((namespace, pool))
        if previous is not None and previous != policy:
            self._desired.remove(namespace, pool, previous)
        self._policies[(namespace, pool)] = policy
        self._desired.labels(namespace, pool, policy).set(replicas)

    def forget(self, namespace: str, pool: str) -> None:
        """Drops the pool's series: no autoscaler decides for it any more."""
        policy = self._policies.pop((namespace, pool), None)
        if policy is not None:
            self._desired.remove(namespace, pool, policy)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """`GET /metrics` on `address` (host:port; port 0 picks a free one)."""

    def __init__(self, metrics: OperatorMetrics) -> None:
        self._metrics = metrics
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        self.address: str | None = None  # host:port once started

    async def start(self, address: str) -> str:
        host, _, port = address.rpartition(":")
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]") or None, int(port))
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.address = f"{shown}:{bound_port}"
        return self.address

    async def stop(self) -> None:
        """Stops serving; nothing to do when never started."""
        if self.address is not None:
            await self._runner.cleanup()
            self.address = None

    async def _serve(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response
