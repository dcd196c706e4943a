"""A long soak under faults: mixed traffic through `triskel up` while workers die and Redis goes.

    python bench/soak.py [--minutes 30] [--rate 4] [--kill-every-s 60]
        [--redis-down-s 60] [--json docs/results/soak.json]

Starts a `redis-server` and `triskel up` (2 prefill + 2 decode workers of the mock
engine, KV over tcp, the shipped routing `bench/policies/triskel.yaml`, router state in
that Redis), then for `--minutes`:
  - sends mixed requests open loop at `--rate` per second (chat and completions,
    streamed or not, with and without a shared system prompt, 8–160 tokens out);
  - kills (SIGKILL) one worker, in turn, every `--kill-every-s` seconds; `up` restarts it;
  - kills Redis at one third and two thirds of the run and restarts it `--redis-down-s`
    later;
  - samples the resident memory of `up`, its router and its workers every 15 s.
Prints how every request ended (bench/soak_traffic.py), the router's memory at the start
and the end, and writes everything as JSON with --json. Not a test: a run takes as long
as it says. Only loopback addresses; only processes it started (and `up`'s children).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_processes import RedisChild, UpProcess, free_loopback_port, rss_mb
from soak_traffic import ANSWERED, FAILED_EARLY, OUTCOMES, Outcome, mixed_body, send

MODEL = "m"
ROLES = ["prefill-", "decode-"]
REQUEST_DEADLINE_S = 60.0
MEMORY_EVERY_S = 15.0
READY_TIMEOUT_S = 180.0
ROUTING = Path(__file__).resolve().parent / "policies" / "triskel.yaml"
PROFILE = {"name": "llama-3.1-8b-h100", "kvCapacityTokens": 65536}


@dataclass
class SoakLog:
    outcomes: list[Outcome] = field(default_factory=list)
    faults: list[dict[str, object]] = field(default_factory=list)
    memory: list[dict[str, float]] = field(default_factory=list)


def up_config(http: str, grpc: str, redis_url: str) -> dict[str, object]:
    routing = yaml.safe_load(ROUTING.read_text())["routing"]
    pools = [
        {
            "name": role,
            "role": role,
            "model": MODEL,
            "replicas": {"min": 2, "max": 2},
            "kvConnector": {"type": "tcp"},
            "profile": PROFILE,
        }
        for role in ("prefill", "decode")
    ]
    return {
        "router": {"http": http, "grpc": grpc, "redisUrl": redis_url},
        "routing": routing,
        "pools": pools,
    }


async def wait_ready(base_url: str, up: UpProcess) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if up.process.poll() is not None:
                raise SystemExit(f"soak: triskel up exited ({up.process.returncode}); see its log")
            try:
                async with session.get(f"{base_url}/v1/models") as response:
                    if response.status == 200 and (await response.json())["data"]:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit(f"soak: the router was not ready in {READY_TIMEOUT_S} s")


async def traffic(base_url: str, rate: float, end_at: float, log: SoakLog) -> None:
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        pending: set[asyncio.Task[Outcome]] = set()
        index = 0
        next_at = time.monotonic()
        while next_at < end_at:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            task = asyncio.create_task(
                send(session, base_url, mixed_body(rng, MODEL, index), REQUEST_DEADLINE_S)
            )
            task.add_done_callback(lambda done: log.outcomes.append(done.result()))
            pending.add(task)
            task.add_done_callback(pending.discard)
            index += 1
            next_at += rng.expovariate(rate)
        if pending:
            await asyncio.wait(pending)


async def faults(
    up: UpProcess, redis: RedisChild, args: argparse.Namespace, started: float, log: SoakLog
) -> None:
    duration_s = args.minutes * 60
    redis_stops = [duration_s / 3, 2 * duration_s / 3]
    next_kill = args.kill_every_s
    victim = 0
    while True:
        now = time.monotonic() - started
        if now >= duration_s:
            return
        if redis_stops and now >= redis_stops[0]:
            redis_stops.pop(0)
            redis.stop()
            log.faults.append({"at_s": round(now, 1), "fault": "redis killed"})
            asyncio.get_running_loop().call_later(args.redis_down_s, _restart, redis, log, started)
        if now >= next_kill:
            # `up` replaces a dead worker under a new id (prefill-0 → prefill-2): pick
            # among the workers running now, the pools in turn.
            role = ROLES[victim % len(ROLES)]
            running = sorted(c.worker_id for c in up.children() if c.worker_id.startswith(role))
            worker_id = running[(victim // len(ROLES)) % len(running)] if running else ""
            killed = bool(worker_id) and up.kill_worker(worker_id)
            log.faults.append(
                {"at_s": round(now, 1), "fault": f"worker {worker_id} killed", "found": killed}
            )
            victim += 1
            next_kill += args.kill_every_s
        await asyncio.sleep(0.5)


def _restart(redis: RedisChild, log: SoakLog, started: float) -> None:
    redis.start()
    log.faults.append({"at_s": round(time.monotonic() - started, 1), "fault": "redis restarted"})


async def memory(up: UpProcess, started: float, end_at: float, log: SoakLog) -> None:
    while time.monotonic() < end_at:
        children = up.children()
        routers = [c.pid for c in children if c.component == "router"]
        workers = [c.pid for c in children if c.component == "worker"]
        log.memory.append(
            {
                "at_s": round(time.monotonic() - started, 1),
                "up_mb": round(rss_mb(up.process.pid), 1),
                "router_mb": round(sum(rss_mb(pid) for pid in routers), 1),
                "workers_mb": round(sum(rss_mb(pid) for pid in workers), 1),
            }
        )
        await asyncio.sleep(MEMORY_EVERY_S)


def summary(log: SoakLog, args: argparse.Namespace) -> dict[str, object]:
    counts = collections.Counter(outcome.kind for outcome in log.outcomes)
    samples = log.memory
    window = max(1, len(samples) // 6)  # the first and last sixth of the run

    def mean_of(key: str, part: list[dict[str, float]]) -> float:
        return round(statistics.fmean(sample[key] for sample in part), 1) if part else 0.0

    details = collections.Counter(
        f"{o.kind}: {o.detail[:90]}" for o in log.outcomes if o.kind != ANSWERED
    )
    answered_s = sorted(o.elapsed_s for o in log.outcomes if o.kind == ANSWERED)
    return {
        "args": vars(args),
        "requests": len(log.outcomes),
        "outcomes": {kind: counts.get(kind, 0) for kind in OUTCOMES},
        "lost_before_streaming": counts.get(FAILED_EARLY, 0),
        "answered_e2e_p50_s": round(answered_s[len(answered_s) // 2], 3) if answered_s else None,
        "router_mb_start": mean_of("router_mb", samples[:window]),
        "router_mb_end": mean_of("router_mb", samples[-window:]),
        "up_mb_start": mean_of("up_mb", samples[:window]),
        "up_mb_end": mean_of("up_mb", samples[-window:]),
        "workers_mb_start": mean_of("workers_mb", samples[:window]),
        "workers_mb_end": mean_of("workers_mb", samples[-window:]),
        "failures": dict(details.most_common(12)),
        "faults": log.faults,
        "memory": samples,
    }


async def soak(args: argparse.Namespace) -> dict[str, object]:
    log = SoakLog()
    with tempfile.TemporaryDirectory(prefix="triskel-soak-") as folder:
        work_dir = Path(folder)
        redis = RedisChild(work_dir)
        redis.start()
        http = f"127.0.0.1:{free_loopback_port()}"
        grpc = f"127.0.0.1:{free_loopback_port()}"
        config_path = work_dir / "soak.yaml"
        config_path.write_text(yaml.safe_dump(up_config(http, grpc, redis.url)))
        up = UpProcess(config_path, Path(args.up_log))
        try:
            await wait_ready(f"http://{http}", up)
            started = time.monotonic()
            end_at = started + args.minutes * 60
            print(f"soak: serving on {http}; {args.minutes} min", file=sys.stderr)
            await asyncio.gather(
                traffic(f"http://{http}", args.rate, end_at, log),
                faults(up, redis, args, started, log),
                memory(up, started, end_at, log),
            )
        finally:
            returncode = up.stop()
            redis.stop()
    result = summary(log, args)
    result["up_exit_code"] = returncode
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second")
    parser.add_argument("--kill-every-s", type=float, default=60.0)
    parser.add_argument("--redis-down-s", type=float, default=60.0)
    parser.add_argument("--json", default=None, help="write the whole result here")
    parser.add_argument("--up-log", default="/tmp/triskel-soak-up.log")
    args = parser.parse_args()
    result = asyncio.run(soak(args))
    brief = {k: v for k, v in result.items() if k not in ("memory", "faults")}
    print(json.dumps(brief, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
