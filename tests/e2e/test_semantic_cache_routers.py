"""The semantic cache as router processes use it, over a real redis-server: two routers
share one entry, a paraphrase hits and a near miss does not, the bypass header, tenant
isolation, sampled requests, and Redis going away mid-run."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from triskel.cli.supervisor import Supervisor
from triskel.cli.up import worker_configs
from triskel.cli.up_config import parse_up_config
from triskel.router.process import RouterProcessConfig

from support.redis_server import RedisServer, eventually, private_redis  # noqa: F401

UP = """
routing:
  semantic:
    signals: [{type: keywords, name: code_words, parameters: {any: [python, list]}}]
    decisions: [{name: code, rules: {signal: code_words}, model: m}]
    default: {model: m, category: chat}
  cache:
    categories:
      - {name: code, similarityThreshold: 0.9, ttlSeconds: 600, maxEntries: 100}
pools:
  - name: unified
    role: unified
    model: m
    profile: {name: llama-3.1-8b-h100, kvCapacityTokens: 16384, timeScale: 0.05}
"""
QUESTION = "How do I reverse a list in Python?"


class Routers:
    def __init__(self, urls: list[str], redis: RedisServer) -> None:
        self.urls, self.redis = urls, redis

    async def ask(
        self, router: int, content: str, headers: dict[str, str] | None = None, **fields: Any
    ) -> tuple[str, str]:
        """(x-triskel-cache, the answer's text) from router `router`."""
        body = {"model": "auto", "temperature": 0, "max_tokens": 6}
        body |= {"messages": [{"role": "user", "content": content}]} | fields
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.urls[router]}/v1/chat/completions", json=body, headers=headers or {}
            ) as response,
        ):
            assert response.status == 200, await response.text()
            text = (await response.json())["choices"][0]["message"]["content"]
            return response.headers["x-triskel-cache"], text

    async def ask_until_hit(self, router: int, content: str, **fields: Any) -> str:
        """Answers are stored just after they are sent: ask until the store landed."""
        outcome = ""

        async def hit() -> bool:
            nonlocal outcome
            outcome = (await self.ask(router, content, **fields))[0]
            return outcome == "hit"

        await eventually(hit, 10)
        return outcome


@pytest_asyncio.fixture
async def routers(private_redis: RedisServer) -> AsyncIterator[Routers]:  # noqa: F811
    supervisor = Supervisor()
    up = parse_up_config(UP, "<test>")
    try:
        addresses = []
        for worker in worker_configs(up):
            child = await supervisor.start(
                worker.worker_id, "worker", worker.model_dump(mode="json", by_alias=True)
            )
            addresses.append(child.ready["grpc"])
        urls = []
        for name in ("router-a", "router-b"):
            config = RouterProcessConfig(
                http_address="127.0.0.1:0",
                grpc_address="127.0.0.1:0",
                workers=addresses,
                routing=up.routing,
                redis_url=private_redis.url,
                router_id=name,
            )
            child = await supervisor.start(
                name, "router", config.model_dump(mode="json", by_alias=True)
            )
            urls.append(f"http://{child.ready['http']}")
        yield Routers(urls, private_redis)
    finally:
        await supervisor.stop_all()


@pytest.mark.slow
@pytest.mark.asyncio
async def test_two_routers_share_one_entry_and_paraphrases_hit_it(routers: Routers) -> None:
    outcome, answer = await routers.ask(0, QUESTION)
    assert outcome == "miss"
    # Router B never saw the question: the entry comes from Redis.
    await routers.ask_until_hit(1, QUESTION)
    assert (await routers.ask(1, QUESTION))[1] == answer
    # A paraphrase hits through the other router's index (fed by Redis' stream)...
    await routers.ask_until_hit(1, "what's the way to reverse a python list")
    # ...a near miss (another container type) does not, nor another tenant.
    assert (await routers.ask(1, "How do I reverse a dict in Python?"))[0] == "miss"
    assert (await routers.ask(1, QUESTION, headers={"x-tenant": "other"}))[0] == "miss"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_bypass_sampling_and_redis_down_serve_without_the_cache(routers: Routers) -> None:
    await routers.ask(0, QUESTION)
    await routers.ask_until_hit(0, QUESTION)
    assert (await routers.ask(0, QUESTION, {"x-triskel-cache": "bypass"}))[0] == "bypass"
    assert (await routers.ask(0, QUESTION, {"cache-control": "no-cache"}))[0] == "bypass"
    # Sampled (temperature above 0, or none sent: OpenAI's default is 1): not replayable.
    assert (await routers.ask(0, QUESTION, temperature=0.7))[0] == "bypass"
    routers.redis.stop()
    metrics = ""

    async def served_and_counted() -> bool:
        # Redis gone: the cache is skipped, every request is served. The failure is
        # counted once a lookup's own call finds Redis gone; when another of the
        # router's calls (its index's feed) found it first, the breaker skips lookups
        # until its backoff passes, and a skipped call is no failure.
        nonlocal metrics
        outcome, answer = await routers.ask(0, "How do I sort a list in Python?")
        assert outcome == "bypass" and answer
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{routers.urls[0]}/metrics") as response,
        ):
            metrics = await response.text()
        errors = re.search(
            r'triskel_semantic_cache_store_errors_total\{category="code"\} (\S+)', metrics
        )
        return errors is not None and float(errors.group(1)) >= 1

    await eventually(served_and_counted, 20)
    assert 'triskel_semantic_cache_requests_total{category="code",outcome="bypass"}' in metrics
