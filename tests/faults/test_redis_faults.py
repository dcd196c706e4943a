"""Redis going away under a router that shares its state there: stopped outright or
frozen (SIGSTOP) mid-traffic. Every client request still ends within its deadline,
answered or with a clear error, and the router logs no traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from support.fault_deployment import ANSWERED, outcome_of, process_deployment
from support.fuzzing import assert_no_tracebacks
from support.redis_server import RedisServer, private_redis  # noqa: F401

PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 65536}"
POOLS = f"""
pools:
  - {{name: prefill, role: prefill, model: m, kvConnector: {{type: tcp}}, profile: {PROFILE}}}
  - {{name: decode, role: decode, model: m, kvConnector: {{type: tcp}}, profile: {PROFILE}}}
"""
NUM_WAVES = 3
REQUESTS_PER_WAVE = 6


def wave(index: int) -> list[dict[str, object]]:
    """Requests sharing a prefix (the router records and looks prefixes up in Redis)."""
    return [
        {
            "model": "m",
            "prompt": "A shared system prompt about bridges. " * 20 + f"Question {index}.{i}",
            "max_tokens": 24,
            "ignore_eos": True,
            "stream": i % 2 == 0,
        }
        for i in range(REQUESTS_PER_WAVE)
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["stop", "pause"])
async def test_requests_end_when_redis_goes_away(
    private_redis: RedisServer,  # noqa: F811
    fault: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    break_redis: Callable[[], None] = private_redis.stop if fault == "stop" else private_redis.pause
    async with process_deployment(POOLS, redis_url=private_redis.url) as deployment:
        for index in range(NUM_WAVES):
            clients = [outcome_of(deployment.base_url, body) for body in wave(index)]
            if index == 1:  # mid-wave: some requests are in flight when Redis goes
                outcomes = asyncio.gather(*clients)
                await asyncio.sleep(0.05)
                break_redis()
                results = await outcomes
            else:
                results = await asyncio.gather(*clients)
            # Redis holds only shared routing state: requests are served without it.
            assert {o.kind for o in results} == {ANSWERED}, results
    assert_no_tracebacks(caplog.records)
