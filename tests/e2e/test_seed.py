"""`seed` through the router to mock workers: the same seed gives the same answer, another
seed another, and a P/D request answers as a unified worker does for the same seed."""

from __future__ import annotations

import aiohttp
import pytest

from support.cluster import local_cluster, small_config

MODEL = "llama-3.1-8b"
PROFILE = "{name: llama-3.1-8b-h100, kvCapacityTokens: 32768, timeScale: 0.05}"
PD = f"""
pools:
  - {{name: prefill, role: prefill, model: {MODEL}, profile: {PROFILE}}}
  - {{name: decode, role: decode, model: {MODEL}, profile: {PROFILE}}}
"""
UNIFIED = f"""
pools:
  - {{name: unified, role: unified, model: {MODEL}, profile: {PROFILE}}}
"""


async def answers(up_yaml: str, seeds: list[int | None]) -> list[str]:
    async with local_cluster(small_config(up_yaml)) as cluster, aiohttp.ClientSession() as session:
        texts = []
        for seed in seeds:
            body = {"model": MODEL, "prompt": "Name a river.", "max_tokens": 12, "ignore_eos": True}
            if seed is not None:
                body["seed"] = seed
            async with session.post(f"{cluster.http_url}/v1/completions", json=body) as response:
                assert response.status == 200, await response.text()
                texts.append((await response.json())["choices"][0]["text"])
        return texts


@pytest.mark.asyncio
async def test_a_seed_chooses_the_answer_alike_on_pd_and_unified_workers() -> None:
    seeds: list[int | None] = [7, 7, 8, None, -(2**63)]
    pd = await answers(PD, seeds)
    seven, again, eight, unseeded, lowest = pd
    assert seven == again  # the same seed: the same answer
    assert len({seven, eight, unseeded, lowest}) == 4  # another seed: another answer
    # The prefill worker's first token and the decode worker's rest follow one seed:
    # the answer a unified worker gives.
    assert await answers(UNIFIED, seeds) == pd
