"""Disaggregation modes: where the prompt is prefilled, seen in the router's own metrics."""

from __future__ import annotations

import re

import aiohttp
import pytest

from support.cluster import local_cluster, small_config

MODEL = "m"
PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 32768, timeScale: 0.05}"
# About 60 prompt tokens: below a 512-token threshold, above a 16-token one.
PROMPT = "Explain why a short uncached suffix is cheaper to recompute than to transfer. " * 3


def config(disaggregation: str) -> str:
    return f"""
pools:
  - {{name: prefill, role: prefill, model: {MODEL}, profile: {PROFILE}}}
  - {{name: decode, role: decode, model: {MODEL}, profile: {PROFILE}}}
routing:
  disaggregation: {disaggregation}
"""


async def prefill_calls_and_kv_bytes(disaggregation: str) -> tuple[float, float]:
    async with (
        local_cluster(small_config(config(disaggregation))) as cluster,
        aiohttp.ClientSession() as session,
    ):
        body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 4}
        async with session.post(f"{cluster.http_url}/v1/completions", json=body) as response:
            assert response.status == 200, await response.text()
            assert (await response.json())["choices"][0]["text"]
        async with session.get(f"{cluster.http_url}/metrics") as response:
            metrics = await response.text()
    prefill_calls = sum(
        float(value)
        for value in re.findall(
            r'^triskel_worker_requests_total\{[^}]*stage="prefill"[^}]*\} (\S+)$', metrics, re.M
        )
    )
    kv_bytes = sum(
        float(value)
        for value in re.findall(r"^triskel_kv_transfer_bytes_total\{[^}]*\} (\S+)$", metrics, re.M)
    )
    return prefill_calls, kv_bytes


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("disaggregation", "expect_prefill_worker"),
    [
        ("{mode: always}", True),
        # The whole prompt is uncached but shorter than the threshold: prefill locally.
        ("{mode: conditional, maxLocalPrefillTokens: 512}", False),
        # Longer than this threshold: the prefill worker runs and KV moves.
        ("{mode: conditional, maxLocalPrefillTokens: 16}", True),
        ("{mode: never}", False),
        # Both workers idle: equal predicted TTFTs and nothing decoding to disturb, and
        # ties go to the prefill pool.
        ("{mode: adaptive}", True),
    ],
)
async def test_the_mode_decides_whether_the_prefill_worker_runs_and_kv_moves(
    disaggregation: str, expect_prefill_worker: bool
) -> None:
    prefill_calls, kv_bytes = await prefill_calls_and_kv_bytes(disaggregation)
    if expect_prefill_worker:
        assert prefill_calls == 1 and kv_bytes > 0
    else:
        assert prefill_calls == 0 and kv_bytes == 0
