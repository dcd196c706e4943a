"""The operator's own Prometheus metrics, and the small server that exposes them.

`triskel_autoscaler_desired_replicas{namespace, pool, policy}` is what each graph's
autoscaler last asked for, so a KEDA `prometheus` scaler or an HPA external metric can
act on it instead of the operator (docs/operator.md, Autoscaling). The registry is the
runtime's own, never prometheus_client's process-global default, so two operators in
one process (tests) do not share series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from triskel.common.metrics_listener import MetricsListener


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


class MetricsServer(MetricsListener):
    """`GET /metrics` of `metrics` on `address` (host:port; port 0 picks a free one)."""

    def __init__(self, metrics: OperatorMetrics) -> None:
        super().__init__(lambda: (metrics.render(), CONTENT_TYPE_LATEST))
