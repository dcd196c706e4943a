"""vLLM's elastic EP endpoints on a real worker: the old layout serves through a step,
the switch shows in /metrics and /server_info, and bad requests are 400s or 409s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from triskel.common.api import WorkerPoolSpec
from triskel.workers.elastic_ep import ElasticEpGroup
from triskel.workers.openai_http.server import WorkerHttpApi, start_worker_http_api
from triskel.workers.process import WorkerProcessConfig, build_mock_worker

from support.local_workers import local_worker, mock_pool, post_json, scrape, worker_metric
from support.waiting import wait_until

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
# DeepSeek-V2-Lite, 4 → 6 ranks: 22 s new ranks + 7 s reconfiguring + 9e9 B at 200e9 B/s.
UP_SECONDS = 29.045


class HeldWait:
    """The step's time passes only once the test lets it."""

    def __init__(self) -> None:
        self.num_waits = 0
        self.release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.num_waits += 1
        await self.release.wait()


@dataclass(slots=True)
class HeldWorker:
    url: str
    wait: HeldWait


@pytest_asyncio.fixture
async def held_worker() -> AsyncIterator[HeldWorker]:
    """An EP group of 4 DeepSeek-V2-Lite ranks (4,096 KV tokens each) whose steps wait."""
    pool = WorkerPoolSpec.model_validate(
        {
            "role": "unified",
            "model": "m",
            "parallelism": {"ep": 4},
            "profile": {
                "name": "deepseek-v2-lite-ep-h100",
                "kvCapacityTokens": 4096,
                "timeScale": 0.01,
            },
        }
    )
    worker = build_mock_worker(WorkerProcessConfig(worker_id="ep", pool=pool))
    assert worker.elastic_ep is not None
    wait = HeldWait()
    group = ElasticEpGroup(worker.elastic_ep.spec, worker.engine, 4, time_scale=1, wait=wait)
    await worker.engine.start()
    api: WorkerHttpApi | None = None
    try:
        api = await start_worker_http_api(worker.engine, "127.0.0.1:0", elastic_ep=group)
        yield HeldWorker(f"http://{api.http_address}", wait)
    finally:
        wait.release.set()
        if api is not None:
            await api.close()
        await group.close()
        await worker.engine.close()


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        assert reply.status == 200
        return await reply.json()


async def ep_series(url: str) -> dict[str, float]:
    samples = await scrape(f"{url}/metrics")
    names = (
        "triskel:ep_size",
        "triskel:ep_scaling",
        "triskel:ep_last_step_seconds",
        "triskel:ep_steps_total",
        "triskel:ep_experts_moved_total",
        "triskel:ep_bytes_moved_total",
    )
    return {name: samples[worker_metric(name)] for name in names}


@pytest.mark.asyncio
async def test_the_old_layout_serves_until_the_switch(held_worker: HeldWorker) -> None:
    url = held_worker.url
    scaling = asyncio.create_task(
        post_json(f"{url}/scale_elastic_ep", {"new_data_parallel_size": 6}, timeout_s=60)
    )
    await wait_until(lambda: held_worker.wait.num_waits == 1)
    assert await post_json(f"{url}/is_scaling_elastic_ep", {}) == (
        200,
        {"is_scaling_elastic_ep": True},
    )
    # Mid-step: requests are served, on the 4-rank capacity.
    status, reply = await post_json(f"{url}/v1/chat/completions", CHAT)
    assert status == 200 and reply["usage"]["completion_tokens"] >= 1
    info = await get_json(f"{url}/server_info")
    assert (info["ep_size"], info["max_total_num_tokens"]) == (4, 4 * 4096)
    assert info["elastic_ep"]["step_in_progress"]["new_size"] == 6
    series = await ep_series(url)
    assert (series["triskel:ep_size"], series["triskel:ep_scaling"]) == (4, 1)
    # One change at a time.
    status, refused = await post_json(f"{url}/scale_elastic_ep", {"new_data_parallel_size": 5})
    assert status == 409 and refused["error"]["param"] == "new_data_parallel_size"
    assert "already scaling from 4 to 6 ranks" in refused["error"]["message"]

    held_worker.wait.release.set()
    status, done = await asyncio.wait_for(scaling, 30)
    assert status == 200
    assert done["message"] == "Scaled to 6 data parallel engines"
    assert done["step"] == {
        "old_size": 4,
        "new_size": 6,
        "experts_moved": 20,
        "bytes_moved": 9_000_000_000,
        "seconds": pytest.approx(UP_SECONDS),
    }
    assert await ep_series(url) == {
        "triskel:ep_size": 6,
        "triskel:ep_scaling": 0,
        "triskel:ep_last_step_seconds": pytest.approx(UP_SECONDS),
        "triskel:ep_steps_total": 1,
        "triskel:ep_experts_moved_total": 20,
        "triskel:ep_bytes_moved_total": 9_000_000_000,
    }
    info = await get_json(f"{url}/server_info")
    assert (info["ep_size"], info["max_total_num_tokens"]) == (6, 6 * 4096)
    assert info["elastic_ep"]["experts_per_rank"] == [11, 11, 11, 11, 10, 10]
    assert info["elastic_ep"]["step_in_progress"] is None
    assert (await post_json(f"{url}/v1/chat/completions", CHAT))[0] == 200


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({}, "new_data_parallel_size", "new_data_parallel_size: is required"),
        ({"new_data_parallel_size": "6"}, "new_data_parallel_size", "must be a positive integer"),
        ({"new_data_parallel_size": True}, "new_data_parallel_size", "must be a positive integer"),
        ({"new_data_parallel_size": 0}, "new_data_parallel_size", "must be a positive integer"),
        (
            {"new_data_parallel_size": 6, "drain_timeout": 0},
            "drain_timeout",
            "drain_timeout: must be a positive integer (seconds), got 0",
        ),
        ([6], "body", "body: must be a JSON object"),
        (
            {"new_data_parallel_size": 4},
            "new_data_parallel_size",
            "new_data_parallel_size: 4 is the group's EP size already",
        ),
        # Twice the start size by default: the arena is sized for it.
        (
            {"new_data_parallel_size": 9},
            "new_data_parallel_size",
            "9 is above 8, the largest EP size this worker may reach",
        ),
    ],
)
@pytest.mark.asyncio
async def test_bad_scale_requests_are_400s_naming_the_field(
    held_worker: HeldWorker, body: Any, param: str, message: str
) -> None:
    status, reply = await post_json(f"{held_worker.url}/scale_elastic_ep", body)
    assert status == 400
    assert reply["error"]["param"] == param
    assert message in reply["error"]["message"]
    assert held_worker.wait.num_waits == 0


@pytest.mark.asyncio
async def test_a_dense_worker_is_no_ep_group() -> None:
    async with local_worker(mock_pool("unified"), http_address="127.0.0.1:0") as worker:
        url = worker.http_url
        for path in ("/scale_elastic_ep", "/is_scaling_elastic_ep"):
            status, reply = await post_json(url + path, {"new_data_parallel_size": 2})
            assert status == 400
            assert "no `moe:` section" in reply["error"]["message"]
        info = await get_json(f"{url}/server_info")
        assert (info["ep_size"], info["elastic_ep"]) == (1, None)
        assert worker_metric("triskel:ep_size") not in await scrape(f"{url}/metrics")
