"""A prompt longer than the decode pool can hold is refused before any prefill runs."""

from __future__ import annotations

import aiohttp
import grpc
import pytest

from triskel.v1 import worker_pb2, worker_pb2_grpc

from support.cluster import local_cluster, small_config

MODEL = "llama-3.1-8b"
# The prefill pool holds 32,768 tokens of KV per worker, the decode pool 4,096: a 6,000-
# token prompt could be prefilled but never decoded.
UP = f"""
pools:
  - name: prefill
    role: prefill
    model: {MODEL}
    profile: {{name: llama-3.1-8b-h100, kvCapacityTokens: 32768, timeScale: 0.05}}
  - name: decode
    role: decode
    model: {MODEL}
    profile: {{name: llama-3.1-8b-h100, kvCapacityTokens: 4096, timeScale: 0.05}}
"""


@pytest.mark.asyncio
async def test_a_prompt_the_decode_pool_cannot_hold_is_refused_up_front() -> None:
    async with local_cluster(small_config(UP)) as cluster, aiohttp.ClientSession() as session:
        body = {"model": MODEL, "prompt": list(range(6000)), "max_tokens": 8}
        async with session.post(f"{cluster.http_url}/v1/completions", json=body) as response:
            assert response.status == 400
            error = (await response.json())["error"]
        # The window is the decode workers' KV (4,096 tokens), named with the field.
        assert error["param"] == "prompt"
        assert "at most 4095 prompt tokens (context window 4096)" in error["message"]
        # Nothing reached a worker: no prompt token was ever looked up in a prefix cache.
        for address in cluster.worker_addresses.values():
            assert (await prefix_queries(address)) == 0
        # A prompt that fits both is served.
        body["prompt"] = list(range(3000))
        async with session.post(f"{cluster.http_url}/v1/completions", json=body) as response:
            assert response.status == 200, await response.text()


async def prefix_queries(address: str) -> int:
    """Prompt tokens the worker has looked up in its prefix cache since it started."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = worker_pb2_grpc.WorkerStub(channel).StreamStats(worker_pb2.StreamStatsRequest())
        stats = await call.read()
        call.cancel()
    assert isinstance(stats, worker_pb2.WorkerStats)
    return stats.prefix_query_tokens_total
