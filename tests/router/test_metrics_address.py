"""`--metrics-address`: /metrics on a listener of its own, and no longer on the API port."""

from __future__ import annotations

import aiohttp
import pytest

from triskel.router.process import RouterProcessConfig

from support.local_workers import local_workers, mock_pool
from support.router_process import router_config, running_router


async def status_and_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        return reply.status, await reply.text()


async def probe(config: RouterProcessConfig) -> dict[str, tuple[int, str]]:
    """Runs the router until ready; what its ports answer to GET /metrics and /health."""
    async with running_router(config) as endpoints:
        answers = {
            "api /metrics": await status_and_text(f"http://{endpoints.http_address}/metrics"),
            "api /health": await status_and_text(f"http://{endpoints.http_address}/health"),
        }
        if endpoints.metrics_address is not None:
            base = f"http://{endpoints.metrics_address}"
            answers["metrics /metrics"] = await status_and_text(f"{base}/metrics")
            answers["metrics /health"] = await status_and_text(f"{base}/health")
        return answers


@pytest.mark.asyncio
async def test_metrics_move_to_their_own_port() -> None:
    async with local_workers(mock_pool("unified"), 1) as workers:
        answers = await probe(router_config(workers, metricsAddress="127.0.0.1:0"))
    status, text = answers["metrics /metrics"]
    assert status == 200 and "# TYPE triskel_requests_total counter" in text
    # Only /metrics there; the API port answers everything but /metrics.
    assert answers["metrics /health"][0] == 404
    assert answers["api /metrics"][0] == 404
    assert answers["api /health"][0] == 200


@pytest.mark.asyncio
async def test_without_it_the_api_port_serves_metrics() -> None:
    async with local_workers(mock_pool("unified"), 1) as workers:
        answers = await probe(router_config(workers))
    assert answers["api /metrics"][0] == 200
    assert "metrics /metrics" not in answers
