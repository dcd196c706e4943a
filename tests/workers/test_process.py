"""`run_worker`: the whole worker in this process, on port 0, with its KV host."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import grpc
import pytest
from pydantic import ValidationError

from triskel.common.api import WorkerPoolSpec
from triskel.v1 import worker_pb2, worker_pb2_grpc
from triskel.workers.drain import drain
from triskel.workers.process import (
    WorkerEndpoints,
    WorkerProcessConfig,
    build_mock_worker,
    run_worker,
)

POOL = WorkerPoolSpec.model_validate(
    {"role": "prefill", "model": "m", "profile": {"kvCapacityTokens": 2048, "timeScale": 0}}
)


@pytest.mark.parametrize(
    ("kv_host", "expected"),
    [
        # The default: peers on this machine only (triskel up).
        (None, "127.0.0.1:"),
        # In a pod, the pod IP: a peer in another pod must reach the KV listener.
        # 127.0.0.2 stands in for it here: a loopback address, yet not the default.
        ("127.0.0.2", "127.0.0.2:"),
    ],
)
@pytest.mark.asyncio
async def test_kv_handles_advertise_the_kv_host(kv_host: str | None, expected: str) -> None:
    # The prefill below leaves KV held for a pull that never comes: do not wait for it.
    fields = {"worker_id": "w", "pool": POOL, "grpc_address": "127.0.0.1:0", "drain_timeout_s": 0}
    if kv_host is not None:
        fields["kv_host"] = kv_host
    config = WorkerProcessConfig.model_validate(fields)
    ready: asyncio.Future[WorkerEndpoints] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(config, ready.set_result, stop))
    try:
        endpoints = await asyncio.wait_for(ready, 30)
        async with grpc.aio.insecure_channel(endpoints.grpc) as channel:
            reply = await worker_pb2_grpc.WorkerStub(channel).Prefill(
                worker_pb2.PrefillRequest(request_id="r", token_ids=list(range(40)), max_tokens=2),
                timeout=10,
            )
        assert reply.kv.address.startswith(expected)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.mark.asyncio
async def test_stopping_lets_a_running_request_finish_before_the_server_goes() -> None:
    # 1,000 decode steps at half speed take seconds: longer than the server's stop grace
    # (2 s), so without the drain the stream would be cut.
    pool = WorkerPoolSpec.model_validate(
        {"role": "unified", "model": "m", "profile": {"kvCapacityTokens": 4096, "timeScale": 0.5}}
    )
    config = WorkerProcessConfig(worker_id="w", pool=pool, drain_timeout_s=30)
    ready: asyncio.Future[WorkerEndpoints] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(config, ready.set_result, stop))
    async with grpc.aio.insecure_channel((await asyncio.wait_for(ready, 30)).grpc) as channel:
        request = worker_pb2.DecodeRequest(
            request_id="long", token_ids=list(range(64)), max_tokens=1000, ignore_eos=True
        )
        stream = worker_pb2_grpc.WorkerStub(channel).Decode(request)
        num_tokens = 0
        async for reply in stream:
            num_tokens += len(reply.tokens.token_ids) if reply.HasField("tokens") else 0
            if num_tokens == 5:
                stop.set()  # SIGTERM, as Kubernetes sends it
        assert num_tokens == 1000  # every token arrived: the drain waited for the request
    await asyncio.wait_for(task, 30)


@pytest.mark.asyncio
async def test_a_drain_gives_up_at_its_deadline() -> None:
    class Busy:
        def load(self) -> object:
            return type(
                "L", (), {"num_waiting_requests": 1, "num_running_requests": 0, "num_kv_holds": 0}
            )()

    assert await drain(Busy(), timeout_s=0.05) is False  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_the_http_api_and_bootstrap_listener_serve_beside_grpc() -> None:
    config = WorkerProcessConfig(
        worker_id="w",
        pool=POOL,
        http_address="127.0.0.1:0",
        bootstrap_address="127.0.0.1:0",
        drain_timeout_s=0,
    )
    ready: asyncio.Future[WorkerEndpoints] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(config, ready.set_result, stop))
    endpoints = await asyncio.wait_for(ready, 30)
    assert endpoints.http is not None and endpoints.bootstrap is not None
    async with aiohttp.ClientSession() as session:
        for address in (endpoints.http, endpoints.bootstrap):
            async with session.get(f"http://{address}/health") as reply:
                assert reply.status == 200
        stop.set()
        await asyncio.wait_for(task, 30)
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://{endpoints.http}/health")


@pytest.mark.asyncio
async def test_while_draining_health_fails_and_the_stream_in_flight_finishes() -> None:
    pool = WorkerPoolSpec.model_validate(
        {"role": "unified", "model": "m", "profile": {"kvCapacityTokens": 4096, "timeScale": 0.5}}
    )
    config = WorkerProcessConfig(
        worker_id="w", pool=pool, http_address="127.0.0.1:0", drain_timeout_s=30
    )
    ready: asyncio.Future[WorkerEndpoints] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(config, ready.set_result, stop))
    base = f"http://{(await asyncio.wait_for(ready, 30)).http}"
    body = {"prompt": list(range(64)), "max_tokens": 300, "ignore_eos": True, "stream": True}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/v1/completions", json=body) as stream:
            events = []
            async for line in stream.content:
                if line.startswith(b"data: "):
                    events.append(line)
                if len(events) == 5:
                    stop.set()  # SIGTERM, as Kubernetes sends it
                    async with session.get(f"{base}/health") as health:
                        # Routers polling /health stop sending here; this stream goes on.
                        assert health.status == 503
        assert events[-1] == b"data: [DONE]\n"
        assert len(events) == 300 + 2  # every token, the finish chunk and [DONE]
    await asyncio.wait_for(task, 30)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"bootstrap_address": "127.0.0.1:0"}, "bootstrapAddress: needs httpAddress"),
        (
            {"http_address": "127.0.0.1:0", "bootstrap_address": "127.0.0.1:0", "role": "decode"},
            "only prefill and unified workers serve a bootstrap listener, this one is decode",
        ),
    ],
)
def test_a_bootstrap_listener_needs_http_and_a_prefilling_role(
    fields: dict[str, str], message: str
) -> None:
    role = fields.pop("role", "prefill")
    pool = {"role": role, "model": "m"}
    with pytest.raises(ValidationError, match=message):
        WorkerProcessConfig.model_validate({"worker_id": "w", "pool": pool, **fields})


def ep_config(profile: str, ep: int, **fields: object) -> WorkerProcessConfig:
    pool = {
        "role": "unified",
        "model": "m",
        "parallelism": {"ep": ep},
        "profile": {"name": profile, "kvCapacityTokens": 1024, "timeScale": 0},
    }
    return WorkerProcessConfig.model_validate({"worker_id": "w", "pool": pool, **fields})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        # A dense model has no experts to spread: one engine per replica.
        (
            ep_config("llama-3.1-8b-h100", 4),
            "parallelism.ep: 4 needs a profile with a `moe:` section; llama-3.1-8b-h100 has none",
        ),
        (ep_config("deepseek-v2-lite-ep-h100", 65), "parallelism.ep: 65 ranks exceed the model's"),
        (
            ep_config("deepseek-v2-lite-ep-h100", 4, max_ep_size=2),
            "maxEpSize: 2 is below parallelism.ep (4)",
        ),
        (
            ep_config("llama-3.1-8b-h100", 1, max_ep_size=2),
            "maxEpSize: llama-3.1-8b-h100 is a dense model's profile",
        ),
    ],
)
def test_a_pool_its_profile_cannot_run_as_an_ep_group_is_refused(
    config: WorkerProcessConfig, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_mock_worker(config)


def test_an_ep_group_is_sized_for_its_largest_size() -> None:
    worker = build_mock_worker(ep_config("deepseek-v2-lite-ep-h100", 4, max_ep_size=6))
    assert worker.elastic_ep is not None and worker.elastic_ep.ranks == 4
    # 4 ranks of 1,024 KV tokens (64 blocks) serve; the arena holds 6 ranks' worth.
    assert worker.engine.description.num_kv_blocks == 4 * 64
    assert worker.engine._arena.num_blocks == 6 * 64  # connectors register it once
    assert build_mock_worker(ep_config("llama-3.1-8b-h100", 1)).elastic_ep is None


def host_tier_config(profile: str, host_tokens: int) -> WorkerProcessConfig:
    pool = {
        "role": "unified",
        "model": "m",
        "profile": {"name": profile, "kvCapacityTokens": 1024, "hostKvCapacityTokens": host_tokens},
    }
    return WorkerProcessConfig.model_validate({"worker_id": "w", "pool": pool})


def test_a_pool_can_give_its_engine_a_host_tier() -> None:
    worker = build_mock_worker(host_tier_config("llama-3.1-8b-h100", 4096))
    # 4,096 tokens in blocks of 16.
    assert worker.engine._core.config.num_host_kv_blocks == 256


def test_a_host_tier_needs_a_profile_with_a_host_link() -> None:
    # The L4 profile names no host link: nothing would price the loads.
    with pytest.raises(ValueError, match=r"profile.hostKvCapacityTokens: profile llama-3.1-8b-l4"):
        build_mock_worker(host_tier_config("llama-3.1-8b-l4", 4096))
