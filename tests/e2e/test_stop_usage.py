"""A request cut short by a stop sequence reports the prompt tokens its worker had cached,
as the same request without a stop does: unified, and prefill/decode."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from support.cluster import local_cluster, small_config

MODEL = "m"
PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 32768}"
UNIFIED = f"""
pools:
  - {{name: unified, role: unified, model: {MODEL}, profile: {PROFILE}}}
"""
PREFILL_DECODE = f"""
pools:
  - {{name: prefill, role: prefill, model: {MODEL}, profile: {PROFILE}}}
  - {{name: decode, role: decode, model: {MODEL}, profile: {PROFILE}}}
"""
# Several full blocks of 16 tokens, so a repeat finds them in the prefix cache.
PROMPT = "Tell me about rivers, bridges and the towns between them. " * 8


async def completion(session: aiohttp.ClientSession, url: str, **fields: Any) -> dict[str, Any]:
    body = {"model": MODEL, "prompt": PROMPT, "max_tokens": 12, "ignore_eos": True, **fields}
    async with session.post(f"{url}/v1/completions", json=body) as response:
        reply: dict[str, Any] = await response.json()
        assert response.status == 200, reply
        return reply


def cached_tokens(reply: dict[str, Any]) -> int:
    return int(reply["usage"]["prompt_tokens_details"]["cached_tokens"])


@pytest.mark.parametrize("pools", [UNIFIED, PREFILL_DECODE], ids=["unified", "prefill-decode"])
@pytest.mark.asyncio
async def test_a_stopped_request_reports_its_cached_prompt_tokens(pools: str) -> None:
    async with local_cluster(small_config(pools)) as cluster, aiohttp.ClientSession() as session:
        first = await completion(session, cluster.http_url)  # fills the prefix cache
        stop = f" {first['choices'][0]['text'].split()[3]}"
        stopped = await completion(session, cluster.http_url, stop=[stop])
        whole = await completion(session, cluster.http_url)
    assert stopped["choices"][0]["finish_reason"] == "stop"
    # It was 0: the worker tells its cached tokens when it finishes, and a stop cancels it.
    assert cached_tokens(whole) > 0
    assert cached_tokens(stopped) == cached_tokens(whole)
