"""`--metrics-address`: /metrics on a listener of its own, and no longer on the API port."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from triskel.router.process import RouterEndpoints, RouterProcessConfig, run_router

from support.local_workers import local_workers, mock_pool


async def status_and_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        return reply.status, await reply.text()


async def probe(config: RouterProcessConfig) -> dict[str, tuple[int, str]]:
    """Runs the router until ready; what its ports answer to GET /metrics and /health."""
    stop = asyncio.Event()
    ready: asyncio.Future[RouterEndpoints] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_router(config, ready.set_result, stop))
    try:
        endpoints = await asyncio.wait_for(asyncio.shield(ready), 30)
        answers = {
            "api /metrics": await status_and_text(f"http://{endpoints.http_address}/metrics"),
            "api /health": await status_and_text(f"http://{endpoints.http_address}/health"),
        }
        if endpoints.metrics_address is not None:
            base = f"http://{endpoints.metrics_address}"
            answers["metrics /metrics"] = await status_and_text(f"{base}/metrics")
            answers["metrics /health"] = await status_and_text(f"{base}/health")
        return answers
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def config(workers: list[str], **fields: str) -> RouterProcessConfig:
    return RouterProcessConfig.model_validate(
        {"httpAddress": "127.0.0.1:0", "grpcAddress": "127.0.0.1:0", "workers": workers, **fields}
    )


@pytest.mark.asyncio
async def test_metrics_move_to_their_own_port() -> None:
    async with local_workers(mock_pool("unified"), 1) as workers:
        answers = await probe(config(workers, metricsAddress="127.0.0.1:0"))
    status, text = answers["metrics /metrics"]
    assert status == 200 and "# TYPE triskel_requests_total counter" in text
    # Only /metrics there; the API port answers everything but /metrics.
    assert answers["metrics /health"][0] == 404
    assert answers["api /metrics"][0] == 404
    assert answers["api /health"][0] == 200


@pytest.mark.asyncio
async def test_without_it_the_api_port_serves_metrics() -> None:
    async with local_workers(mock_pool("unified"), 1) as workers:
        answers = await probe(config(workers))
    assert answers["api /metrics"][0] == 200
    assert "metrics /metrics" not in answers
