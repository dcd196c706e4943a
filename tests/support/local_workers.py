"""Mock workers as tasks on loopback port 0, for tests that need real ones to route to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from triskel.workers.process import WorkerEndpoints, WorkerProcessConfig, run_worker

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0

# A Prometheus sample: its name and labels.
MetricKey = tuple[str, frozenset[tuple[str, str]]]


@dataclass(slots=True)
class LocalWorker:
    """One running worker: where it listens, and a way to stop it before the test ends."""

    worker_id: str
    endpoints: WorkerEndpoints
    _stop: asyncio.Event
    _task: asyncio.Task[None]

    @property
    def http_url(self) -> str:
        assert self.endpoints.http is not None, f"{self.worker_id} serves no HTTP API"
        return f"http://{self.endpoints.http}"

    async def stop(self) -> None:
        """Stops the worker (as SIGTERM would: drain, then close) and waits until it has."""
        self._stop.set()
        await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_S)


@contextlib.asynccontextmanager
async def local_worker(
    pool_spec: Mapping[str, Any], worker_id: str = "w0", **config_fields: Any
) -> AsyncIterator[LocalWorker]:
    """One worker of `pool_spec`; `config_fields` go to its WorkerProcessConfig
    (e.g. http_address="127.0.0.1:0")."""
    config = WorkerProcessConfig.model_validate(
        {"drain_timeout_s": 2.0, **config_fields, "worker_id": worker_id, "pool": pool_spec}
    )
    stop = asyncio.Event()
    ready: asyncio.Future[WorkerEndpoints] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_worker(config, ready.set_result, stop))
    try:
        waiters: list[asyncio.Future[Any]] = [ready, task]
        await asyncio.wait(waiters, timeout=STARTUP_TIMEOUT_S, return_when="FIRST_COMPLETED")
        if not ready.done():
            if task.done():
                task.result()  # the worker's own error
            raise TimeoutError(f"worker {worker_id} not ready within {STARTUP_TIMEOUT_S} s")
        yield LocalWorker(worker_id, ready.result(), stop, task)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def local_workers(pool_spec: Mapping[str, Any], count: int) -> AsyncIterator[list[str]]:
    """`count` workers of one pool (ids w0, w1, ...); yields their gRPC addresses."""
    async with contextlib.AsyncExitStack() as stack:
        addresses = []
        for i in range(count):
            worker = await stack.enter_async_context(local_worker(pool_spec, f"w{i}"))
            addresses.append(worker.endpoints.grpc)
        yield addresses


def mock_pool(
    role: str,
    connector: str = "tcp",
    time_scale: float = 0.01,
    kv_capacity_tokens: int = 4096,
    model: str = "m",
) -> dict[str, Any]:
    """A small, fast WorkerPoolSpec (wire names) for mock workers in tests."""
    return {
        "role": role,
        "model": model,
        "profile": {"kvCapacityTokens": kv_capacity_tokens, "timeScale": time_scale},
        "kvConnector": {"type": connector},
    }


async def post_json(url: str, body: Mapping[str, Any], timeout_s: float = 30.0) -> tuple[int, Any]:
    """POSTs `body`; the status and the decoded JSON reply."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


async def scrape(url: str) -> dict[MetricKey, float]:
    """GET `url` (a /metrics endpoint): every sample's value by (name, labels)."""
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        assert reply.status == 200, reply.status
        text = await reply.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def worker_metric(name: str, model: str = "m", **labels: str) -> MetricKey:
    """The key of a worker's series in `scrape`'s result (labels model_name, engine="0")."""
    return name, frozenset({("model_name", model), ("engine", "0"), *labels.items()})


async def wait_for_metric(
    worker: LocalWorker, key: MetricKey, expected: float, timeout_s: float = 10.0
) -> None:
    """Scrapes the worker's /metrics until `key` is `expected`; AssertionError at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (value := (await scrape(f"{worker.http_url}/metrics")).get(key)) != expected:
        assert loop.time() < deadline, f"{key[0]} is {value}, not {expected}, after {timeout_s} s"
        await asyncio.sleep(0.02)
