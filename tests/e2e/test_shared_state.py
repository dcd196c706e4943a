"""Two router processes sharing one real redis-server route a shared prefix to one worker."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
import yaml

from triskel.cli.supervisor import Supervisor
from triskel.cli.up import worker_configs
from triskel.cli.up_config import parse_up_config
from triskel.router.process import RouterProcessConfig
from triskel.router.state import StateConfig, connect_redis

from support.redis_server import RedisServer, eventually, private_redis  # noqa: F401

# The approximate prefix scorer only knows where prompts were SENT: without shared
# state, router B cannot know where router A sent the prefix.
# The prefix's weight (5) beats the most the load scorers can take away (2 + 2): load
# reports lag by up to a stats period, so a worker that just finished a request can
# still look busy, and the test is about the prefix history, not that race.
ROUTING = yaml.safe_load("""
plugins:
  - {type: prefix-cache-scorer, name: prefix}
  - {type: queue-scorer, name: queue}
  - {type: kv-utilization-scorer, name: kv}
  - {type: max-score-picker}
profiles:
  - name: unified
    plugins:
      - {pluginRef: prefix, weight: 5}
      - {pluginRef: queue, weight: 2}
      - {pluginRef: kv, weight: 2}
      - {pluginRef: max-score-picker}
""")
POOLS = """
pools:
  - name: unified
    role: unified
    model: m
    replicas: {min: 4, max: 4}
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 16384, timeScale: 0.05}
"""
DECISION_WORKER = re.compile(r'triskel_router_decisions_total\{[^}]*worker="([^"]+)"')
SYSTEM = "Shared system prompt about the serving cluster and its routing rules. " * 30


@pytest_asyncio.fixture
async def two_routers(private_redis: RedisServer) -> AsyncIterator[list[str]]:  # noqa: F811
    supervisor = Supervisor()
    try:
        addresses = []
        for worker in worker_configs(parse_up_config(POOLS, "<test>")):
            child = await supervisor.start(
                worker.worker_id, "worker", worker.model_dump(mode="json", by_alias=True)
            )
            addresses.append(child.ready["grpc"])
        urls = []
        for name in ("router-a", "router-b"):
            config = RouterProcessConfig.model_validate(
                {
                    "httpAddress": "127.0.0.1:0",
                    "grpcAddress": "127.0.0.1:0",
                    "workers": addresses,
                    "routing": ROUTING,
                    "redisUrl": private_redis.url,
                    # A loaded CI machine can take longer than the default 50 ms per
                    # call; a timed-out write would leave the history in one router.
                    "redisCallTimeoutS": 2.0,
                    "routerId": name,
                }
            )
            child = await supervisor.start(
                name, "router", config.model_dump(mode="json", by_alias=True)
            )
            urls.append(f"http://{child.ready['http']}")
        yield urls
    finally:
        await supervisor.stop_all()


@pytest.mark.asyncio
async def test_the_same_long_prefix_goes_to_the_same_worker_through_either_router(
    two_routers: list[str],
) -> None:
    async with aiohttp.ClientSession() as session:
        for index in range(6):
            body = {
                "model": "m",
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Question number {index}?"},
                ],
                "max_tokens": 4,
            }
            # Alternate routers: each request's prefix history comes from the other one.
            url = two_routers[index % 2]
            async with session.post(f"{url}/v1/chat/completions", json=body) as response:
                assert response.status == 200, await response.text()
        workers: set[str] = set()
        for url in two_routers:
            async with session.get(f"{url}/metrics") as response:
                metrics = await response.text()
            workers |= set(DECISION_WORKER.findall(metrics))
    assert len(workers) == 1, workers


@pytest.mark.asyncio
async def test_each_workers_kv_events_are_relayed_through_redis_by_one_router(
    two_routers: list[str],
    private_redis: RedisServer,  # noqa: F811
) -> None:
    worker_ids = [w.worker_id for w in worker_configs(parse_up_config(POOLS, "<test>"))]
    # The routers use the default key prefix; generous bounds for a busy machine.
    redis = connect_redis(private_redis.url, StateConfig(call_timeout_s=2.0))

    async def every_worker_relayed() -> bool:
        holders = [await redis.get(f"triskel:kv:lease:{w}") for w in worker_ids]
        snapshots = [await redis.hexists(f"triskel:kv:snapshot:{w}", "id") for w in worker_ids]
        # One lease per worker, so one router subscribes to it; its snapshot is stored.
        return all(h in {"router-a", "router-b"} for h in holders) and all(snapshots)

    try:
        await eventually(every_worker_relayed, timeout_s=10.0)
    finally:
        await redis.aclose()
