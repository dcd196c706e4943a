"""Several routers in front of one fleet (issue 21, "scale out"): how load spreads and
how far their picks diverge from one router's, measured at the workers.

    cd bench && python router_scaleout.py [--requests 400] [--groups 40] [--clients 16]
        [--policy policies/llm-d.yaml] [--seed 1]

Four unified mock workers (real time scaled by 0.02, 12,288 tokens of KV each); a
workload of `--groups` long shared prefixes (~700 tokens each, so a worker holds about a
third of them), each request one group's prefix and a question of its own, groups drawn
at random. The same requests go through each setup, workers restarted between setups
(cold caches):

    one router       one `triskel router`
    2 processes      `triskel router --processes 2` (siblings share load and picks)
    2 + Redis        two `triskel router --redis-url` replicas, requests alternating
    2, no sharing    two replicas that share nothing, requests alternating

Every request opens its own connection. Printed per setup: the workers' prefix-cache hit
ratio (cached prompt tokens / prompt tokens, from their /metrics), the prompt tokens each
worker got (max / mean: 1.00 is even), and requests per second. Picks that diverge from
one router's show as a lower hit ratio: a prefix cached on two workers instead of one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from router_child import started_router

from triskel.cli.supervisor import Supervisor
from triskel.common.api import WorkerPoolSpec
from triskel.workers.process import WorkerProcessConfig

from support.local_workers import scrape
from support.redis_server import RedisServer, free_loopback_port

MODEL = "m"
NUM_WORKERS = 4


def workload(args: argparse.Namespace) -> list[str]:
    rng = random.Random(args.seed)
    prefixes = [" ".join(f"group{g}-fact{i}" for i in range(350)) for g in range(args.groups)]
    return [
        f"{prefixes[rng.randrange(args.groups)]} question {n}: why?" for n in range(args.requests)
    ]


@contextlib.asynccontextmanager
async def workers() -> AsyncIterator[list[dict[str, Any]]]:
    supervisor = Supervisor()
    pool = WorkerPoolSpec.model_validate(
        {
            "role": "unified",
            "model": MODEL,
            "profile": {"kvCapacityTokens": 12_288, "timeScale": 0.02},
        }
    )
    try:
        started = []
        for i in range(NUM_WORKERS):
            config = WorkerProcessConfig(
                worker_id=f"w{i}", pool=pool, http_address="127.0.0.1:0"
            ).model_dump(mode="json", by_alias=True)
            started.append((await supervisor.start(f"w{i}", "worker", config)).ready)
        yield started
    finally:
        await supervisor.stop_all()


async def send_all(urls: list[str], prompts: list[str], clients: int) -> float:
    """Sends every prompt (request n to urls[n % len(urls)]), `clients` at a time; the
    wall seconds it took."""
    queue = list(enumerate(prompts))
    queue.reverse()

    async def client() -> None:
        while queue:
            n, prompt = queue.pop()
            body = {"model": MODEL, "prompt": prompt, "max_tokens": 8, "ignore_eos": True}
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"http://{urls[n % len(urls)]}/v1/completions", json=body) as reply,
            ):
                assert reply.status == 200, await reply.text()

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.monotonic() - started


async def at_the_workers(fleet: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """Prefix-cache hit ratio over the fleet, and each worker's prompt tokens."""
    hits, queries = 0.0, []
    for worker in fleet:
        samples = await scrape(f"http://{worker['http']}/metrics")
        hits += sum(v for (name, _), v in samples.items() if name == "vllm:prefix_cache_hits_total")
        queries.append(
            sum(v for (name, _), v in samples.items() if name == "vllm:prefix_cache_queries_total")
        )
    return hits / max(sum(queries), 1.0), queries


async def one_setup(
    name: str, routing: dict[str, Any], prompts: list[str], args: argparse.Namespace, redis: str
) -> None:
    async with workers() as fleet, contextlib.AsyncExitStack() as stack:
        base = {
            "httpAddress": "127.0.0.1:0",
            "grpcAddress": "127.0.0.1:0",
            "workers": [w["grpc"] for w in fleet],
            "routing": routing,
        }
        if name == "one router":
            routers = [await stack.enter_async_context(started_router(base))]
        elif name == "2 processes":
            routers = [await stack.enter_async_context(started_router(base, processes=2))]
        else:
            shared = {**base, "redisUrl": redis} if name == "2 + Redis" else base
            routers = [await stack.enter_async_context(started_router(shared)) for _ in range(2)]
        urls = [r.ready["http"] for r in routers]
        wall_s = await send_all(urls, prompts, args.clients)
        ratio, tokens = await at_the_workers(fleet)
    spread = max(tokens) / (sum(tokens) / len(tokens))
    print(f"{name:<15} {ratio:>9.1%} {spread:>10.2f} {len(prompts) / wall_s:>12.1f}", flush=True)


async def bench(args: argparse.Namespace, routing: dict[str, Any]) -> None:
    prompts = workload(args)
    with tempfile.TemporaryDirectory() as work_dir:
        redis = RedisServer(free_loopback_port(), Path(work_dir))
        redis.start()
        try:
            print(f"{args.policy}; {args.requests} requests over {args.groups} prefixes, "
                  f"{args.clients} clients, {NUM_WORKERS} workers")  # fmt: skip
            print(f"{'setup':<15} {'hit ratio':>9} {'max/mean':>10} {'requests/s':>12}")
            for name in ("one router", "2 processes", "2 + Redis", "2, no sharing"):
                await one_setup(name, routing, prompts, args, redis.url)
        finally:
            redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--policy", default="policies/llm-d.yaml")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    routing = yaml.safe_load(Path(args.policy).read_text())["routing"]
    routing.pop("disaggregation", None)  # unified workers only
    asyncio.run(bench(args, routing))


if __name__ == "__main__":
    main()
