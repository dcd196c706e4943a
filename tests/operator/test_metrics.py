"""The operator's own metrics: desired replicas per pool, served on /metrics."""

from __future__ import annotations

import aiohttp
import pytest

from triskel.operator.metrics import MetricsServer, OperatorMetrics

DESIRED = "triskel_autoscaler_desired_replicas"


def desired(metrics: OperatorMetrics, namespace: str, pool: str, policy: str) -> float | None:
    labels = {"namespace": namespace, "pool": pool, "policy": policy}
    return metrics.registry.get_sample_value(DESIRED, labels)


def test_the_gauge_holds_the_last_decision_per_pool() -> None:
    metrics = OperatorMetrics()
    metrics.set_desired("team-a", "decode", "triskel", 3)
    metrics.set_desired("team-a", "decode", "triskel", 5)
    metrics.set_desired("team-b", "decode", "triskel", 1)  # another namespace's pool
    assert desired(metrics, "team-a", "decode", "triskel") == 5
    assert desired(metrics, "team-b", "decode", "triskel") == 1


def test_a_new_policy_replaces_the_pools_series_and_forget_drops_it() -> None:
    metrics = OperatorMetrics()
    metrics.set_desired("ns", "decode", "triskel", 3)
    metrics.set_desired("ns", "decode", "hpa-queue", 4)
    # One series per pool: a KEDA query must not sum two policies' answers.
    assert desired(metrics, "ns", "decode", "triskel") is None
    assert desired(metrics, "ns", "decode", "hpa-queue") == 4
    metrics.forget("ns", "decode")
    assert desired(metrics, "ns", "decode", "hpa-queue") is None
    metrics.forget("ns", "decode")  # twice: nothing left to drop, no error


def test_each_runtime_has_its_own_registry() -> None:
    first, second = OperatorMetrics(), OperatorMetrics()
    first.set_desired("ns", "decode", "triskel", 2)
    assert desired(second, "ns", "decode", "triskel") is None


@pytest.mark.asyncio
async def test_the_server_exposes_the_gauge_on_a_free_port() -> None:
    metrics = OperatorMetrics()
    metrics.set_desired("ns", "decode", "triskel", 2)
    server = MetricsServer(metrics)
    address = await server.start("127.0.0.1:0")
    try:
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{address}/metrics") as response,
        ):
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()
    finally:
        await server.stop()
    assert f'{DESIRED}{{namespace="ns",policy="triskel",pool="decode"}} 2.0' in text
