"""Semantic routing and cache latency, in one run.

    python bench/semantic/latency.py [--requests 300] [--entries 100000,1000000]

1. The semantic stage alone (bounded text, every signal, the one embedding, the
   decisions) on one core, over the labelled prompts of tests/data/semantic/, with
   the built-in `triskel up` policy: p50 / p99.
2. Cache lookups (exact path, vector search, guards, the entry's fetch) in a cache of
   100,000 and 1,000,000 entries in one partition (memory store), one core: p50 / p99.
3. Two routers in front of the same mock workers, side by side: one with the semantic
   stage and the cache (requests to `auto`, all distinct, so every one misses and is
   stored), one without (requests name the model). Client-side TTFT p50 / p99 of each,
   alternating requests in a rotating order, and the difference.
4. A cache hit end to end through the first router (a repeated request): p50 / p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import aiohttp
import numpy as np

from triskel.cli.supervisor import Supervisor
from triskel.cli.up_config import load_up_config
from triskel.common.api import WorkerPoolSpec
from triskel.common.routing_api import RoutingSettings
from triskel.router.process import RouterProcessConfig
from triskel.router.semantic.embedding import load_embedder
from triskel.router.semantic.loader import Targets
from triskel.router.semantic.request_text import signal_input
from triskel.router.semantic.setup import EmbedderCache, load_semantic
from triskel.router.semantic_cache.adaptive import Effective
from triskel.router.semantic_cache.cache import SemanticCache
from triskel.router.semantic_cache.entries import CachedAnswer
from triskel.router.semantic_cache.guards import LanguageDetector, guard_of
from triskel.router.semantic_cache.keys import cache_key
from triskel.router.semantic_cache.memory_store import MemoryCacheStore
from triskel.router.types import ChatMessage, GenerationRequest, TextPart
from triskel.workers.process import WorkerProcessConfig

DATA = Path(__file__).resolve().parents[2] / "tests/data/semantic/routing_prompts.jsonl"
SMALL = "llama-3.1-8b"


def quantiles_ms(seconds: list[float]) -> str:
    values = sorted(seconds)
    p50 = values[len(values) // 2] * 1e3
    p99 = values[min(len(values) - 1, int(0.99 * len(values)))] * 1e3
    return f"p50 {p50:.3f} ms, p99 {p99:.3f} ms"


def chat(text: str, model: str = "auto") -> GenerationRequest:
    message = ChatMessage("user", (TextPart(text),))
    return GenerationRequest("r", model, messages=(message,), temperature=0.0)


def semantic_stage() -> None:
    config, _ = load_up_config(None)
    assert config.routing.semantic is not None
    models = {pool.model for pool in config.pools}
    policy, embedder = load_semantic(config.routing.semantic, Targets(models), EmbedderCache())
    prompts = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines() if line]
    samples = []
    for _ in range(3):
        for prompt in prompts:
            started = time.perf_counter()
            inputs = signal_input(
                chat(prompt), policy.max_classify_chars, lambda t: embedder.embed([t])[0]
            )
            policy.decide(inputs)
            samples.append(time.perf_counter() - started)
    print(f"1. semantic stage, {len(samples)} requests: {quantiles_ms(samples)}")


async def cache_lookups(num_entries: int, num_lookups: int) -> None:
    embedder, detector = load_embedder(), LanguageDetector()
    cache = SemanticCache(MemoryCacheStore())
    effective = Effective(0.95, 86_400, num_entries + 1)
    rng = np.random.default_rng(0)
    answer = CachedAnswer(("x",), "stop", 10, 1)
    started = time.perf_counter()
    probe = chat("How do I reverse a list in Python?")
    probe_key = cache_key(probe, category="c", tenant="t", model="m", endpoint="chat")
    guard = guard_of(probe_key.query_text or "", detector)
    for index in range(num_entries):
        # Distinct prompts in one partition: random unit vectors stand for their embeddings.
        request = chat(f"question number {index}")
        key = cache_key(request, category="c", tenant="t", model="m", endpoint="chat")
        vector = rng.standard_normal(embedder.dim).astype(np.float32)
        vector /= np.linalg.norm(vector)
        await cache.store(key, vector, guard, answer, effective)
    fill_s = time.perf_counter() - started
    vector = embedder.embed([probe_key.query_text or ""])[0]
    samples = []
    for index in range(num_lookups):
        # Half exact repeats of stored prompts, half new prompts searched by meaning.
        request = chat(f"question number {index}") if index % 2 else probe
        key = cache_key(request, category="c", tenant="t", model="m", endpoint="chat")
        found = await cache.lookup(key, vector, guard, effective)
        samples.append(found.seconds)
    print(
        f"2. cache lookup, {num_entries:,} entries (filled in {fill_s:.0f} s): "
        f"{quantiles_ms(samples)}"
    )


async def routers(num_requests: int) -> None:
    up, _ = load_up_config(None)
    supervisor = Supervisor()
    try:
        pool = WorkerPoolSpec.model_validate(
            {"role": "unified", "model": SMALL, "profile": {"timeScale": 0.05}}
        )
        workers = [
            await supervisor.start(
                f"w{i}",
                "worker",
                WorkerProcessConfig(worker_id=f"w{i}", pool=pool).model_dump(
                    mode="json", by_alias=True
                ),
            )
            for i in range(2)
        ]
        addresses = [child.ready["grpc"] for child in workers]
        assert up.routing.semantic is not None and up.routing.cache is not None
        # Every decision goes to the one model these workers serve.
        semantic = up.routing.semantic.model_dump(by_alias=True)
        for decision in semantic["decisions"]:
            decision["model"] = SMALL
        semantic["default"]["model"] = SMALL
        with_semantic = RoutingSettings.model_validate(
            {"semantic": semantic, "cache": up.routing.cache.model_dump(by_alias=True)}
        )
        on = await supervisor.start(
            "on",
            "router",
            RouterProcessConfig(
                http_address="127.0.0.1:0",
                grpc_address="127.0.0.1:0",
                workers=addresses,
                routing=with_semantic,
            ).model_dump(mode="json", by_alias=True),
        )
        off = await supervisor.start(
            "off",
            "router",
            RouterProcessConfig(
                http_address="127.0.0.1:0", grpc_address="127.0.0.1:0", workers=addresses
            ).model_dump(mode="json", by_alias=True),
        )
        prompts = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines() if line]
        prompts = [p for p in prompts if len(p) < 2000]
        ttft: dict[str, list[float]] = {"on": [], "bypass": [], "off": []}
        async with aiohttp.ClientSession() as session:
            variants = [("on", on, "auto"), ("bypass", on, "auto"), ("off", off, SMALL)]
            for index in range(num_requests):
                prompt = f"{prompts[index % len(prompts)]} (request {index})"
                # Each variant's prompt differs from its first token, so none reuses the
                # KV prefix another variant left on a worker; and the order rotates, so
                # none always runs first (on a cold worker cache) or after its own router.
                shift = index % len(variants)
                for name, child, model in variants[shift:] + variants[:shift]:
                    bypass = name == "bypass"
                    http = child.ready["http"]
                    ttft[name].append(
                        await first_token_s(session, http, model, f"{name}: {prompt}", bypass)
                    )
            hits = []
            repeated = "How do I reverse a list in Python?"
            await first_token_s(session, on.ready["http"], "auto", repeated)
            await asyncio.sleep(0.5)  # the store lands after the answer
            for _ in range(num_requests):
                started = time.perf_counter()
                await complete(session, on.ready["http"], repeated)
                hits.append(time.perf_counter() - started)
        print(f"3. router TTFT with semantic stage + cache (misses): {quantiles_ms(ttft['on'])}")
        print(
            f"   semantic stage only (cache bypassed):             {quantiles_ms(ttft['bypass'])}"
        )
        print(f"   router TTFT without:                              {quantiles_ms(ttft['off'])}")
        for name in ("on", "bypass"):
            delta = [a - b for a, b in zip(ttft[name], ttft["off"], strict=True)]
            print(f"   {name} - off, per pair: median {statistics.median(delta) * 1e3:+.3f} ms")
        print(f"4. cache hit end to end (whole response): {quantiles_ms(hits)}")
    finally:
        await supervisor.stop_all()


async def first_token_s(
    session: aiohttp.ClientSession, http: str, model: str, prompt: str, bypass: bool = False
) -> float:
    body = {
        "model": model,
        "temperature": 0,
        "max_tokens": 8,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    headers = {"x-triskel-cache": "bypass"} if bypass else {}
    started = time.perf_counter()
    url = f"http://{http}/v1/chat/completions"
    async with session.post(url, json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        async for line in response.content:
            if b'"content"' in line and b'"content":""' not in line:
                first = time.perf_counter() - started
                await response.read()
                return first
    raise RuntimeError("no token")


async def complete(session: aiohttp.ClientSession, http: str, prompt: str) -> None:
    body = {
        "model": "auto",
        "temperature": 0,
        "max_tokens": 8,
        "messages": [{"role": "user", "content": prompt}],
    }
    async with session.post(f"http://{http}/v1/chat/completions", json=body) as response:
        assert response.headers["x-triskel-cache"] == "hit", dict(response.headers)
        await response.read()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--entries", default="100000,1000000")
    parser.add_argument("--skip", default="", help="parts to skip, e.g. 2,3")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    os.sched_setaffinity(0, {0})  # one core for the in-process parts (1 and 2)
    if "1" not in skip:
        semantic_stage()
    if "2" not in skip:
        for num_entries in (int(n) for n in args.entries.split(",")):
            await cache_lookups(num_entries, 2000)
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    if "3" not in skip:
        await routers(args.requests)


if __name__ == "__main__":
    asyncio.run(main())
